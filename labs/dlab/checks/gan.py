"""The checks of lab 09's exercises (09-gan): the discriminator's loss and the generator's loss of
one training step. Each is compared with the reference, in value and in the gradients it sends
into each player, and with the wrong answers a student is likeliest to write."""
import functools


def _own_random_numbers(check):
    """Run the check on random numbers of its own: the lab's stream (its seeds) is left as it was."""

    @functools.wraps(check)
    def isolated(function):
        import torch

        with torch.random.fork_rng():
            torch.manual_seed(0)
            return check(function)
    return isolated


def _players():
    """A tiny generator and discriminator (no dropout: two calls give the same scores), a batch of
    real images and a batch of fakes made by the generator, still attached to it."""
    import torch
    from torch import nn

    generator = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 6), nn.Tanh())
    discriminator = nn.Sequential(nn.Linear(6, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    with torch.no_grad():  # scores spread over a few units, so that each wrong answer has its own value
        discriminator[0].weight.mul_(3)
        discriminator[2].weight.mul_(3)
    real = torch.rand(12, 6) * 2 - 1
    fake = generator(torch.randn(12, 4))
    return generator, discriminator, real, fake


def _bce(scores, label):
    import torch
    import torch.nn.functional as F

    return F.binary_cross_entropy_with_logits(scores, torch.full_like(scores, label))


def _gradients(model, loss):
    """The gradient of loss with respect to each of model's weights (zeros where it does not reach)."""
    import torch

    weights = list(model.parameters())
    grads = torch.autograd.grad(loss, weights, retain_graph=True, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(w)).flatten() for g, w in zip(grads, weights)])


def _close(a, b):
    import torch

    return torch.allclose(a, b, rtol=1e-4, atol=1e-6)


def _called(function, *args):
    """(the loss, None), or (None, what is wrong) where the call fails as a wrong answer does."""
    import torch

    try:
        got = function(*args)
    except RuntimeError as error:
        if "between 0 and 1" in str(error):
            return None, ("F.binary_cross_entropy wants probabilities, and the discriminator gives logits (scores "
                          "of any size): use F.binary_cross_entropy_with_logits, which applies the sigmoid itself")
        raise
    if isinstance(got, float):
        return None, ("it returns a Python number: return the loss tensor itself, not loss.item(), so that "
                      "backward() can run from it")
    if not isinstance(got, torch.Tensor) or got.numel() != 1:
        return None, (f"it returns {type(got).__name__} {tuple(getattr(got, 'shape', ()))}: return the loss as a "
                      "tensor holding one number (the mean over the batch), so that backward() can run from it")
    if not got.requires_grad:
        return None, ("the loss it returns carries no gradient: compute it from the discriminator's scores with no "
                      "torch.no_grad(), .detach() or .item() on the way, and return the tensor itself")
    return got.reshape(()), None


def _named(got, wrong):
    """The message of the first wrong value that got equals (alone, or as half of it: a mean of the
    two halves instead of their sum)."""
    for said, value in wrong.items():
        if _close(got, value) or _close(got, value / 2):
            return said
    return None


