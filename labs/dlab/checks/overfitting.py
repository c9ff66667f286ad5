"""The checks of lab 05's exercises (05-overfitting-pytorch): one epoch of training over a
DataLoader's batches, and an evaluation over a DataLoader. Lab 13 checks a single step on one batch;
these check the loops around it: every batch, the mean over the epoch, the modes and no_grad."""
from dlab.checks.debugging import _own_random_numbers


def _problem():
    """A tiny model with dropout, led by a probe that records, at each forward pass, whether the
    model was in training mode and whether gradients were tracked; 70 examples in batches of 32
    (the last batch holds 6: a mean of the batches' means is not the mean over the examples)."""
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    class Probe(nn.Module):
        def __init__(self):
            super().__init__()
            self.seen = []

        def forward(self, x):
            self.seen.append((self.training, torch.is_grad_enabled()))
            return x

    def model():
        torch.manual_seed(0)
        return nn.Sequential(Probe(), nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3))

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(70, 4, generator=g) * 3, torch.randint(0, 3, (70,), generator=g)
    return model, DataLoader(TensorDataset(x, y), batch_size=32)


def _weights(model):
    import torch

    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _epoch(model, loader, augment=None, zero=True):
    """The reference epoch (zero=False: the gradients are never zeroed); the batches' losses."""
    import torch
    import torch.nn.functional as F

    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    losses = []
    for xb, yb in loader:
        if augment is not None:
            xb = augment(xb)
        loss = F.cross_entropy(model(xb), yb)
        if zero:
            optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append((loss.item(), len(yb)))
    return losses


@_own_random_numbers
def check_train_epoch(train_epoch):
    """One epoch of the student's train_epoch against the reference's, from the same weights, with
    the same dropout masks; where they part, the likeliest cause is named."""
    import torch

    make, loader = _problem()
    for augment in (None, lambda xb: xb.flip(1)):  # the second: a made-up augmentation, easy to recognise
        model, twin, calls = make(), make(), []
        start = _weights(model)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        model.eval()  # left so by an evaluation: the epoch must put it in training mode itself
        counted = None if augment is None else (lambda xb: calls.append(len(xb)) or augment(xb))
        torch.manual_seed(1)
        got = train_epoch(model, optimizer, loader, counted)
        torch.manual_seed(1)
        losses = _epoch(twin, loader, augment)
        seen = model[0].seen
        if isinstance(got, torch.Tensor):
            return ("it returns a tensor: return a Python number, summing loss.item() (a tensor kept would "
                    "also keep its whole graph alive)")
        if not isinstance(got, float):
            return f"it returns {type(got).__name__}: return the epoch's mean loss as a float"
        if len(seen) != len(loader):
            return (f"the model ran on {len(seen)} batches where the loader has {len(loader)}: one step per "
                    "batch, `for xb, yb in loader:`")
        if not all(training for training, _ in seen):
            return ("the model was in evaluation mode while it trained, so dropout was off: call model.train() "
                    "at the start of the epoch (evaluate() leaves the model in evaluation mode)")
        if augment is not None and len(calls) != len(loader):
            return (f"augment was called on {len(calls)} of the {len(loader)} batches: when it is given "
                    "(not None), train on xb = augment(xb), for every batch")
        weights, expected = _weights(model), _weights(twin)
        if torch.equal(weights, start):
            return ("the weights did not change: call optimizer.step() after loss.backward() (and "
                    "optimizer.zero_grad() before loss.backward(), not between it and the step)")
        if not torch.allclose(weights, expected, atol=1e-5):
            piled = make()
            torch.manual_seed(1)
            _epoch(piled, loader, augment, zero=False)
            if torch.allclose(weights, _weights(piled), atol=1e-5):
                return ("the gradients of each batch were added to the previous batches': call "
                        "optimizer.zero_grad() before loss.backward(), in every step")
            return ("after the epoch the weights differ from one step per batch: for each batch, "
                    "loss = F.cross_entropy(model(xb), yb) on the logits, zero_grad(), backward(), step()")
        count = sum(n for _, n in losses)
        mean = sum(loss * n for loss, n in losses) / count
        if abs(got - mean) < 1e-5:
            continue
        wrong = {
            "it averages the batches' mean losses, but the last batch is smaller: weight each by its size, "
            "total += loss.item() * len(yb), and divide by the number of examples":
                sum(loss for loss, _ in losses) / len(losses),
            "it returns the last batch's loss: return the mean over the whole epoch":
                losses[-1][0],
            "it returns the sum of the batches' losses: divide by the number of examples (weighting "
            "each batch by its size)": sum(loss for loss, _ in losses),
            "it returns the total loss without dividing: divide by the number of examples":
                sum(loss * n for loss, n in losses),
        }
        for said, value in wrong.items():
            if abs(got - value) < 1e-5:
                return said
        return (f"it returns {got:.5f} where the epoch's mean loss was {mean:.5f}: add up loss.item() * len(yb) "
                "for each batch, from the loss the step was taken on, and divide by the number of examples")
    return None


