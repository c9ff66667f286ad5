"""Lab 01's exercises in the image: the shipped solutions pass, and each wrong answer a student may
write is named with its fix, on each Keras backend (run by tests/labs/test_labs.py, as
13-debugging-a-training-run.py says). Keras picks its backend once per process, so each backend
runs in a Python of its own (BACKEND_RUN below); this one gathers what they said."""
import json
import os
import subprocess
import sys

BACKENDS = ("tensorflow", "torch", "jax")
LAB = "01-first-keras-network"
# The words each wrong answer's message must hold (on every backend).
WORDS = {
    "categorical": "one-hot", "from_logits": "from_logits", "mse": "not classes", "no metrics": "metrics=[\"accuracy\"]",
    "acc": "metrics=[\"accuracy\"]", "no bias": "keep the biases",
    "sgd": "optimizer=\"adam\"", "not compiled": "model.compile(",
    "no hidden layer": "logistic regression again", "linear hidden layer": "still linear", "no softmax": "probabilities",
    "sigmoid output": "sum to 1", "784 in": "n_inputs", "10 out": "n_classes=5", "128 hidden": "n_hidden=7",
    "no Input": "keras.Input((n_inputs,))", "no comma": "with the comma", "two hidden layers": "asks for one",
    "no biases": "biases are missing", "hidden layer only": "output layer's", "a bias per layer": "one bias per unit",
    "wrong": "ExerciseWrong: build_mlp: it has no hidden layer",
    "scaffold": "ExerciseNotDone: build_mlp is not written yet: write it in the cell above (its comments say what it "
                f"must do), or see a solution with  %load /opt/dlab/solutions/{LAB}/build_mlp.py",
}

BACKEND_RUN = r'''
import json

import keras
from keras import layers

import dlab
from dlab.checks.keras_models import check_build_mlp, check_compile_classifier, check_mlp_parameter_count
from dlab.exercises import ExerciseNotDone, ExerciseWrong, load_solution

LAB = "01-first-keras-network"
CHECKS = {"compile_classifier": check_compile_classifier, "build_mlp": check_build_mlp,
          "mlp_parameter_count": check_mlp_parameter_count}


def compiling(**kwargs):
    arguments = {"optimizer": "adam", "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"], **kwargs}
    return lambda model: model.compile(**{k: v for k, v in arguments.items() if v is not None})


def mlp(hidden="relu", out="softmax", n_in=None, n_hidden=None, n_out=None, input_layer=True, extra=False):
    def build(n_inputs, n_hidden_, n_classes):
        stack = [keras.Input((n_in or n_inputs,))] if input_layer else []
        stack.append(layers.Dense(n_hidden or n_hidden_, activation=hidden))
        if extra:
            stack.append(layers.Dense(n_hidden or n_hidden_, activation=hidden))
        return keras.Sequential(stack + [layers.Dense(n_out or n_classes, activation=out)])
    return build


said = {name: check(load_solution(LAB, name)) for name, check in CHECKS.items()}
said.update({
    "categorical": check_compile_classifier(compiling(loss="categorical_crossentropy")),
    "from_logits": check_compile_classifier(
        compiling(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))),
    "mse": check_compile_classifier(compiling(loss="mse")),
    "no metrics": check_compile_classifier(compiling(metrics=None)),
    "acc": check_compile_classifier(compiling(metrics=["acc"])),  # history["val_acc"]: the lab reads val_accuracy
    "no bias": check_build_mlp(
        lambda n_inputs, n_hidden, n_classes: keras.Sequential([
            keras.Input((n_inputs,)), layers.Dense(n_hidden, activation="relu", use_bias=False),
            layers.Dense(n_classes, activation="softmax")])),
    "sgd": check_compile_classifier(compiling(optimizer="sgd")),
    "not compiled": check_compile_classifier(lambda model: model),
    "no hidden layer": check_build_mlp(
        lambda n_inputs, n_hidden, n_classes: keras.Sequential([keras.Input((n_inputs,)),
                                                                layers.Dense(n_classes, activation="softmax")])),
    "linear hidden layer": check_build_mlp(mlp(hidden=None)),
    "no softmax": check_build_mlp(mlp(out=None)),
    "sigmoid output": check_build_mlp(mlp(out="sigmoid")),
    "784 in": check_build_mlp(mlp(n_in=784)),
    "10 out": check_build_mlp(mlp(n_out=10)),
    "128 hidden": check_build_mlp(mlp(n_hidden=128)),
    "no Input": check_build_mlp(mlp(input_layer=False)),
    "no comma": check_build_mlp(lambda n_inputs, n_hidden, n_classes: keras.Sequential(
        [keras.Input((n_inputs)), layers.Dense(n_hidden, activation="relu"), layers.Dense(n_classes, activation="softmax")])),
    "two hidden layers": check_build_mlp(mlp(extra=True)),
    "no biases": check_mlp_parameter_count(lambda i, h, c: i * h + h * c),
    "hidden layer only": check_mlp_parameter_count(lambda i, h, c: i * h + h),
    "a bias per layer": check_mlp_parameter_count(lambda i, h, c: i * h + h * c + 2),
})


# What dlab.exercise itself says: of a wrong build_mlp, and of the scaffold as the lab ships it.
def build_mlp(n_inputs, n_hidden, n_classes):
    return keras.Sequential([keras.Input((n_inputs,)), layers.Dense(n_classes, activation="softmax")])


wrong = build_mlp


def build_mlp(n_inputs, n_hidden, n_classes):  # noqa: F811 (the scaffold, as the lab has it)
    raise NotImplementedError


for name, function in (("scaffold", build_mlp), ("wrong", wrong)):
    try:
        dlab.exercise(function, check_build_mlp, lab=LAB)
    except (ExerciseNotDone, ExerciseWrong) as error:
        said[name] = f"{type(error).__name__}: {error}"
print(json.dumps({"backend": keras.backend.backend(), "solutions": list(CHECKS), "said": said}))
'''

said, expected, solutions = {}, {}, None
for backend in BACKENDS:
    run = subprocess.run([sys.executable, "-c", BACKEND_RUN], env={**os.environ, "KERAS_BACKEND": backend},
                         capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"{backend}:\n{run.stderr[-3000:]}")
    result = json.loads(run.stdout.splitlines()[-1])
    assert result["backend"] == backend, result["backend"]
    solutions = result["solutions"]
    for name in solutions:  # a solution passes only if it passes on every backend
        said[name] = said.get(name) or (f"{backend}: {result['said'][name]}" if result["said"][name] else None)
    for wrong, words in WORDS.items():
        said[f"{wrong} ({backend})"], expected[f"{wrong} ({backend})"] = result["said"][wrong], words
print(json.dumps({"solutions": solutions, "said": said, "expected": expected}))
