import keras


def transfer_model(pretrained, classes):
    # The base alone: the old head (which MNIST digit) stays behind with the pretrained network.
    base = pretrained.get_layer("base")
    # Frozen: its weights are not trained (set before the model is compiled).
    base.trainable = False
    # A new head, for the new task's classes: the only weights that learn.
    return keras.Sequential([base, keras.layers.Dropout(0.3), keras.layers.Dense(classes, activation="softmax")])
