"""The curriculum as the tests and the benchmark read it (not part of the images): the labs, in
order, and the Keras backends each runs on. A lab is a notebook in labs/; the Keras labs say so
with a BACKEND parameter. Said once here: tests/labs/test_labs.py and bench/bench.py import it."""
import json
import pathlib
import re

LABS_DIR = pathlib.Path(__file__).resolve().parent
LABS = sorted(p.stem for p in LABS_DIR.glob("*.ipynb"))
KERAS_BACKENDS = ("tensorflow", "torch", "jax")
# The lab that compares backends: it runs once on each, then the first again, reading the weights the others saved.
BACKENDS_LAB = "11-keras-backends-tensorboard"
# The MIME type of the report each lab ends with (dlab.lesson): what tests and bench read back.
REPORT_MIME = "application/vnd.dlab.report+json"


def parameters_cell(lab):
    notebook = json.loads((LABS_DIR / f"{lab}.ipynb").read_text())
    return next("".join(c["source"]) for c in notebook["cells"] if "parameters" in c["metadata"].get("tags", []))


def lab_backends(lab):
    """The Keras backends a lab says it runs on (a BACKEND parameter), or [None]: its own framework."""
    return list(KERAS_BACKENDS) if re.search(r"^BACKEND\s*=", parameters_cell(lab), re.M) else [None]


def headless_parameters(lab):
    """What every headless run of a lab sets (make test, make bench): a lab with exercises (a
    SOLVED parameter, dlab.exercise) runs on their shipped solutions."""
    return {"SOLVED": True} if re.search(r"^SOLVED\s*=", parameters_cell(lab), re.M) else {}
