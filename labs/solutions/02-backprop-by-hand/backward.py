import numpy as np


def backward(p, cache):
    X, A, H, P, y = cache
    n = len(y)
    # Softmax and cross-entropy together: the probabilities, less 1 at each row's true class, over n
    # (the loss is the mean over the batch).
    dZ = P.copy()
    dZ[np.arange(n), y] -= 1
    dZ /= n
    # The second layer, Z = H W2 + b2: its input transposed on the left; the bias sums every row's share.
    grads = {"W2": H.T @ dZ, "b2": dZ.sum(axis=0)}
    # Back through W2 to H, then through the ReLU: the gradient passes where A was positive.
    dH = dZ @ p["W2"].T
    dA = dH * (A > 0)
    # The first layer, as the second.
    grads["W1"] = X.T @ dA
    grads["b1"] = dA.sum(axis=0)
    return grads
