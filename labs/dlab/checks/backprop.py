"""The check of lab 02's exercise (02-backprop-by-hand): the backward pass of a two-layer ReLU
network, written in NumPy, against PyTorch's autograd on the same numbers."""

NAMES = ("W1", "b1", "W2", "b2")


def forward(p, X, y):
    """The lab's forward pass (the cache the student's backward receives): A = X W1 + b1,
    H = relu(A), Z = H W2 + b2, P = softmax(Z), loss = mean cross-entropy."""
    import numpy as np

    A = X @ p["W1"] + p["b1"]
    H = np.maximum(A, 0)
    Z = H @ p["W2"] + p["b2"]
    Z = Z - Z.max(axis=1, keepdims=True)
    P = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
    return -np.log(P[np.arange(len(y)), y]).mean(), (X, A, H, P, y)


def _case():
    """A small batch whose sizes all differ (n=7, d=5, hidden=6, k=3), so that a transpose shows as
    a wrong shape and a forgotten 1/n as a factor of 7; about half the ReLUs are off."""
    import numpy as np

    rng = np.random.default_rng(0)
    n, d, h, k = 7, 5, 6, 3
    p = {"W1": rng.normal(0, 1, (d, h)), "b1": rng.normal(0, 0.5, h),
         "W2": rng.normal(0, 1, (h, k)), "b2": rng.normal(0, 0.5, k)}
    X, y = rng.normal(0, 1, (n, d)), np.array([0, 1, 2, 0, 1, 2, 1])
    return p, X, y


def _autograd(p, X, y):
    import torch

    t = {name: torch.tensor(value, requires_grad=True) for name, value in p.items()}
    logits = torch.relu(torch.tensor(X) @ t["W1"] + t["b1"]) @ t["W2"] + t["b2"]
    torch.nn.functional.cross_entropy(logits, torch.tensor(y)).backward()
    return {name: t[name].grad.numpy() for name in NAMES}


def _by_hand(p, cache, scale=True, onehot=True, bias="sum", relu="mask", second_input="H"):
    """The backward pass, right by default; each argument one of the wrong turns a student takes."""
    import numpy as np

    X, A, H, P, y = cache
    n = len(y)
    dZ = P.copy()
    if onehot:
        dZ[np.arange(n), y] -= 1
    if scale:
        dZ /= n
    total = (lambda D: D.sum(axis=0)) if bias == "sum" else (lambda D: D.mean(axis=0))
    grads = {"W2": (H if second_input == "H" else A).T @ dZ, "b2": total(dZ)}
    dH = dZ @ p["W2"].T
    dA = {"mask": dH * (A > 0), "from dH": dH * (dH > 0), "times H": dH * H, "none": dH,
          "tanh": dH * (1 - H ** 2)}[relu]
    grads.update(W1=X.T @ dA, b1=total(dA))
    return grads


WRONG = (
    ({"scale": False}, "every gradient is n times too large: the loss is the mean over the batch, so divide dZ by n "
                       "(dZ = (P - onehot(y)) / n), once"),
    ({"onehot": False}, "dZ must be (P - onehot(y)) / n: subtract 1 from each row's probability of its true class "
                        "(dZ[np.arange(n), y] -= 1) before dividing by n"),
    ({"bias": "mean"}, "the bias gradients are n times too small: dZ already holds the 1/n of the mean, so sum it over "
                       "the batch (dZ.sum(axis=0)), do not average it again"),
    ({"relu": "from dH"}, "the ReLU's mask is taken from the wrong array: a unit passes the gradient where its input A "
                          "was positive, dA = dH * (A > 0), not where the gradient dH is"),
    ({"relu": "times H"}, "the ReLU's derivative is the mask (A > 0), 1 or 0: dA = dH * (A > 0), not dH times the "
                          "activations H"),
    ({"relu": "none"}, "the gradient skips the ReLU: multiply dH by its derivative, the mask (A > 0), "
                       "dA = dH * (A > 0)"),
    ({"relu": "tanh"}, "(1 - H ** 2) is tanh's derivative; this network's ReLU has the mask (A > 0): dA = dH * (A > 0)"),
    ({"second_input": "A"}, "dW2 must use the second layer's input, H = relu(A) (after the ReLU), not A: "
                            "dW2 = H.T @ dZ"),
)


def check_backward(backward):
    """The student's gradients against autograd's on a small batch; where they part, the likeliest
    mistake is named."""
    import numpy as np

    p, X, y = _case()
    _, cache = forward(p, X, y)
    try:
        got = backward({name: value.copy() for name, value in p.items()}, tuple(np.copy(a) for a in cache))
    except ValueError as error:
        if "broadcast" in str(error):  # X.T @ dH * (A > 0): @ and * bind alike, left to right
            return (f"a product's shapes do not fit ({error}): an elementwise product needs brackets around it, "
                    "as in X.T @ (dH * (A > 0)), since @ and * are applied left to right")
        if "matmul" in str(error) or "shapes" in str(error):
            return (f"a product's shapes do not fit ({error}): a transpose is wrong; dH = dZ @ W2.T, and a weight's "
                    "gradient has the weight's shape, dW = input.T @ (the gradient at the layer's output)")
        raise
    if not isinstance(got, dict) or set(NAMES) - set(got):
        return "return a dict with the keys 'W1', 'b1', 'W2', 'b2': the gradient of the loss with respect to each"
    for name in NAMES:
        shape, want = np.shape(got[name]), p[name].shape
        if shape == want:
            continue
        if name.startswith("b") and len(shape) == 2 and shape[-1] == want[0]:
            if shape[0] == len(y):
                return (f"d{name} has a row per example, {shape}: every example adds to the bias's gradient, "
                        f"so sum over the batch, axis=0, to get shape {want}")
            return f"d{name} has shape {shape}: sum over axis=0 without keepdims, to get {name}'s shape {want}"
        if shape == want[::-1]:
            return (f"d{name} has shape {shape}, the transpose of {name}'s {want}: a weight's gradient has the "
                    f"weight's shape, d{name} = (the layer's input).T @ (the gradient at its output)")
        return f"d{name} has shape {shape} where {name} has {want}: a parameter's gradient has the parameter's shape"
    expected = _autograd(p, X, y)
    if all(np.allclose(got[name], expected[name], rtol=1e-9, atol=1e-12) for name in NAMES):
        return None
    for variant, said in WRONG:
        wrong = _by_hand(p, cache, **variant)
        if all(np.allclose(got[name], wrong[name], rtol=1e-9, atol=1e-12) for name in NAMES):
            return said
    first = next(name for name in ("W2", "b2", "W1", "b1")
                 if not np.allclose(got[name], expected[name], rtol=1e-9, atol=1e-12))
    return (f"d{first} differs from autograd's (largest difference {np.abs(got[first] - expected[first]).max():.2e}): "
            "follow the chain rule back from dZ = (P - onehot(y)) / n, one layer at a time")
