"""The losses the loop trains with, from one logits recipe: next-token cross-entropy (SFT), summed sequence
log-probabilities and the DPO loss (TAO's preference tuning)."""

from __future__ import annotations

from typing import Any

from seedlab.train._data import IGNORE


def labelled_logits(model: Any, batch: dict[str, Any]) -> tuple[Any, Any]:
    """(float logits, target ids) at the positions where some row's next token is labelled: the output layer
    runs only there, so prompts and padding skip its cost, a fifth of a small model's FLOPs per token."""
    targets = batch["labels"][:, 1:]
    positions = (targets != IGNORE).any(dim=0).nonzero().squeeze(1)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                   logits_to_keep=positions).logits
    return logits.float(), targets[:, positions]


def next_token_loss(model: Any, batch: dict[str, Any]) -> Any:
    """Mean cross-entropy over the labelled tokens of a batch (what transformers computes from `labels`)."""
    import torch

    logits, wanted = labelled_logits(model, batch)
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), wanted.flatten(), ignore_index=IGNORE)


def sequence_logps(model: Any, batch: dict[str, Any]) -> Any:
    """Per row, the summed log-probability of its labelled tokens (the response)."""
    import torch

    logits, wanted = labelled_logits(model, batch)
    mask = wanted != IGNORE
    picked = torch.log_softmax(logits, dim=-1).gather(-1, wanted.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * mask).sum(dim=1)


def dpo_loss(policy_chosen: Any, policy_rejected: Any, ref_chosen: Any, ref_rejected: Any, beta: float) -> Any:
    """Mean of -log sigmoid(beta * ((pi_c - pi_r) - (ref_c - ref_r))) over pairs; inputs are summed log-probs."""
    import torch

    margin = (policy_chosen - policy_rejected) - (ref_chosen - ref_rejected)
    return -torch.nn.functional.logsigmoid(beta * margin).mean()
