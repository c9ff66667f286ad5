"""Lab 13's exercises in the image: the shipped solutions pass their checks, and each wrong answer
a student may write is named with its fix. tests/labs/test_labs.py runs this file with the image's
Python and compares what the checks said with EXPECTED (words each message must hold)."""
import json
import math

import torch
import torch.nn.functional as F

import dlab
from dlab.checks.debugging import check_evaluate, check_expected_initial_loss, check_train_step
from dlab.exercises import ExerciseNotDone, ExerciseWrong, load_solution

LAB = "13-debugging-a-training-run"
CHECKS = {"expected_initial_loss": check_expected_initial_loss, "train_step": check_train_step,
          "evaluate": check_evaluate}
EXPECTED = {"log2": "-log(1/2)", "no zero_grad": "optimizer.zero_grad()", "no clipping": "clip_grad_norm_",
            "no train()": "model.train()", "softmax": "logits", "a tensor": "loss.item()", "no eval()": "model.eval()",
            "wrong": "ExerciseWrong: train_step: from the second step",
            "scaffold": "ExerciseNotDone: train_step is not written yet: write it in the cell above (its comments "
                        f"say what it must do), or see a solution with  %load /opt/dlab/solutions/{LAB}/train_step.py"}


def step(model, optimizer, xb, yb, max_norm, train=True, zero=True, clip=True, softmax=False, item=True):
    if train:
        model.train()
    out = model(xb)
    loss = F.cross_entropy(F.softmax(out, 1) if softmax else out, yb)
    if zero:
        optimizer.zero_grad()
    loss.backward()
    if clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return loss.item() if item else loss


def no_eval(model, X, Y):
    with torch.no_grad():
        return (model(X).argmax(1) == Y).float().mean().item()


said = {name: check(load_solution(LAB, name)) for name, check in CHECKS.items()}
said.update({
    "log2": check_expected_initial_loss(math.log2),
    "no zero_grad": check_train_step(lambda *a: step(*a, zero=False)),
    "no clipping": check_train_step(lambda *a: step(*a, clip=False)),
    "no train()": check_train_step(lambda *a: step(*a, train=False)),
    "softmax": check_train_step(lambda *a: step(*a, softmax=True)),
    "a tensor": check_train_step(lambda *a: step(*a, item=False)),
    "no eval()": check_evaluate(no_eval),
})


# What dlab.exercise itself says: of a wrong train_step, and of the scaffold as the lab ships it.
def train_step(model, optimizer, xb, yb, max_norm):
    return step(model, optimizer, xb, yb, max_norm, zero=False)


wrong = train_step


def train_step(model, optimizer, xb, yb, max_norm):  # noqa: F811 (the scaffold, as the lab has it)
    raise NotImplementedError


for name, function in (("scaffold", train_step), ("wrong", wrong)):
    try:
        dlab.exercise(function, check_train_step, lab=LAB)
    except (ExerciseNotDone, ExerciseWrong) as error:
        said[name] = f"{type(error).__name__}: {error}"
print(json.dumps({"solutions": list(CHECKS), "said": said, "expected": EXPECTED}))
