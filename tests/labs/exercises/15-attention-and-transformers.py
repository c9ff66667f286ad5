"""Lab 15's exercise in the image: the shipped solution passes, each wrong answer is named with its
fix (run by tests/labs/test_labs.py, as 13-debugging-a-training-run.py says)."""
import json
import math

import torch
import torch.nn.functional as F

from dlab.checks.attention import check_attention
from dlab.exercises import load_solution

LAB = "15-attention-and-transformers"
CHECKS = {"attention": check_attention}
EXPECTED = {"unscaled": "sqrt(d)", "unmasked": "mask is not applied", "wrong axis": "wrong axis",
            "masked after": "after the softmax"}


def scores(q, k, scale=True):
    return q @ k.transpose(-2, -1) / (math.sqrt(q.shape[-1]) if scale else 1)


said = {name: check(load_solution(LAB, name)) for name, check in CHECKS.items()}
said.update({
    "unscaled": check_attention(lambda q, k, v, mask: F.softmax(scores(q, k, False) + mask, -1) @ v),
    "unmasked": check_attention(lambda q, k, v, mask: F.softmax(scores(q, k), -1) @ v),
    "wrong axis": check_attention(lambda q, k, v, mask: torch.nan_to_num(F.softmax(scores(q, k) + mask, -2)) @ v),
    "masked after": check_attention(
        lambda q, k, v, mask: torch.nan_to_num((F.softmax(scores(q, k), -1) + mask).clamp(min=0)) @ v),
})
print(json.dumps({"solutions": list(CHECKS), "said": said, "expected": EXPECTED}))
