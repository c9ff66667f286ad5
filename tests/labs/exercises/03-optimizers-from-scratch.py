"""Lab 03's exercises in the image: the shipped solutions pass their checks, and each wrong answer a
student may write is named with its fix (run by tests/labs/test_labs.py, as
13-debugging-a-training-run.py says)."""
import json

import jax.numpy as jnp

from dlab.checks.optimizers import check_adam, check_momentum
from dlab.exercises import load_solution

LAB = "03-optimizers-from-scratch"
CHECKS = {"momentum": check_momentum, "adam": check_adam}
EXPECTED = {"averaged momentum": "averaged form", "velocity dropped": "not carried", "uphill": "uphill",
            "no init": "zeros_like", "no bias correction": "bias correction is missing",
            "no m correction": "bias correction of m", "eps inside": "eps is inside the square root",
            "t not kept": "t is not incremented", "t after use": "t must go up by one before",
            "m unweighted": "(1 - b1) * g", "v not squared": "g ** 2", "python float": "jax.jit",
            "numbers written in": "use the arguments lr and beta"}


def make_momentum(damp=False, carry=True, sign=-1, init=jnp.zeros_like):
    def momentum(lr, beta=0.9):
        def update(g, v, p):
            new = beta * v + ((1 - beta) * g if damp else g)
            return p + sign * lr * new, new if carry else v
        return init, update
    return momentum


def make_adam(correct=(True, True), eps_inside=False, keep_t=True, t_first=True, m_weight=True, square=True,
              python_float=False):
    def adam(lr, b1=0.9, b2=0.999, eps=1e-8):
        def init(p):
            return (jnp.zeros_like(p), jnp.zeros_like(p), 0)

        def update(g, state, p):
            m, v, t = state
            new_t = t + 1
            t_used = new_t if t_first else t
            m = b1 * m + ((1 - b1) * g if m_weight else g)
            v = b2 * v + (1 - b2) * (g ** 2 if square else g)
            m_hat = m / (1 - b1 ** t_used) if correct[0] else m
            v_hat = v / (1 - b2 ** t_used) if correct[1] else v
            denominator = jnp.sqrt(v_hat + eps) if eps_inside else jnp.sqrt(v_hat) + eps
            if python_float:
                denominator = jnp.asarray([float(d) for d in denominator])  # eager only
            return p - lr * m_hat / denominator, (m, v, new_t if keep_t else t)
        return init, update
    return adam


said = {name: check(load_solution(LAB, name)) for name, check in CHECKS.items()}
said.update({
    "averaged momentum": check_momentum(make_momentum(damp=True)),
    "velocity dropped": check_momentum(make_momentum(carry=False)),
    "uphill": check_momentum(make_momentum(sign=1)),
    "no init": check_momentum(make_momentum(init=lambda p: None)),
    "no bias correction": check_adam(make_adam(correct=(False, False))),
    "no m correction": check_adam(make_adam(correct=(False, True))),
    "eps inside": check_adam(make_adam(eps_inside=True)),
    "t not kept": check_adam(make_adam(keep_t=False)),
    "t after use": check_adam(make_adam(t_first=False)),
    "m unweighted": check_adam(make_adam(m_weight=False)),
    "v not squared": check_adam(make_adam(square=False)),
    "python float": check_adam(make_adam(python_float=True)),
    # right at the check's first settings only: the rate and beta written in, the arguments ignored
    "numbers written in": check_momentum(lambda lr, beta=0.9: make_momentum()(0.1)),
})
print(json.dumps({"solutions": list(CHECKS), "said": said, "expected": EXPECTED}))
