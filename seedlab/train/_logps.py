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
            part = flat[start:end].float()
            lse[start:end] = torch.logsumexp(part, dim=-1)
            picked[start:end] = part.gather(1, safe[start:end, None])[:, 0]
        ctx.save_for_backward(logits, safe, keep, lse)
        return ((picked - lse) * keep).reshape(targets.shape)

    @staticmethod
    def backward(ctx: Any, grad: Any) -> tuple[Any, None]:
        logits, safe, keep, lse = ctx.saved_tensors
        flat = logits.reshape(-1, logits.shape[-1])
        weight = grad.reshape(-1).float() * keep  # d log p(t) / d logits = onehot(t) - softmax
        out = torch.empty_like(flat)
        for start in range(0, flat.shape[0], CHUNK_ROWS):
            end = start + CHUNK_ROWS
            part = torch.sub(flat[start:end], lse[start:end, None]).exp_().neg_()  # float32: lse is
            part.scatter_add_(1, safe[start:end, None], torch.ones_like(part[:, :1]))
            out[start:end] = part.mul_(weight[start:end, None])
        return out.reshape(logits.shape), None