def _expected_evaluation(make, loader):
    import torch
    import torch.nn.functional as F

    model = make()
    model.eval()
    rows = []
    with torch.no_grad():
        for xb, yb in loader:
            out = model(xb)
            rows.append((F.cross_entropy(out, yb).item(), (out.argmax(1) == yb).float().mean().item(), len(yb),
                         F.cross_entropy(F.softmax(out, 1), yb).item()))
    count = sum(r[2] for r in rows)
    return rows, count


@_own_random_numbers
def check_evaluate(evaluate):
    """The student's evaluate on a model with dropout, left in training mode by its last epoch."""
    import torch

    make, loader = _problem()
    model = make()
    model.train()
    got = evaluate(model, loader)
    seen = model[0].seen
    if not isinstance(got, tuple) or len(got) != 2:
        return f"it returns {type(got).__name__}: return a pair, (mean loss, accuracy)"
    if any(isinstance(v, torch.Tensor) for v in got):
        return "it returns tensors: return Python numbers, from loss.item() and the count of right answers"
    if not all(isinstance(v, float) for v in got):
        return f"it returns ({type(got[0]).__name__}, {type(got[1]).__name__}): return two floats, (mean loss, accuracy)"
    if len(seen) != len(loader):
        return (f"the model ran on {len(seen)} batches where the loader has {len(loader)}: evaluate every "
                "batch, `for xb, yb in loader:`")
    if any(training for training, _ in seen):
        return ("the model was still in training mode, so dropout was on and the answer is random: call "
                "model.eval() before evaluating")
    if any(tracked for _, tracked in seen):
        return ("gradients were tracked while evaluating (a graph built for nothing, memory and time spent): "
                "compute inside `with torch.no_grad():`")
    rows, count = _expected_evaluation(make, loader)
    loss = sum(r[0] * r[2] for r in rows) / count
    accuracy = sum(r[1] * r[2] for r in rows) / count
    got_loss, got_accuracy = got
    if abs(got_loss - accuracy) < 1e-6 and abs(got_accuracy - loss) < 1e-5:
        return "it returns (accuracy, loss): return them in the other order, (mean loss, accuracy)"
    if not 0 <= got_accuracy <= 1:
        return (f"the accuracy is {got_accuracy!r}: return the fraction of right answers, from 0 to 1 "
                "(the count of right answers divided by the number of examples)")
    if abs(got_accuracy - accuracy) > 1e-6:
        if abs(got_accuracy - sum(r[1] for r in rows) / len(rows)) < 1e-6:
            return ("it averages the batches' accuracies, but the last batch is smaller: count the right answers "
                    "over all batches, (out.argmax(1) == yb).sum().item(), and divide by the number of examples")
        return (f"the accuracy is {got_accuracy:.4f} where {accuracy:.4f} was expected: the predicted class is "
                "the largest logit, model(xb).argmax(1)")
    if abs(got_loss - loss) > 1e-5:
        if abs(got_loss - sum(r[0] for r in rows) / len(rows)) < 1e-5:
            return ("it averages the batches' mean losses, but the last batch is smaller: weight each by its size, "
                    "loss.item() * len(yb), and divide by the number of examples")
        if abs(got_loss - sum(r[3] * r[2] for r in rows) / count) < 1e-5:
            return "the loss is taken on probabilities: F.cross_entropy(model(xb), yb), on the logits"
        return (f"the mean loss is {got_loss:.5f} where {loss:.5f} was expected: F.cross_entropy(model(xb), yb) "
                "on the logits, weighted by each batch's size, over the number of examples")
    return None
