"""Lab 08's exercises in the image: the shipped solutions pass, each wrong answer is named with its
fix (run by tests/labs/test_labs.py, as 13-debugging-a-training-run.py says)."""
import json

import torch

from dlab.checks.vae import check_kl_divergence, check_reparameterise
from dlab.exercises import load_solution

LAB = "08-autoencoder-vae"
CHECKS = {"reparameterise": check_reparameterise, "kl_divergence": check_kl_divergence}
EXPECTED = {
    "the variance as the spread": "exp(0.5 * logvar)", "torch.normal": "torch.normal", "detached": "detach",
    "its own noise": "eps that is passed in", "no mean": "mean is missing",
    "KL sign": "sign", "KL without the 1": "1 is missing", "KL without the 0.5": "0.5 is missing",
    "KL mean over the code": "sum them", "KL summed over the batch": "average over the batch",
    "KL per image": "one", "KL with the spread": "variance", "square root of logvar": "gives NaN",
}


def kl(mu, logvar, one=1, half=0.5, sign=-1):
    return sign * half * (one + logvar - mu ** 2 - logvar.exp())


said = {name: check(load_solution(LAB, name)) for name, check in CHECKS.items()}
said.update({
    "the variance as the spread": check_reparameterise(lambda mu, logvar, eps: mu + logvar.exp() * eps),
    "torch.normal": check_reparameterise(lambda mu, logvar, eps: torch.normal(mu, (0.5 * logvar).exp())),
    "detached": check_reparameterise(lambda mu, logvar, eps: (mu + (0.5 * logvar).exp() * eps).detach()),
    "its own noise": check_reparameterise(lambda mu, logvar, eps: mu + (0.5 * logvar).exp() * torch.randn_like(mu)),
    "no mean": check_reparameterise(lambda mu, logvar, eps: (0.5 * logvar).exp() * eps),
    "square root of logvar": check_reparameterise(lambda mu, logvar, eps: mu + logvar.sqrt() * eps),
    "KL sign": check_kl_divergence(lambda mu, logvar: kl(mu, logvar, sign=1).sum(1).mean()),
    "KL without the 1": check_kl_divergence(lambda mu, logvar: kl(mu, logvar, one=0).sum(1).mean()),
    "KL without the 0.5": check_kl_divergence(lambda mu, logvar: kl(mu, logvar, half=1).sum(1).mean()),
    "KL mean over the code": check_kl_divergence(lambda mu, logvar: kl(mu, logvar).mean(1).mean()),
    "KL summed over the batch": check_kl_divergence(lambda mu, logvar: kl(mu, logvar).sum()),
    "KL per image": check_kl_divergence(lambda mu, logvar: kl(mu, logvar).sum(1)),
    "KL with the spread": check_kl_divergence(
        lambda mu, logvar: (-0.5 * (1 + logvar - mu ** 2 - (0.5 * logvar).exp())).sum(1).mean()),
})
print(json.dumps({"solutions": list(CHECKS), "said": said, "expected": EXPECTED}))
