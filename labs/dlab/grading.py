"""Grading what a model learned, in nbgrader's test cells (docs/assignments.md). A lab states its
lesson as a measured comparison (`dlab.lesson`); a graded assignment requires it, with partial
credit by how far past the bound the student's work landed:

    with dlab.grading.budget(60), dlab.grading.quietly():
        model = train_model(X_train, y_train, seed=0)          # the student's code, re-run
    held_out = accuracy(model, X_test, y_test)
    dlab.grading.credit(dlab.lesson("the network generalises", held_out, at_least=0.9),
                        points=4, full_margin=0.05)

nbgrader gives a test cell the points its last value says (at most the cell's own), none when the
cell raised an error or wrote to stderr. So: the lesson not holding is an AssertionError that says
by how much; a budget overrun is a TimeoutError that says what to do; `quietly` keeps a
framework's warnings out of the cell.
"""
import contextlib
import io
import os
import signal
import sys

from dlab import lesson


def credit(result, points, full_margin=0.0):
    """The points a lesson (`dlab.lesson`'s result) earns: none if it does not hold (an
    AssertionError saying what was measured and needed); half of them at the bound, all of them
    once the margin reaches `full_margin` (0: all of them at the bound), linearly between."""
    if result["holds"] is None:
        raise AssertionError(f"not measured: {result['says']}")
    if not result["holds"]:
        raise AssertionError(f"{result['says']}: measured {result['measured']:.4g}, needed {result['needed']}")
    if full_margin <= 0 or result["margin"] >= full_margin:
        return float(points)
    return round(points * (0.5 + 0.5 * result["margin"] / full_margin), 2)


@contextlib.contextmanager
def budget(seconds, what="the work in this cell"):
    """A TimeoutError, and so no credit, when what runs inside takes longer than `seconds`."""
    def over(signum, frame):
        raise TimeoutError(f"{what} took longer than its {seconds} s: make it faster (fewer epochs, a "
                           "smaller model, a larger batch) and check it on your own server first")
    previous = signal.signal(signal.SIGALRM, over)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def quietly():
    """What runs inside writes nothing to stderr (Python's and the process's own, where
    TensorFlow's and PyTorch's C++ logs go): nbgrader gives no credit to a cell that did."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def gradients_match(mine, reference, at_most=1e-8):
    """The lesson that hand-written gradients (a dict of arrays) equal the reference's, e.g.
    autograd's: the largest absolute difference over every parameter. A missing or misshapen
    gradient is an AssertionError that names it."""
    import numpy as np

    worst = 0.0
    for name, expected in reference.items():
        assert name in mine, f"no gradient for {name}: return one for every parameter ({', '.join(reference)})"
        got, expected = np.asarray(mine[name], dtype=float), np.asarray(expected, dtype=float)
        assert got.shape == expected.shape, f"the gradient for {name} has shape {got.shape}, the parameter {expected.shape}"
        worst = max(worst, float(np.abs(got - expected).max()))
    return lesson("the gradients written by hand equal autograd's (largest difference)", worst, at_most=at_most)
