"""The checks of lab 13's exercises (13-debugging-a-training-run): the loss a guessing model
starts at, a training step, and an evaluation."""
import math


def check_expected_initial_loss(expected_initial_loss):
    for classes in (2, 10, 100):
        got = expected_initial_loss(classes)
        if not isinstance(got, (int, float)) or isinstance(got, bool):
            return f"it returns {got!r} for {classes} classes: return a number (a float)"
        if abs(got - math.log(classes)) > 1e-6:
            return (f"for {classes} classes it gives {got:.4f}: a model that has learned nothing gives each "
                    f"class the probability 1/{classes}, and the cross-entropy of that is -log(1/{classes})")
    return None


def _tiny_problem():
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3))
    twin = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3))
    twin.load_state_dict(model.state_dict())
    x, y = torch.randn(32, 4) * 3, torch.randint(0, 3, (32,))
    return model, twin, x, y


def _parameters(model):
    import torch

    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _reference_step(model, optimizer, xb, yb, max_norm):
    import torch
    import torch.nn.functional as F

    model.train()
    loss = F.cross_entropy(model(xb), yb)
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return loss.item()


def _own_random_numbers(check):
    """Run the check on random numbers of its own: the lab's stream (its seeds) is left as it was."""
    import functools

    @functools.wraps(check)
    def isolated(function):
        import torch

        with torch.random.fork_rng():
            return check(function)
    return isolated


@_own_random_numbers
def check_train_step(train_step):
    """Three steps of the student's train_step against the reference's, from the same weights,
    with the same dropout masks; where they part, the likeliest cause is named."""
    import torch

    max_norm = 0.05  # small: these gradients are larger, so a step that does not clip shows it
    model, twin, x, y = _tiny_problem()
    start = _parameters(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    twin_optimizer = torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9)
    model.eval()  # the step must put it in training mode itself
    for step in range(3):
        torch.manual_seed(100 + step)
        loss = train_step(model, optimizer, x, y, max_norm)
        torch.manual_seed(100 + step)
        expected = _reference_step(twin, twin_optimizer, x, y, max_norm)
        if not model.training:
            return ("the model is in evaluation mode during the step: call model.train() first (dropout "
                    "and batch norm work differently while training)")
        if not isinstance(loss, float):
            return f"it returns {type(loss).__name__}: return the batch's loss as a Python number, loss.item()"
        if abs(loss - expected) > 1e-5:
            return (f"step {step + 1} reports a loss of {loss:.5f} where {expected:.5f} was expected: "
                    "F.cross_entropy(model(xb), yb), on the model's raw outputs (logits)")
        if step == 0 and torch.equal(_parameters(model), start):
            return "the weights did not change: call optimizer.step() after loss.backward()"
        if not torch.allclose(_parameters(model), _parameters(twin), atol=1e-6):
            if step > 0:
                return ("from the second step on the weights differ: the gradients of the previous step were "
                        "added to this one's; call optimizer.zero_grad() before loss.backward()")
            return ("the first step moved the weights too far: clip the gradients to max_norm between "
                    "loss.backward() and optimizer.step(), torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)")
    return None


@_own_random_numbers
def check_evaluate(evaluate):
    """The student's evaluate on a model with dropout, left in training mode by its last step."""
    import torch

    model, _, x, y = _tiny_problem()
    model.train()
    first, second = evaluate(model, x, y), evaluate(model, x, y)
    if not isinstance(first, float) or not 0 <= first <= 1:
        return f"it returns {first!r}: return the accuracy, the fraction of right answers, as a float from 0 to 1"
    model.eval()
    with torch.no_grad():
        expected = (model(x).argmax(1) == y).float().mean().item()
    if first != second:
        return ("two evaluations of the same model give different accuracies: dropout is still on; call "
                "model.eval() before evaluating")
    if abs(first - expected) > 1e-6:
        return f"it gives {first:.4f} where {expected:.4f} was expected: the predicted class is model(X).argmax(1)"
    return None
