"""Lab 14's exercises in the image: the shipped solutions pass, each wrong answer is named with its
fix (run by tests/labs/test_labs.py, as 13-debugging-a-training-run.py says)."""
import json

from dlab.checks.diffusion import check_add_noise, check_denoise_step
from dlab.exercises import load_solution

LAB = "14-diffusion"
CHECKS = {"add_noise": check_add_noise, "denoise_step": check_denoise_step}
EXPECTED = {"no square roots": "square roots", "swapped": "swapped", "alpha_bar's shrink": "sqrt(alpha_t)",
            "noise at the end": "no fresh noise"}


def denoise(x, noise, t, betas, alpha_bar, z, shrink=None, last_noise=False):
    mean = (x - betas[t] / (1 - alpha_bar[t]).sqrt() * noise) / (shrink if shrink is not None else (1 - betas[t]).sqrt())
    return mean + betas[t].sqrt() * z if t > 0 or last_noise else mean


said = {name: check(load_solution(LAB, name)) for name, check in CHECKS.items()}
said.update({
    "no square roots": check_add_noise(lambda x0, noise, ab: ab * x0 + (1 - ab) * noise),
    "swapped": check_add_noise(lambda x0, noise, ab: ab.sqrt() * noise + (1 - ab).sqrt() * x0),
    "alpha_bar's shrink": check_denoise_step(lambda x, n, t, b, ab, z: denoise(x, n, t, b, ab, z, shrink=ab[t].sqrt())),
    "noise at the end": check_denoise_step(lambda x, n, t, b, ab, z: denoise(x, n, t, b, ab, z, last_noise=True)),
})
print(json.dumps({"solutions": list(CHECKS), "said": said, "expected": EXPECTED}))
