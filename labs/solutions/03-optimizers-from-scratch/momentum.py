import jax.numpy as jnp


def momentum(lr, beta=0.9):
    def init(p):
        return jnp.zeros_like(p)            # the velocity starts at rest

    def update(g, v, p):
        v = beta * v + g                    # a running sum of past gradients, the older ones faded by beta
        return p - lr * v, v                # step along the velocity; the new v is the next step's state
    return init, update
