"""The checks of lab 03's exercises (03-optimizers-from-scratch): momentum and Adam as pure
functions (`init(params) -> state`, `update(grads, state, params) -> (params, state)`), run on a
fixed sequence of gradients beside PyTorch's torch.optim.SGD(momentum=...) and torch.optim.Adam."""

START = (1.0, -2.0, 0.5, 3.0)
LR = 0.1


def _gradients():
    """Five steps of gradients for four parameters: the signs change (momentum must remember), the
    first step's are all positive, and one parameter's are tiny (1e-4: there eps matters)."""
    import numpy as np

    return np.array([[0.5, 2.0, 1e-4, 0.3],
                     [-0.2, 1.5, 2e-4, 0.3],
                     [0.4, -1.0, -1e-4, 0.3],
                     [0.1, 0.5, 3e-4, -0.6],
                     [-0.3, 0.2, 1e-4, 0.3]])


def _run(make, lr=LR, **settings):
    """The student's optimizer on the fixed gradients: the parameters after each step."""
    import jax.numpy as jnp
    import numpy as np

    init, update = make(lr, **settings)
    p = jnp.asarray(START)
    state, path = init(p), []
    for g in _gradients():
        p, state = update(jnp.asarray(g, dtype=p.dtype), state, p)
        path.append(np.asarray(p, dtype=float))
    return np.array(path), state


def _torch(optimizer, lr=LR, **settings):
    import numpy as np
    import torch

    p = torch.tensor(START, dtype=torch.float64, requires_grad=True)
    opt, path = optimizer([p], lr=lr, **settings), []
    for g in _gradients():
        p.grad = torch.tensor(g)
        opt.step()
        path.append(p.detach().numpy().copy())
    return np.array(path)


def _same(a, b):
    import numpy as np

    return a.shape == b.shape and np.allclose(a, b, rtol=1e-5, atol=1e-6)


def _traceable(make):
    """None if the update runs under jax.jit (the lab's sweep compiles it), else what goes wrong."""
    import jax
    import jax.numpy as jnp

    init, update = make(LR)
    p = jnp.asarray(START)
    try:
        jax.jit(update)(p, init(p), p)
    except Exception as error:  # noqa: BLE001 - any failure to trace is the student's to hear about
        return (f"it does not run under jax.jit ({type(error).__name__}): use jnp operations on the arrays, "
                "no float(), int() or `if` on their values, so that the lab's sweep can compile it")
    return None


def _momentum_path(beta=0.9, damp=False, carry=True, sign=-1):
    import numpy as np

    p, v, path = np.array(START), np.zeros(len(START)), []
    for g in _gradients():
        new_v = beta * v + ((1 - beta) * g if damp else g)
        p = p + sign * LR * new_v
        v = new_v if carry else v
        path.append(p.copy())
    return np.array(path)


def check_momentum(momentum):
    """The student's momentum against torch.optim.SGD(momentum=0.9) (v = beta * v + g, p -= lr * v)."""
    import numpy as np
    import torch

    init, _ = momentum(LR)
    if np.shape(init(np.asarray(START))) != (len(START),):
        return "init(p) must return the velocity, zeros shaped like p: jnp.zeros_like(p)"
    got, _ = _run(momentum)
    if not _same(got, _torch(torch.optim.SGD, momentum=0.9)):
        wrong = {
            "the velocity is not carried from step to step: return the new v as the state, and start from it next step":
                _momentum_path(carry=False),
            "this is the averaged form, v = beta * v + (1 - beta) * g; this lab, like torch.optim.SGD, adds the whole "
            "gradient, v = beta * v + g (the steps are then 1/(1 - beta) = 10 times larger)": _momentum_path(damp=True),
            "the step goes uphill: p - lr * v, against the gradient": _momentum_path(sign=1),
        }
        for said, path in wrong.items():
            if _same(got, path):
                return said
        return ("after five steps it differs from torch.optim.SGD(momentum=0.9): v = beta * v + g, then "
                "p - lr * v, and return (p, v)")
    if not _same(_run(momentum, lr=0.03, beta=0.5)[0], _torch(torch.optim.SGD, lr=0.03, momentum=0.5)):
        return ("it is right at lr=0.1 and beta=0.9 only: use the arguments lr and beta, not numbers written "
                "in (the lab sweeps the learning rate)")
    return _traceable(momentum)


def _adam_path(b1=0.9, b2=0.999, eps=1e-8, correct=(True, True), eps_inside=False, t_stuck=False,
               m_weight=True, square=True):
    import numpy as np

    p, m, v, path = np.array(START), np.zeros(len(START)), np.zeros(len(START)), []
    for t, g in enumerate(_gradients(), start=1):
        t = 1 if t_stuck else t
        m = b1 * m + ((1 - b1) * g if m_weight else g)
        v = b2 * v + (1 - b2) * (g ** 2 if square else g)
        m_hat = m / (1 - b1 ** t) if correct[0] else m
        v_hat = v / (1 - b2 ** t) if correct[1] else v
        with np.errstate(invalid="ignore"):
            p = p - LR * m_hat / (np.sqrt(v_hat + eps) if eps_inside else np.sqrt(v_hat) + eps)
        path.append(p.copy())
    return np.array(path)


def check_adam(adam):
    """The student's Adam against torch.optim.Adam step by step; where they part, the likeliest
    mistake is named."""
    import numpy as np
    import torch

    got, state = _run(adam)
    if _same(got, _torch(torch.optim.Adam)):
        if not _same(_run(adam, lr=0.03, b1=0.8, b2=0.99, eps=1e-6)[0],
                     _torch(torch.optim.Adam, lr=0.03, betas=(0.8, 0.99), eps=1e-6)):
            return ("it is right with the default settings only: use the arguments lr, b1, b2 and eps, not numbers "
                    "written in (the lab sweeps the learning rate)")
        return _traceable(adam)
    if not np.isfinite(got[0]).all():
        return ("the first step is not a number: t must go up by one before it is used (t = t + 1 first), "
                "since with t = 0 the bias correction divides by 1 - b1 ** 0 = 0")
    if not np.isfinite(got).all():
        return "v is the running mean of the squared gradient, (1 - b2) * g ** 2: its square root needs it positive"
    wrong = {
        "t is not incremented from step to step: return the new t in the state, (m, v, t), so that the bias "
        "correction fades as t grows": _adam_path(t_stuck=True),
        "the bias correction is missing: divide by (1 - b1 ** t) and (1 - b2 ** t), m_hat = m / (1 - b1 ** t), "
        "v_hat = v / (1 - b2 ** t), else the first steps are far off (m and v start at 0)": _adam_path(correct=(False, False)),
        "the bias correction of m is missing: m_hat = m / (1 - b1 ** t)": _adam_path(correct=(False, True)),
        "the bias correction of v is missing: v_hat = v / (1 - b2 ** t)": _adam_path(correct=(True, False)),
        "eps is inside the square root: divide by sqrt(v_hat) + eps, as torch.optim.Adam does (inside, it "
        "damps the steps of parameters whose gradients are tiny)": _adam_path(eps_inside=True),
        "m is a running mean: m = b1 * m + (1 - b1) * g, the new gradient weighted by 1 - b1": _adam_path(m_weight=False),
        "v must use the squared gradient: v = b2 * v + (1 - b2) * g ** 2": _adam_path(square=False),
    }
    for said, path in wrong.items():
        if _same(got, path):
            return said
    return ("after five steps it differs from torch.optim.Adam: m and v are running means of g and g ** 2, "
            "t goes up by one, then p - lr * m_hat / (sqrt(v_hat) + eps) with the bias-corrected m_hat and v_hat")
