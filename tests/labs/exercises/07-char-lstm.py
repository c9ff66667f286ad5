"""Lab 07's exercise in the image: the shipped solution passes its check, and each wrong answer a
student may write is named with its fix (run by tests/labs/test_labs.py, as
13-debugging-a-training-run.py says)."""
import json

import torch
import torch.nn.functional as F

from dlab.checks.sampling import check_sample_next
from dlab.exercises import load_solution

LAB = "07-char-lstm"
CHECKS = {"sample_next": check_sample_next}
EXPECTED = {"multiplied": "divide them", "softmax first": "before the softmax", "argmax": "argmax",
            "no softmax": "F.softmax(logits / temperature", "uniform": "equally often", "a tensor": ".item()",
            "in place": "in place", "no generator": "generator=generator", "no greedy limit": "temperature 0"}


def draw(probabilities, generator):
    return torch.multinomial(probabilities, 1, generator=generator).item()


def in_place(logits, temperature, generator):
    if temperature == 0:
        return int(logits.argmax())
    logits /= temperature
    return draw(F.softmax(logits, -1), generator)


said = {name: check(load_solution(LAB, name)) for name, check in CHECKS.items()}
said.update({
    "multiplied": check_sample_next(lambda logits, t, g: draw(F.softmax(logits * t, -1), g)),
    "softmax first": check_sample_next(lambda logits, t, g: draw(F.softmax(logits, -1) / t, g)),
    "argmax": check_sample_next(lambda logits, t, g: int(logits.argmax())),
    "no softmax": check_sample_next(lambda logits, t, g: draw(logits / t, g)),
    "uniform": check_sample_next(lambda logits, t, g: int(torch.randint(len(logits), (1,), generator=g))),
    "a tensor": check_sample_next(lambda logits, t, g: torch.multinomial(F.softmax(logits / t, -1), 1, generator=g)),
    "in place": check_sample_next(in_place),
    "no generator": check_sample_next(lambda logits, t, g: torch.multinomial(F.softmax(logits / t, -1), 1).item()),
    "no greedy limit": check_sample_next(lambda logits, t, g: draw(F.softmax(logits / t, -1), g)),
})
print(json.dumps({"solutions": list(CHECKS), "said": said, "expected": EXPECTED}))
