"""Lab 09's exercises in the image: the shipped solutions pass, each wrong answer is named with its
fix (run by tests/labs/test_labs.py, as 13-debugging-a-training-run.py says)."""
import json

import torch
import torch.nn.functional as F

import dlab
from dlab.checks.gan import check_discriminator_loss, check_generator_loss
from dlab.exercises import ExerciseNotDone, ExerciseWrong, load_solution

LAB = "09-gan"
CHECKS = {"discriminator_loss": check_discriminator_loss, "generator_loss": check_generator_loss}
EXPECTED = {"not detached": "fake.detach()", "scores detached": "learns nothing from the fakes",
            "swapped": "swapped", "fakes smoothed": "the fakes keep 0", "no smoothing": "labelled 1",
            "0.9 written in": "real_label argument", "sigmoid twice": "sigmoid is applied twice",
            "probabilities": "binary_cross_entropy_with_logits",
            "saturating": "saturating", "labelled fake": "label its images 1", "smoothed target": "smoothing",
            "generator detached": "no gradient reaches the generator", "generator sigmoid twice": "sigmoid",
            "item": "not loss.item()", "no_grad": "carries no gradient",
            "wrong": "ExerciseWrong: generator_loss: this is the saturating form",
            "scaffold": "ExerciseNotDone: discriminator_loss is not written yet: write it in the cell above (its "
                        "comments say what it must do), or see a solution with  "
                        f"%load /opt/dlab/solutions/{LAB}/discriminator_loss.py"}


def bce(scores, label):
    return F.binary_cross_entropy_with_logits(scores, torch.full_like(scores, label))


def d_loss(d, real, fake, real_label, detach=True, fake_label=0.0, swap=False, sigmoid=False, mean=False,
           scores_detached=False):
    real_scores = d(real)
    fake_scores = d(fake.detach() if detach else fake)
    if scores_detached:
        fake_scores = d(fake).detach()
    if sigmoid:
        real_scores, fake_scores = torch.sigmoid(real_scores), torch.sigmoid(fake_scores)
    if swap:
        return bce(real_scores, fake_label) + bce(fake_scores, real_label)
    loss = bce(real_scores, real_label) + bce(fake_scores, fake_label)
    return loss / 2 if mean else loss


def g_loss(d, fake, label=1.0, detach=False, saturating=False, sigmoid=False):
    scores = d(fake.detach() if detach else fake)
    if saturating:
        return torch.log(1 - torch.sigmoid(scores)).mean()
    return bce(torch.sigmoid(scores) if sigmoid else scores, label)


said = {name: check(load_solution(LAB, name)) for name, check in CHECKS.items()}
said.update({
    "not detached": check_discriminator_loss(lambda d, r, f, rl: d_loss(d, r, f, rl, detach=False)),
    "scores detached": check_discriminator_loss(lambda d, r, f, rl: d_loss(d, r, f, rl, scores_detached=True)),
    "swapped": check_discriminator_loss(lambda d, r, f, rl: d_loss(d, r, f, rl, swap=True)),
    "fakes smoothed": check_discriminator_loss(lambda d, r, f, rl: d_loss(d, r, f, rl, fake_label=1 - rl)),
    "no smoothing": check_discriminator_loss(lambda d, r, f, rl: d_loss(d, r, f, 1.0)),
    "0.9 written in": check_discriminator_loss(lambda d, r, f, rl: d_loss(d, r, f, 0.9)),
    "sigmoid twice": check_discriminator_loss(lambda d, r, f, rl: d_loss(d, r, f, rl, sigmoid=True)),
    "probabilities": check_discriminator_loss(
        lambda d, r, f, rl: F.binary_cross_entropy(d(r), torch.full_like(d(r), rl))
        + F.binary_cross_entropy(d(f.detach()), torch.zeros_like(d(f.detach())))),
    "mean of the halves": check_discriminator_loss(lambda d, r, f, rl: d_loss(d, r, f, rl, mean=True)),
    "saturating": check_generator_loss(lambda d, f: g_loss(d, f, saturating=True)),
    "labelled fake": check_generator_loss(lambda d, f: g_loss(d, f, label=0.0)),
    "smoothed target": check_generator_loss(lambda d, f: g_loss(d, f, label=0.9)),
    "generator detached": check_generator_loss(lambda d, f: g_loss(d, f, detach=True)),
    "generator sigmoid twice": check_generator_loss(lambda d, f: g_loss(d, f, sigmoid=True)),
    "item": check_generator_loss(lambda d, f: g_loss(d, f).item()),
    "no_grad": check_generator_loss(lambda d, f: g_loss(d, f).detach()),
})


# What dlab.exercise itself says: of a wrong generator_loss, and of the scaffold as the lab ships it.
def generator_loss(discriminator, fake):
    return g_loss(discriminator, fake, saturating=True)


def discriminator_loss(discriminator, real, fake, real_label):  # the scaffold, as the lab has it
    raise NotImplementedError


for name, function, check in (("scaffold", discriminator_loss, check_discriminator_loss),
                              ("wrong", generator_loss, check_generator_loss)):
    try:
        dlab.exercise(function, check, lab=LAB)
    except (ExerciseNotDone, ExerciseWrong) as error:
        said[name] = f"{type(error).__name__}: {error}"
# A right answer written another way passes: the mean of the two halves instead of their sum.
assert said["mean of the halves"] is None, said["mean of the halves"]
print(json.dumps({"solutions": list(CHECKS), "said": said, "expected": EXPECTED}))
