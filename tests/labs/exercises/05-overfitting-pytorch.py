"""Lab 05's exercises in the image: the shipped solutions pass their checks, and each wrong answer
a student may write is named with its fix. tests/labs/test_labs.py runs this file with the image's
Python and compares what the checks said with EXPECTED (words each message must hold)."""
import json

import torch
import torch.nn.functional as F

import dlab
from dlab.checks.overfitting import check_evaluate, check_train_epoch
from dlab.exercises import ExerciseNotDone, ExerciseWrong, load_solution

LAB = "05-overfitting-pytorch"
CHECKS = {"train_epoch": check_train_epoch, "evaluate": check_evaluate}
EXPECTED = {"no zero_grad": "optimizer.zero_grad()", "no train()": "model.train()", "a tensor": "loss.item()",
            "no step": "optimizer.step()", "zero_grad between": "not between", "mean of means": "last batch is smaller",
            "last loss": "last batch's loss", "augment ignored": "augment(xb)",
            "no eval()": "model.eval()", "no no_grad": "torch.no_grad()", "tensors out": "Python numbers",
            "mean accuracy of batches": "count the right answers", "swapped": "(mean loss, accuracy)",
            "wrong": "ExerciseWrong: train_epoch: the model was in evaluation mode",
            "scaffold": "ExerciseNotDone: train_epoch is not written yet: write it in the cell above (its comments "
                        f"say what it must do), or see a solution with  %load /opt/dlab/solutions/{LAB}/train_epoch.py"}


def epoch(model, optimizer, loader, augment=None, train=True, zero="before", step=True, mean="examples",
          item=True, use_augment=True):
    if train:
        model.train()
    losses = []
    for xb, yb in loader:
        if augment is not None and use_augment:
            xb = augment(xb)
        loss = F.cross_entropy(model(xb), yb)
        if zero == "before":
            optimizer.zero_grad()
        loss.backward()
        if zero == "between":
            optimizer.zero_grad()
        if step:
            optimizer.step()
        losses.append((loss.item() if item else loss, len(yb)))
    if mean == "batches":
        return sum(v for v, _ in losses) / len(losses)
    if mean == "last":
        return losses[-1][0]
    return sum(v * n for v, n in losses) / sum(n for _, n in losses)


def evaluation(model, loader, eval_mode=True, no_grad=True, item=True, batch_accuracy=False, swap=False):
    if eval_mode:
        model.eval()
    total, right, count, accuracies = 0.0, 0, 0, []
    with torch.set_grad_enabled(not no_grad):
        for xb, yb in loader:
            logits = model(xb)
            loss = F.cross_entropy(logits, yb, reduction="sum")
            total += loss.item() if item else loss
            right += (logits.argmax(1) == yb).sum().item()
            accuracies.append((logits.argmax(1) == yb).float().mean().item())
            count += len(yb)
    accuracy = sum(accuracies) / len(accuracies) if batch_accuracy else right / count
    return (accuracy, total / count) if swap else (total / count, accuracy)


said = {name: check(load_solution(LAB, name)) for name, check in CHECKS.items()}
said.update({
    "no zero_grad": check_train_epoch(lambda *a: epoch(*a, zero=None)),
    "no train()": check_train_epoch(lambda *a: epoch(*a, train=False)),
    "a tensor": check_train_epoch(lambda *a: epoch(*a, item=False)),
    "no step": check_train_epoch(lambda *a: epoch(*a, step=False)),
    "zero_grad between": check_train_epoch(lambda *a: epoch(*a, zero="between")),
    "mean of means": check_train_epoch(lambda *a: epoch(*a, mean="batches")),
    "last loss": check_train_epoch(lambda *a: epoch(*a, mean="last")),
    "augment ignored": check_train_epoch(lambda *a: epoch(*a, use_augment=False)),
    "no eval()": check_evaluate(lambda *a: evaluation(*a, eval_mode=False)),
    "no no_grad": check_evaluate(lambda *a: evaluation(*a, no_grad=False)),
    "tensors out": check_evaluate(lambda *a: evaluation(*a, no_grad=False, item=False)),
    "mean accuracy of batches": check_evaluate(lambda *a: evaluation(*a, batch_accuracy=True)),
    "swapped": check_evaluate(lambda *a: evaluation(*a, swap=True)),
})


# What dlab.exercise itself says: of a wrong train_epoch, and of the scaffold as the lab ships it.
def train_epoch(model, optimizer, loader, augment=None):
    return epoch(model, optimizer, loader, augment, train=False)


wrong = train_epoch


def train_epoch(model, optimizer, loader, augment=None):  # noqa: F811 (the scaffold, as the lab has it)
    raise NotImplementedError


for name, function in (("scaffold", train_epoch), ("wrong", wrong)):
    try:
        dlab.exercise(function, check_train_epoch, lab=LAB)
    except (ExerciseNotDone, ExerciseWrong) as error:
        said[name] = f"{type(error).__name__}: {error}"
print(json.dumps({"solutions": list(CHECKS), "said": said, "expected": EXPECTED}))