@_own_random_numbers
def check_discriminator_loss(discriminator_loss):
    """The student's discriminator loss: its value, and where its gradients go (into the
    discriminator, from both halves; not into the generator)."""
    import torch

    generator, discriminator, real, fake = _players()
    real_scores, fake_scores = discriminator(real), discriminator(fake.detach())
    for real_label in (0.9, 0.8):
        got, problem = _called(discriminator_loss, discriminator, real, fake, real_label)
        if problem:
            return problem
        expected = _bce(real_scores, real_label) + _bce(fake_scores, 0.0)
        if _close(got, expected) or _close(got, expected / 2):
            continue
        if real_label == 0.8 and _named(got, {"": _bce(real_scores, 0.9) + _bce(fake_scores, 0.0)}) is not None:
            return ("with real_label=0.8 it still labels the real images 0.9: use the real_label argument, "
                    "not a number written into the function")
        said = _named(got, {
            "the real and fake labels are swapped: the discriminator must say real (real_label) to real images "
            "and fake (0) to the generator's": _bce(real_scores, 0.0) + _bce(fake_scores, real_label),
            "the fakes' label is smoothed too: only the real images' label is softened (real_label), the fakes "
            "keep 0": _bce(real_scores, real_label) + _bce(fake_scores, 1 - real_label),
            "the real images are labelled 1: label them real_label (label smoothing), so that the discriminator "
            "never grows sure of itself": _bce(real_scores, 1.0) + _bce(fake_scores, 0.0),
            "the sigmoid is applied twice: F.binary_cross_entropy_with_logits takes the raw scores (logits) and "
            "applies the sigmoid itself, so do not pass it torch.sigmoid(scores)":
                _bce(torch.sigmoid(real_scores), real_label) + _bce(torch.sigmoid(fake_scores), 0.0),
            "only the real images are in the loss: add the fakes' half, the generator's images labelled 0":
                _bce(real_scores, real_label) * 2,
            "only the fakes are in the loss: add the real images' half, labelled real_label":
                _bce(fake_scores, 0.0) * 2,
        })
        return said or (f"it gives {got.item():.4f} where {expected.item():.4f} was expected: the binary "
                        "cross-entropy (with logits) of the real images' scores against real_label plus that of "
                        "the fakes' scores against 0")
    if _gradients(generator, got).abs().sum() > 0:
        return ("the loss sends gradients into the generator: score fake.detach(), so that the discriminator's "
                "step treats the fakes as fixed images and backward() stops at them")
    if not _close(_gradients(discriminator, got), _gradients(discriminator, expected))\
            and not _close(_gradients(discriminator, got), _gradients(discriminator, expected / 2)):
        return ("the discriminator learns nothing from the fakes: detach the generator's images, "
                "discriminator(fake.detach()), not the discriminator's scores")
    return None


@_own_random_numbers
def check_generator_loss(generator_loss):
    """The student's generator loss: its value (the non-saturating form), and that its gradients
    reach the generator through the discriminator."""
    import torch

    generator, discriminator, _, fake = _players()
    got, problem = _called(generator_loss, discriminator, fake)
    if problem:
        return problem
    scores = discriminator(fake)
    expected = _bce(scores, 1.0)
    if not _close(got, expected):
        said = _named(got, {
            "this is the saturating form, log(1 - D(G(z))), minimised: while the discriminator easily spots the "
            "fakes its gradient all but vanishes; label the fakes real instead, "
            "F.binary_cross_entropy_with_logits(scores, torch.ones_like(scores))": -_bce(scores, 0.0),
            "the fakes are labelled fake (0): the generator wants the discriminator to say real, so label its "
            "images 1": _bce(scores, 0.0),
            "the generator's target is smoothed: label smoothing is for the discriminator's real images alone; "
            "the generator's fakes are labelled 1": _bce(scores, 0.9),
            "the sigmoid is applied twice: F.binary_cross_entropy_with_logits takes the raw scores (logits) and "
            "applies the sigmoid itself, so do not pass it torch.sigmoid(scores)": _bce(torch.sigmoid(scores), 1.0),
            "the sign is turned: minimise the binary cross-entropy of the fakes' scores against 1, do not "
            "maximise it": -_bce(scores, 1.0),
        })
        return said or (f"it gives {got.item():.4f} where {expected.item():.4f} was expected: the binary "
                        "cross-entropy (with logits) of the discriminator's scores of the fakes against 1")
    if _gradients(generator, got).abs().sum() == 0:
        return ("no gradient reaches the generator: do not detach the fakes here; the generator learns "
                "through the discriminator's verdict on them, discriminator(fake)")
    if not _close(_gradients(generator, got), _gradients(generator, expected)):
        return "its gradients into the generator differ from those of the binary cross-entropy of discriminator(fake) against 1"
    return None
