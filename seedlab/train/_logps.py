"""Per-token log-probabilities with a hand-written backward, chunked over rows.

Written by hand because torch's log_softmax needs the logits whole in float32, and it and its backward keep two
such copies; this goes through CHUNK_ROWS rows at a time in both directions and keeps one log-sum-exp per row.
It imports torch at the top, so only the trainer imports it, when it runs."""

from __future__ import annotations

from typing import Any

import torch

from seedlab.train._data import IGNORE

CHUNK_ROWS = 64  # rows turned to float32 at a time: 64 x a 49k vocabulary is 12.6 MB, near the CPU's cache


class TokenLogps(torch.autograd.Function):
    """(logits [..., vocab], targets [...]) -> log p(target) in float32, 0 where the target is IGNORE."""

    @staticmethod
    def forward(ctx: Any, logits: Any, targets: Any) -> Any:
        flat, wanted = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
        keep = wanted != IGNORE
        safe = wanted.clamp(min=0)
        lse = torch.empty(flat.shape[0], dtype=torch.float32, device=flat.device)
        picked = torch.empty_like(lse)
        for start in range(0, flat.shape[0], CHUNK_ROWS):
            end = start + CHUNK_ROWS
            part = flat[start:end].to(torch.float32, copy=True)  # a copy: it is changed in place below
            picked[start:end] = part.gather(1, safe[start:end, None])[:, 0]
            top = part.amax(dim=-1, keepdim=True)  # torch.logsumexp gives the same numbers 3-6x slower on CPU
            lse[start:end] = part.sub_(top).exp_().sum(dim=-1).log_().add_(top[:, 0])
        ctx.save_for_backward(logits, safe, keep, lse)
        return ((picked - lse) * keep).reshape(targets.shape)

    @staticmethod
    def backward(ctx: Any, grad: Any) -> tuple[Any, None]:
        logits, safe, keep, lse = ctx.saved_tensors
        flat = logits.reshape(-1, logits.shape[-1])
        weight = grad.reshape(-1).float() * keep  # d log p(t) / d logits = weight x (onehot(t) - softmax)
        out = torch.empty_like(flat)
        for start in range(0, flat.shape[0], CHUNK_ROWS):
            end = start + CHUNK_ROWS
            rows = weight[start:end, None]
            # in place on a float32 copy: torch.sub(bf16 chunk, float32 lse) is 5x slower for the same numbers
            part = flat[start:end].to(torch.float32, copy=True).sub_(lse[start:end, None]).exp_().mul_(-rows)
            out[start:end] = part.scatter_add_(1, safe[start:end, None], rows)
        return out.reshape(logits.shape), None
