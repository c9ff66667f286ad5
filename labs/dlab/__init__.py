"""Small helpers shared by the dlab labs: datasets, seeds, live plots, and each lab's report.

Installed in the image (not copied into ~/labs), so a lab that a student moves or renames
still finds them.
"""

import os
import random
import sys

from . import datasets  # noqa: F401  (dlab.datasets.mnist() and friends)
from .exercises import exercise  # noqa: F401  (dlab.exercise(): the labs' exercises, checked)

REPORT_MIME = "application/vnd.dlab.report+json"


def seed_everything(seed):
    """Fix every random generator a lab may use, so that two runs give the same numbers."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    # Seed only the frameworks the lab imported: importing TensorFlow costs seconds.
    if "torch" in sys.modules:
        import torch

        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True, warn_only=True)
    if "keras" in sys.modules:
        import keras

        keras.utils.set_random_seed(seed)
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        tf.random.set_seed(seed)
        tf.config.experimental.enable_op_determinism()


def use_keras_backend(name=None):
    """Run Keras on `name` ("tensorflow", "torch" or "jax"; None: $KERAS_BACKEND, else
    tensorflow); call it before `import keras`.

    Keras picks its backend once per kernel, so asking for another one later is an error that
    says what to do."""
    name = name or os.environ.get("KERAS_BACKEND") or "tensorflow"
    if name not in ("tensorflow", "torch", "jax"):
        raise ValueError(f"BACKEND = {name!r}: use \"tensorflow\", \"torch\" or \"jax\"")
    if "keras" in sys.modules and sys.modules["keras"].backend.backend() != name:
        raise RuntimeError(f"Keras is already running on {sys.modules['keras'].backend.backend()}: "
                           "restart the kernel (Kernel → Restart Kernel) to switch the backend")
    os.environ["KERAS_BACKEND"] = name


def lesson(says, measured, at_least=None, at_most=None):
    """What a lab set out to show, as a measured comparison with the margin it must hold by.

    `says` is the lesson in words; `measured` the number that shows it (None: not measurable in
    this run, e.g. lab 11 before a second backend ran); `at_least`/`at_most` the bound it must
    pass. The margin is how far past the bound it landed (negative: the lesson did not show)."""
    if (at_least is None) == (at_most is None):
        raise ValueError("a lesson needs exactly one of at_least or at_most")
    bound = at_least if at_least is not None else at_most
    result = {"says": says, "needed": f"{'>=' if at_least is not None else '<='} {bound:g}",
              "measured": None, "margin": None, "holds": None}
    if measured is not None:
        measured = float(measured)
        margin = measured - at_least if at_least is not None else at_most - measured
        result.update(measured=measured, margin=margin, holds=margin >= 0)
    return result


def report(lab, lesson=None, **values):
    """Show what a lab achieved, and record it in the notebook for `make test` and `make bench`.

    `lesson` (from `dlab.lesson`) comes first: the comparison the lab is about and whether it
    held in this run."""
    from IPython.display import display

    clean = {k: (v.item() if hasattr(v, "item") else v) for k, v in values.items()}
    width = max(len(k) for k in clean) if clean else 0
    lines = [f"{lab}: results"]
    if lesson is not None:
        verdict = {True: "holds", False: "DOES NOT HOLD", None: "not measured in this run"}[lesson["holds"]]
        shown = "—" if lesson["measured"] is None else f"{lesson['measured']:.4g}"
        lines += [f"  lesson: {lesson['says']}", f"  measured {shown} (needed {lesson['needed']}): {verdict}"]
        clean = {"lesson": lesson, **clean}
    lines += [f"  {k:<{width}}  {v:.4f}" if isinstance(v, float) else f"  {k:<{width}}  {v}"
              for k, v in clean.items() if k != "lesson"]
    display({REPORT_MIME: {"lab": lab, **clean}, "text/plain": "\n".join(lines)}, raw=True)
    return clean


def results_dir(lab):
    """Where a lab writes its figures and logs: ~/labs/results/<lab> (made if needed)."""
    from pathlib import Path

    path = Path(os.environ.get("DLAB_RESULTS_DIR", Path.home() / "labs" / "results")) / lab
    path.mkdir(parents=True, exist_ok=True)
    return path
