"""Small helpers shared by the dlab labs: datasets, seeds, live plots, and each lab's report.

Installed in the image (not copied into ~/labs), so a lab that a student moves or renames
still finds them.
"""

import os
import random
import sys

from . import datasets  # noqa: F401  (dlab.datasets.mnist() and friends)

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


def report(lab, **values):
    """Show what a lab achieved, and record it in the notebook for `make test` to check."""
    from IPython.display import display

    clean = {k: (v.item() if hasattr(v, "item") else v) for k, v in values.items()}
    width = max(len(k) for k in clean) if clean else 0
    lines = [f"{lab}: results"] + [
        f"  {k:<{width}}  {v:.4f}" if isinstance(v, float) else f"  {k:<{width}}  {v}" for k, v in clean.items()
    ]
    display({REPORT_MIME: {"lab": lab, **clean}, "text/plain": "\n".join(lines)}, raw=True)
    return clean


def results_dir(lab):
    """Where a lab writes its figures and logs: ~/labs/results/<lab> (made if needed)."""
    from pathlib import Path

    path = Path(os.environ.get("DLAB_RESULTS_DIR", Path.home() / "labs" / "results")) / lab
    path.mkdir(parents=True, exist_ok=True)
    return path
