"""Lab 02's exercise in the image: the shipped solution passes its check, and each wrong answer a
student may write is named with its fix (run by tests/labs/test_labs.py, as
13-debugging-a-training-run.py says)."""
import json

import numpy as np

from dlab.checks.backprop import _by_hand, check_backward
from dlab.exercises import load_solution

LAB = "02-backprop-by-hand"
CHECKS = {"backward": check_backward}
EXPECTED = {"no 1/n": "n times too large", "no one-hot": "onehot(y)", "bias averaged": "sum it over the batch",
            "mask from dH": "mask is taken from the wrong array", "times H": "(A > 0)", "no ReLU": "skips the ReLU",
            "tanh's": "tanh's derivative", "A for H": "H.T @ dZ", "bias not summed": "sum over the batch",
            "dW2 transposed": "transpose", "dH without W2.T": "dZ @ W2.T", "no dict": "keys"}


def variant(**wrong):
    return lambda p, cache: _by_hand(p, cache, **wrong)


def transposed(p, cache):
    grads = _by_hand(p, cache)
    return {**grads, "W2": grads["W2"].T}


def unsummed(p, cache):
    X, A, H, P, y = cache
    dZ = P.copy()
    dZ[np.arange(len(y)), y] -= 1
    dZ /= len(y)
    return {**_by_hand(p, cache), "b2": dZ}


def no_transpose(p, cache):
    X, A, H, P, y = cache
    dZ = P.copy()
    dZ[np.arange(len(y)), y] -= 1
    dZ /= len(y)
    dH = dZ @ p["W2"]
    return {"W2": H.T @ dZ, "b2": dZ.sum(0), "W1": X.T @ (dH * (A > 0)), "b1": (dH * (A > 0)).sum(0)}


said = {name: check(load_solution(LAB, name)) for name, check in CHECKS.items()}
said.update({
    "no 1/n": check_backward(variant(scale=False)),
    "no one-hot": check_backward(variant(onehot=False)),
    "bias averaged": check_backward(variant(bias="mean")),
    "mask from dH": check_backward(variant(relu="from dH")),
    "times H": check_backward(variant(relu="times H")),
    "no ReLU": check_backward(variant(relu="none")),
    "tanh's": check_backward(variant(relu="tanh")),
    "A for H": check_backward(variant(second_input="A")),
    "bias not summed": check_backward(unsummed),
    "dW2 transposed": check_backward(transposed),
    "dH without W2.T": check_backward(no_transpose),
    "no dict": check_backward(lambda p, cache: list(_by_hand(p, cache).values())),
})
print(json.dumps({"solutions": list(CHECKS), "said": said, "expected": EXPECTED}))
