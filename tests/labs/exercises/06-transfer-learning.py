"""Lab 06's exercise in the image: the shipped solution passes, each wrong answer is named with its
fix (run by tests/labs/test_labs.py, as 13-debugging-a-training-run.py says)."""
import json

import keras

from dlab.checks.transfer import check_transfer_model
from dlab.exercises import load_solution

LAB = "06-transfer-learning"
CHECKS = {"transfer_model": check_transfer_model}
EXPECTED = {"base left trainable": "left trainable", "old head kept": "old head", "stacked on the old head": "old head",
            "ten outputs": "one unit per class", "no softmax": "softmax", "everything frozen": "nothing is left to train",
            "a new base": "pretrained base", "not a model": "Keras model"}


def head(classes, activation="softmax"):
    return [keras.layers.Dropout(0.3), keras.layers.Dense(classes, activation=activation)]


def frozen(pretrained):
    base = pretrained.get_layer("base")
    base.trainable = False
    return base


def everything_frozen(pretrained, classes):
    model = keras.Sequential([frozen(pretrained), *head(classes)])
    model.trainable = False
    return model


def a_new_base(pretrained, classes):
    base = keras.models.clone_model(pretrained.get_layer("base"))   # the same layers, fresh weights
    base.trainable = False
    return keras.Sequential([base, *head(classes)])


said = {name: check(load_solution(LAB, name)) for name, check in CHECKS.items()}
said.update({
    "base left trainable": check_transfer_model(lambda p, c: keras.Sequential([p.get_layer("base"), *head(c)])),
    "old head kept": check_transfer_model(lambda p, c: (frozen(p), p)[1]),
    "stacked on the old head": check_transfer_model(lambda p, c: (frozen(p), keras.Sequential([p, *head(c)]))[1]),
    "ten outputs": check_transfer_model(lambda p, c: keras.Sequential([frozen(p), *head(10)])),
    "no softmax": check_transfer_model(lambda p, c: keras.Sequential([frozen(p), *head(c, activation=None)])),
    "everything frozen": check_transfer_model(everything_frozen),
    "a new base": check_transfer_model(a_new_base),
    "not a model": check_transfer_model(lambda p, c: [frozen(p), *head(c)]),
})
print(json.dumps({"solutions": list(CHECKS), "said": said, "expected": EXPECTED}))
