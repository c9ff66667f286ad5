"""theano.tensor.signal.downsample, as Theano 0.8 kept it for the code written before pool_2d.

Theano 0.9 removed the module; Lasagne 0.1, the only Lasagne on PyPI, still imports it for its
pooling layers. dlab/legacy puts it back (images/legacy/Dockerfile) as a thin alias of what
replaced it, with the old argument names: ds (the window), st (the stride), padding.
"""
from theano.tensor.signal.pool import pool_2d

__all__ = ["max_pool_2d"]


def max_pool_2d(input, ds, ignore_border=None, st=None, padding=(0, 0), mode="max"):
    """Theano 0.8's max_pool_2d: pool_2d(input, ws=ds, stride=st, pad=padding)."""
    return pool_2d(input, ws=ds, ignore_border=ignore_border, stride=st, pad=padding, mode=mode)
