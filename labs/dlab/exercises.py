"""Exercises: the piece of a lab that the student writes, checked, with a solution beside it.

A lab's exercise cell defines the function with a scaffold (comments that say what it must do,
and `raise NotImplementedError` where the student's code goes), then hands it to `exercise`:

    train_step = dlab.exercise(train_step, check_train_step, lab=LAB, solved=SOLVED)

which runs the check and says in one line what is right, or what is wrong and how to mend it; a
function that is wrong or not yet written stops the lab there (what follows needs it).
`solved=True` (the lab's SOLVED parameter: `make test` and `make bench` run every lab so) takes
the shipped solution instead. The solutions are files of their own, one per exercise,
<DLAB_SOLUTIONS_DIR>/<lab>/<name>.py (in the images /opt/dlab/solutions, outside the home):
`%load` shows one in a cell, so that a learner alone is never stuck.
"""
import os
from pathlib import Path


class ExerciseNotDone(Exception):
    """The student's function is still the scaffold (or no solution is here to take instead)."""


class ExerciseWrong(AssertionError):
    """The student's function does not do what the exercise asks: the message says what differs."""


def solution_path(lab, name):
    return Path(os.environ.get("DLAB_SOLUTIONS_DIR", "/opt/dlab/solutions")) / lab / f"{name}.py"


def load_solution(lab, name):
    """The shipped solution of exercise `name` of `lab`: the function the file defines."""
    path = solution_path(lab, name)
    if not path.is_file():
        raise ExerciseNotDone(f"there is no solution of {name} here ({path}): write it yourself, "
                              "or ask your organizer")
    namespace = {"__name__": f"solution_{name}"}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    return namespace[name]


def exercise(function, check, lab, solved=False):
    """Check `function` (or, with solved=True, the shipped solution of the same name) with
    `check`, which returns None when it is right and otherwise what is wrong; say so, and return
    the function that passed."""
    name = function.__name__
    if solved:
        function = load_solution(lab, name)
    try:
        problem = check(function)
    except NotImplementedError:
        raise ExerciseNotDone(f"{name} is not written yet: write it in the cell above (its comments say "
                              f"what it must do), or see a solution with  %load {solution_path(lab, name)}") from None
    if problem:
        print(f"✗ {name}: {problem}")
        raise ExerciseWrong(f"{name}: {problem}")
    print(f"✓ {name} passes its check" + (" (the shipped solution)" if solved else ""))
    return function
