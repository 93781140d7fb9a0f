"""Causal self-attention for training on CPU: matrix products over blocks of queries for rows up to SHORT
tokens, torch's kernel for the rest.

Written by hand because torch's CPU flash-attention kernel is slow on the rows SDG writes. Measured on a 2-core
bf16 CPU (AMD EPYC, avx512_bf16; 9 heads of 64 over 3 key heads, about 2,048 tokens per batch, forward and
backward, ms), torch's kernel / scores for the whole row / blocks of 128 queries: 31.6 / 25.5 / 18.4 at 200 tokens
per row, 36.3 / 48.1 / 26.1 at 320, 48.7 / 59.0 / 33.3 at 450, 56.2 / 104 / 40.1 at 600, 44.7 / 112 / 49.6 at
800. A block computes scores only for the keys up to its last query, so most of the masked half is never made.
The query heads that share a key head go into one product (no per-head copy of keys and values): 6 rows of 300
tokens 35-40 -> 31.5 ms, 3 of 600 51-54 -> 46-48, 12 of 150 23-25 -> 16-17, the same numbers to the last bit."""

from __future__ import annotations

from typing import Any

SHORT = 640  # longest row (tokens) that goes through matrix products; longer rows take torch's kernel
BLOCK = 128  # queries per block: a block skips the keys after its last query (most of the upper triangle)
NAME = "seedlab_causal"


def use_short_attention(model: Any) -> None:
    """Make a transformers model that runs SDPA attention train with `causal_attention` on CPU."""
    from transformers import AttentionInterface

    if getattr(model.config, "_attn_implementation", None) != "sdpa":
        return
    AttentionInterface.register(NAME, causal_attention)
    model.set_attn_implementation(NAME)


def causal_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, dropout: float = 0.0,
                     scaling: float | None = None, is_causal: bool | None = None, **kwargs: Any) -> tuple[Any, None]:
    """transformers' attention-function signature: [batch, heads, tokens, dim] in, [batch, tokens, heads, dim]
    out. Rows of SHORT tokens or fewer with no mask (a right-padded training batch) take scores, softmax in
    float32 and a product, as transformers' eager attention computes them; anything else goes to SDPA."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    length = query.shape[2]
    special = any(kwargs.get(k) is not None for k in ("softcap", "sliding_window", "position_bias"))
    if (attention_mask is not None or special or dropout or query.device.type != "cpu" or length > SHORT
            or length < 2 or key.shape[2] != length or is_causal is False):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    rows, heads, _, dim = query.shape
    kv_heads = key.shape[1]
    groups = heads // kv_heads
    # the query heads that share a key head go into one product with it, stacked along the queries: no copy of the
    # keys and values per query head (repeat_interleave), and 3 products a block instead of 9 for SmolLM2
    grouped = query.reshape(rows, kv_heads, groups, length, dim)  # a view whenever the layout allows
    scale = scaling if scaling is not None else dim**-0.5
    parts = []
    for start in range(0, length, BLOCK):  # a block of queries sees the keys up to its last one, no further
        end = min(length, start + BLOCK)
        above = torch.ones(end - start, end, dtype=torch.bool, device=query.device).triu_(start + 1).repeat(groups, 1)
        block = grouped[:, :, :, start:end].reshape(rows, kv_heads, groups * (end - start), dim)
        scores = torch.matmul(block, key[:, :, :end].transpose(-1, -2)).float().mul_(scale)
        weights = torch.softmax(scores.masked_fill_(above, float("-inf")), dim=-1).to(value.dtype)
        parts.append(torch.matmul(weights, value[:, :, :end]).view(rows, kv_heads, groups, end - start, dim))
    out = parts[0] if len(parts) == 1 else torch.cat(parts, dim=3)
    return out.view(rows, heads, length, dim).transpose(1, 2).contiguous(), None
