"""The checks of lab 08's exercises (08-autoencoder-vae): the reparameterisation trick, and the KL
term that pulls every code distribution towards the standard normal."""


def _case():
    import torch

    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    eps = torch.randn(5, 3, generator=g)
    return mu, logvar, eps


def check_reparameterise(reparameterise):
    """z = mu + exp(0.5 * logvar) * eps, with gradients that reach mu and logvar."""
    import torch

    mu, logvar, eps = _case()
    mu, logvar = mu.requires_grad_(), logvar.requires_grad_()
    got = reparameterise(mu, logvar, eps)
    if not isinstance(got, torch.Tensor) or got.shape != mu.shape:
        return f"it returns {type(got).__name__} {tuple(getattr(got, 'shape', ()))}: return the codes z, a tensor shaped like mu {tuple(mu.shape)}"
    value = got.detach()
    mu_, logvar_ = mu.detach(), logvar.detach()
    std = (0.5 * logvar_).exp()
    if torch.allclose(value, mu_ + std * eps, atol=1e-6):
        if not got.requires_grad:
            return ("no gradient flows back to mu and logvar (a .detach(), .data or torch.no_grad() cuts the path): "
                    "compute z = mu + exp(0.5 * logvar) * eps from mu and logvar themselves")
        got.sum().backward()
        if mu.grad is None or logvar.grad is None or not torch.allclose(mu.grad, torch.ones_like(mu)):
            return "the gradient does not reach mu and logvar: compute z from them, with no .detach() on the way"
        return None
    if not torch.isfinite(value).all():
        return ("it gives NaN: logvar is the log of the variance and is negative for a spread below 1, so its "
                "square root is not a number; the spread is exp(0.5 * logvar)")
    wrong = {
        "exp(logvar) is the variance, not the spread: scale eps by the standard deviation, exp(0.5 * logvar)":
            mu_ + logvar_.exp() * eps,
        "logvar is the log of the variance: scale eps by exp(0.5 * logvar), not by logvar itself":
            mu_ + logvar_ * eps,
        "0.5 * logvar is the log of the spread, not the spread: take its exp, exp(0.5 * logvar)":
            mu_ + 0.5 * logvar_ * eps,
        "the mean is missing: z = mu + exp(0.5 * logvar) * eps, the noise scaled and then shifted to mu":
            std * eps,
        "the noise is not scaled: z = mu + exp(0.5 * logvar) * eps (each code has its own spread)": mu_ + eps,
    }
    for said, value_wrong in wrong.items():
        if torch.allclose(value, value_wrong, atol=1e-6):
            return said
    if got.requires_grad:
        got.sum().backward()
    if not got.requires_grad or mu.grad is None or not mu.grad.abs().sum() or logvar.grad is None \
            or not logvar.grad.abs().sum():
        return ("the gradient does not reach mu and logvar (torch.normal(mu, std) draws a sample with no path back "
                "to them): take the noise eps as given and write z = mu + exp(0.5 * logvar) * eps, which the "
                "gradient can flow through")
    if not torch.allclose(value, reparameterise(mu_, logvar_, eps).detach(), atol=1e-6):
        return ("it gives a different z for the same inputs: use the noise eps that is passed in, do not draw your "
                "own (the lab draws it, so that a run can be repeated)")
    return "it differs from mu + exp(0.5 * logvar) * eps"


def check_kl_divergence(kl_divergence):
    """KL(N(mu, exp(logvar)) || N(0, 1)): summed over the code's numbers, averaged over the batch."""
    import torch

    mu, logvar, _ = _case()
    mu, logvar = mu.requires_grad_(), logvar.requires_grad_()
    got = kl_divergence(mu, logvar)
    if not isinstance(got, torch.Tensor):
        return f"it returns {type(got).__name__}: return a tensor (a loss to call .backward() on), not a Python number"
    if got.numel() != 1:
        return (f"it returns {tuple(got.shape)} numbers: return one, the KL summed over the code's numbers "
                "(dim=1) and averaged over the batch (.mean())")
    if not got.requires_grad:
        return "no gradient flows back to mu and logvar (a .detach(), .item() or torch.no_grad()): compute it from them"
    got = got.detach().reshape(())
    mu, logvar = mu.detach(), logvar.detach()
    per_number = -0.5 * (1 + logvar - mu ** 2 - logvar.exp())  # (batch, code)
    expected = per_number.sum(1).mean()
    if torch.allclose(got, expected, atol=1e-5):
        return None
    wrong = {
        "the sign is flipped: the KL is -0.5 * sum(1 + logvar - mu^2 - exp(logvar)), never negative "
        "(the minus in front turns it the right way up)": -expected,
        "the 1 is missing: -0.5 * sum(1 + logvar - mu^2 - exp(logvar)) (without it a code that is already "
        "N(0, 1) costs 0.5 per number instead of 0)": (-0.5 * (logvar - mu ** 2 - logvar.exp())).sum(1).mean(),
        "the 0.5 is missing: -0.5 * sum(1 + logvar - mu^2 - exp(logvar)) (without it the KL is twice too big)":
            2 * expected,
        "it averages over the code's numbers: sum them (dim=1), the KL of a code is the sum of its numbers' "
        "KLs, then average over the batch": per_number.mean(),
        "it sums over the batch: average over the batch (the lab's reconstruction loss is per image too), "
        "after summing over the code's numbers": per_number.sum(),
        "it uses exp(0.5 * logvar), the spread, where the variance exp(logvar) belongs: "
        "-0.5 * sum(1 + logvar - mu^2 - exp(logvar))": (-0.5 * (1 + logvar - mu ** 2 - (0.5 * logvar).exp())).sum(1).mean(),
        "mu is not squared: -0.5 * sum(1 + logvar - mu^2 - exp(logvar))":
            (-0.5 * (1 + logvar - mu - logvar.exp())).sum(1).mean(),
    }
    for said, value in wrong.items():
        if torch.allclose(got, value, atol=1e-5):
            return said
    return "it differs from -0.5 * (1 + logvar - mu^2 - exp(logvar)), summed over dim=1 and averaged over the batch"
