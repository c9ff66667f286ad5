import jax.numpy as jnp


def adam(lr, b1=0.9, b2=0.999, eps=1e-8):
    def init(p):
        return (jnp.zeros_like(p), jnp.zeros_like(p), 0)     # m, v and the step count t

    def update(g, state, p):
        m, v, t = state
        t = t + 1                                            # this is step t (from 1)
        m = b1 * m + (1 - b1) * g                            # running mean of the gradient
        v = b2 * v + (1 - b2) * g ** 2                       # running mean of its square
        # m and v start at 0, so early on they are too small by the factors 1 - b ** t: undo that.
        m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        return p - lr * m_hat / (jnp.sqrt(v_hat) + eps), (m, v, t)
    return init, update
