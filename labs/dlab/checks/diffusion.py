"""The checks of lab 14's exercises (14-diffusion): noising an image to step t in one go, and one
step of the reverse process."""


def _case():
    import torch

    g = torch.Generator().manual_seed(0)
    x, noise = torch.rand(6, 64, generator=g) * 2 - 1, torch.randn(6, 64, generator=g)
    alpha_bar = torch.linspace(0.95, 0.05, 6)[:, None]
    return x, noise, alpha_bar


def check_add_noise(add_noise):
    import torch

    x0, noise, alpha_bar = _case()
    got = add_noise(x0, noise, alpha_bar)
    if not isinstance(got, torch.Tensor) or got.shape != x0.shape:
        return f"it returns {type(got).__name__} {tuple(getattr(got, 'shape', ()))}: return a tensor shaped like x0, {tuple(x0.shape)}"
    expected = alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise
    if torch.allclose(got, expected, atol=1e-6):
        return None
    if torch.allclose(got, alpha_bar * x0 + (1 - alpha_bar) * noise, atol=1e-6):
        return ("the weights are the square roots: sqrt(alpha_bar) * x0 + sqrt(1 - alpha_bar) * noise, so that "
                "by the last step the noisy image has the spread of the noise alone (variances add, not spreads)")
    if torch.allclose(got, alpha_bar.sqrt() * noise + (1 - alpha_bar).sqrt() * x0, atol=1e-6):
        return "image and noise are swapped: the image keeps sqrt(alpha_bar) of itself, the noise gets sqrt(1 - alpha_bar)"
    return "it differs from sqrt(alpha_bar) * x0 + sqrt(1 - alpha_bar) * noise"


def _schedule():
    import torch

    betas = torch.linspace(1e-4, 0.1, 50)
    return betas, torch.cumprod(1 - betas, 0)


def _reference(x, predicted_noise, t, betas, alpha_bar, z):
    mean = (x - betas[t] / (1 - alpha_bar[t]).sqrt() * predicted_noise) / (1 - betas[t]).sqrt()
    return mean + betas[t].sqrt() * z if t > 0 else mean


def check_denoise_step(denoise_step):
    import torch

    betas, alpha_bar = _schedule()
    x, noise, _ = _case()
    z = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    for t in (30, 0):
        got = denoise_step(x, noise, t, betas, alpha_bar, z)
        if not isinstance(got, torch.Tensor) or got.shape != x.shape:
            return f"it returns {type(got).__name__}: return the tensor x at step t - 1, shaped like x"
        expected = _reference(x, noise, t, betas, alpha_bar, z)
        if torch.allclose(got, expected, atol=1e-5):
            continue
        if t == 0 and torch.allclose(got, expected + betas[0].sqrt() * z, atol=1e-5):
            return "at the last step (t = 0) no fresh noise is added: return the mean alone"
        mean_with_alpha_bar = (x - betas[t] / (1 - alpha_bar[t]).sqrt() * noise) / alpha_bar[t].sqrt()
        if torch.allclose(got, mean_with_alpha_bar + (betas[t].sqrt() * z if t else 0), atol=1e-5):
            return ("divide by sqrt(alpha_t) = sqrt(1 - beta_t), this step's alone, not by sqrt(alpha_bar_t): "
                    "one step undoes one step's shrinking")
        return (f"at t = {t} it differs from (x - beta_t / sqrt(1 - alpha_bar_t) * predicted_noise) / sqrt(1 - beta_t)"
                " + sqrt(beta_t) * z")
    return None
