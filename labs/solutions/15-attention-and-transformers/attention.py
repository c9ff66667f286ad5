import math

import torch.nn.functional as F


def attention(q, k, v, mask):
    # How well each query matches each key, scaled so that the softmax stays soft as d grows...
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    # ...with -inf where a position may not look (the future), which the softmax turns into 0...
    weights = F.softmax(scores + mask, dim=-1)
    # ...and each position's output is the values, weighted.
    return weights @ v
