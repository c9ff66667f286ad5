"""The check of lab 15's exercise (15-attention-and-transformers): scaled dot-product attention."""
import math


def check_attention(attention):
    """The student's attention against PyTorch's own (F.scaled_dot_product_attention), with a
    causal mask; where they part, the likeliest mistake is named."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 8, generator=g) * 2 for _ in range(3))
    mask = torch.full((5, 5), float("-inf")).triu(1)  # position i sees positions 0..i
    got = attention(q, k, v, mask)
    if not isinstance(got, torch.Tensor) or got.shape != v.shape:
        return f"it returns {type(got).__name__} {tuple(getattr(got, 'shape', ()))}: return the weighted values, shaped like v {tuple(v.shape)}"
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    if torch.allclose(got, expected, atol=1e-5):
        return None
    scores = q @ k.transpose(-2, -1)
    wrong = {
        "the scores are not scaled: divide q @ k.T by sqrt(d), the size of a query (math.sqrt(q.shape[-1])), "
        "or the softmax saturates as d grows": F.softmax(scores + mask, -1) @ v,
        "the mask is not applied: add it to the scores before the softmax (-inf where a position may not look)":
            F.softmax(scores / math.sqrt(8), -1) @ v,
        "the softmax runs over the wrong axis: each query's weights (the last axis, dim=-1) must sum to 1":
            torch.nan_to_num(F.softmax(scores / math.sqrt(8) + mask, -2)) @ v,
        "the mask is added after the softmax: add it to the scores, so that the masked weights become 0":
            torch.nan_to_num((F.softmax(scores / math.sqrt(8), -1) + mask).clamp(min=0)) @ v,
    }
    for said, value in wrong.items():
        if torch.allclose(torch.nan_to_num(got), value, atol=1e-5):
            return said
    return "it differs from softmax(q @ k.T / sqrt(d) + mask) @ v, PyTorch's F.scaled_dot_product_attention"
