"""Lab 04's exercise in the image: the shipped solution passes, each wrong answer is named with its
fix (run by tests/labs/test_labs.py, as 13-debugging-a-training-run.py says)."""
import json

import numpy as np
from scipy.signal import convolve2d

from dlab.checks.convolution import check_conv2d
from dlab.exercises import load_solution

LAB = "04-convolutions-and-cnn"
CHECKS = {"conv2d": check_conv2d}
EXPECTED = {"flipped": "true convolution", "same size": "'valid'", "one short": "'valid'",
            "rows and columns swapped": "rows and columns swapped", "kernel transposed": "rows and columns are swapped",
            "square only": "kernel's height", "upside down": "upside down"}


def loops(image, kernel, out_shape=None, flip=False, transpose_kernel=False, transpose_out=False):
    """A student's per-pixel loops, with one of the usual slips."""
    kh, kw = kernel.shape
    if flip:
        kernel = kernel[::-1, ::-1]
    if transpose_kernel:
        kernel = kernel.T
    h, w = out_shape or (image.shape[0] - kh + 1, image.shape[1] - kw + 1)
    padded = np.pad(image, ((0, kh), (0, kw)))
    out = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            out[i, j] = (padded[i:i + kh, j:j + kw] * kernel).sum()
    return out.T if transpose_out else out


def square_only(image, kernel):
    k = kernel.shape[0]
    out = np.zeros((image.shape[0] - k + 1, image.shape[1] - k + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = (image[i:i + k, j:j + k] * kernel).sum()
    return out


said = {name: check(load_solution(LAB, name)) for name, check in CHECKS.items()}
said.update({
    "loops": check_conv2d(loops),  # a right answer written another way
    "flipped": check_conv2d(lambda image, kernel: convolve2d(image, kernel, mode="valid")),
    "same size": check_conv2d(lambda image, kernel: loops(image, kernel, out_shape=image.shape)),
    "one short": check_conv2d(lambda image, kernel: loops(
        image, kernel, out_shape=(image.shape[0] - kernel.shape[0], image.shape[1] - kernel.shape[1]))),
    "rows and columns swapped": check_conv2d(lambda image, kernel: loops(image, kernel, transpose_out=True)),
    "kernel transposed": check_conv2d(lambda image, kernel: loops(image, kernel, transpose_kernel=True)),
    "square only": check_conv2d(square_only),
    "upside down": check_conv2d(lambda image, kernel: loops(image, kernel[::-1])),
})
assert said.pop("loops") is None, "a per-pixel loop is a right answer too"
print(json.dumps({"solutions": list(CHECKS), "said": said, "expected": EXPECTED}))
