"""The check of lab 06's exercise (06-transfer-learning): a pretrained base, frozen, under a new head."""


def check_transfer_model(transfer_model):
    """The student's transfer_model on a small pretrained network of its own (a base named "base",
    then dropout and a 10-class head): the new model must hold that very base, frozen, and a new
    trainable head with a softmax over the new task's classes; where it does not, the likeliest
    mistake is named."""
    import keras
    import numpy as np

    base = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
                             keras.layers.Flatten(), keras.layers.Dense(6, activation="relu")], name="base")
    old_head = keras.layers.Dense(10, activation="softmax")
    pretrained = keras.Sequential([base, keras.layers.Dropout(0.3), old_head])
    classes = 3
    model = transfer_model(pretrained, classes)
    if not isinstance(model, keras.Model):
        return (f"it returns {type(model).__name__}: return the new network, a Keras model "
                "(keras.Sequential([base, ...the new head's layers]))")
    weights = {id(w) for w in model.weights}
    trainable = {id(w) for w in model.trainable_weights}
    if any(id(w) in weights for w in old_head.weights):
        return ("it keeps the pretrained network's old head (its Dense layer for the 10 MNIST digits): take "
                "only the base, pretrained.get_layer(\"base\"), and put a new Dense layer on it")
    if not all(id(w) in weights for w in base.weights):
        return ("it does not hold the pretrained base: take the base itself out of the pretrained network, "
                "pretrained.get_layer(\"base\") (a new or copied base has not learned what it knows)")
    if any(id(w) in trainable for w in base.weights):
        return ("the base is left trainable: set base.trainable = False before building the model, so that "
                "training the new head leaves the pretrained weights as they are")
    if not trainable:
        return ("nothing is left to train: freeze the base only (base.trainable = False), not the whole "
                "model or the new head")
    x = np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype("float32")
    out = keras.ops.convert_to_numpy(model(x))
    if out.shape != (4, classes):
        return (f"its output has {out.shape[-1]} units for a new task of {classes} classes: the new head's "
                f"Dense layer needs one unit per class of the new task (classes), whatever the old task had")
    if not (np.all(out >= 0) and np.allclose(out.sum(axis=1), 1, atol=1e-4)):
        return ("its outputs are not probabilities (they do not sum to 1 for each image): give the new Dense "
                "layer activation=\"softmax\", as the loss, sparse_categorical_crossentropy, expects")
    return None
