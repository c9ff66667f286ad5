import keras


def build_mlp(n_inputs, n_hidden, n_classes):
    return keras.Sequential([
        keras.Input((n_inputs,)),                              # a vector of n_inputs numbers (the comma: a tuple)
        keras.layers.Dense(n_hidden, activation="relu"),       # the hidden layer: without the ReLU, the whole is linear
        keras.layers.Dense(n_classes, activation="softmax"),   # one probability per class, summing to 1
    ])
