"""The losses the loop trains with, from one logits recipe: next-token cross-entropy (SFT), summed sequence
log-probabilities and the DPO loss (TAO's preference tuning)."""

from __future__ import annotations

from typing import Any

from seedlab.train._data import IGNORE


def labelled_logits(model: Any, batch: dict[str, Any]) -> tuple[Any, Any]:
    """(logits, target ids) at the positions where some row's next token is labelled: the output layer runs only
    there, so prompts and padding skip its cost, a fifth of a small model's FLOPs per token.

    Logits stay in the dtype the model made them (bf16 under autocast). A right-padded batch runs without its
    padding mask: under the causal mask a real token sees only real tokens before it, so nothing it computes
    changes, and attention takes its causal kernel (which skips the upper triangle) instead of a masked one.
    Under autocast, peft's LoRA layers keep bf16 inputs instead of casting them to their fp32 weights' dtype and
    back (bf16 -> fp32 -> bf16 is exact, so only the copies go)."""
    import torch
    from peft.helpers import disable_input_dtype_casting

    targets = batch["labels"][:, 1:]
    positions = (targets != IGNORE).any(dim=0).nonzero().squeeze(1)
    mask = batch["attention_mask"]
    right_padded = bool((mask[:, 1:] <= mask[:, :-1]).all())
    inputs = {"input_ids": batch["input_ids"], "attention_mask": None if right_padded else mask,
              "logits_to_keep": positions}
    with disable_input_dtype_casting(model, active=torch.is_autocast_enabled(batch["input_ids"].device.type)):
        logits = model(**inputs).logits
    return logits, targets[:, positions]


def token_logps(logits: Any, targets: Any) -> Any:
    """Log-probability of each target token (0 where the target is IGNORE), in float32, from logits of any float
    dtype: what `log_softmax(logits.float()).gather(targets)` gives, without the two float copies of the whole
    [rows x vocabulary] logits that it and its backward keep (at 2,000 labelled tokens and a 49k vocabulary,
    400 MB each: after the weights, the step's largest memory traffic)."""
    from seedlab.train._logps import TokenLogps

    return TokenLogps.apply(logits, targets)


def next_token_loss(model: Any, batch: dict[str, Any]) -> Any:
    """Mean cross-entropy over the labelled tokens of a batch (what transformers computes from `labels`)."""
    logits, wanted = labelled_logits(model, batch)
    return -token_logps(logits, wanted).sum() / (wanted != IGNORE).sum()


def sequence_logps(model: Any, batch: dict[str, Any]) -> Any:
    """Per row, the summed log-probability of its labelled tokens (the response)."""
    logits, wanted = labelled_logits(model, batch)
    return token_logps(logits, wanted).sum(dim=1)


def dpo_loss(policy_chosen: Any, policy_rejected: Any, ref_chosen: Any, ref_rejected: Any, beta: float) -> Any:
    """Mean of -log sigmoid(beta * ((pi_c - pi_r) - (ref_c - ref_r))) over pairs; inputs are summed log-probs."""
    import torch

    margin = (policy_chosen - policy_rejected) - (ref_chosen - ref_rejected)
    return -torch.nn.functional.logsigmoid(beta * margin).mean()
