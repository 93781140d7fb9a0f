"""Tuning the policy on scored candidates: DPO on LoRA (reference = the same model with the adapter disabled, so
no second copy in memory), or rejection-sampling fine-tuning on the best responses. Both run the trainer's loop,
so checkpoints and resume work as in `model train`."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seedlab.config import Settings
from seedlab.errors import SeedlabError
from seedlab.fsutil import read_json_object, write_text_atomic
from seedlab.train._data import IGNORE, Example, collate, encode, length_batches
from seedlab.train._loop import PhasePlan, load_weights, run_phase


@dataclass(frozen=True)
class TuneConfig:
    method: str  # "dpo" or "rft"
    epochs: int
    lr: float
    beta: float  # DPO: how far the policy may move from the reference
    seed: int
    nll: float = 1.0  # DPO: weight of the chosen responses' own per-token loss, which keeps them likely


def dpo_loss(policy_chosen: Any, policy_rejected: Any, ref_chosen: Any, ref_rejected: Any, beta: float) -> Any:
    """Mean of -log sigmoid(beta * ((pi_c - pi_r) - (ref_c - ref_r))) over pairs; inputs are summed log-probs."""
    import torch

    margin = (policy_chosen - policy_rejected) - (ref_chosen - ref_rejected)
    return -torch.nn.functional.logsigmoid(beta * margin).mean()


def sequence_logps(model: Any, batch: dict[str, Any]) -> Any:
    """Per row, the summed log-probability of its labelled tokens (the response), the output layer run only at
    positions some row needs."""
    import torch

    targets = batch["labels"][:, 1:]
    positions = (targets != IGNORE).any(dim=0).nonzero().squeeze(1)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                   logits_to_keep=positions).logits.float()
    wanted = targets[:, positions]
    mask = wanted != IGNORE
    picked = torch.log_softmax(logits, dim=-1).gather(-1, wanted.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * mask).sum(dim=1)


def chat_example(tokenizer: Any, prompt: str, response: str) -> Example:
    """The prompt as a user turn and the response as the assistant turn, loss on the response only."""
    return encode({"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]},
                  tokenizer)


def tune(settings: Settings, model_ref: str, start_adapter: Path | None, items: list[dict[str, str]], folder: Path,
         config: TuneConfig, echo: Callable[[str], None], progress: Callable[[int, int], None] | None = None) -> Path:
    """Train a LoRA adapter into `folder/adapter` from `start_adapter` (or fresh) on `items`: DPO pairs
    (prompt, chosen, rejected) or RFT samples (prompt, response). Resumes from `folder`'s checkpoints."""
    import torch

    from seedlab.train._run import _load_model, prepare_model

    adapter = folder / "adapter"
    if (adapter / "adapter_config.json").is_file():
        return adapter
    folder.mkdir(parents=True, exist_ok=True)
    train = settings.config.train
    model, tokenizer = _load_model(model_ref)
    torch.manual_seed(train.seed)
    core = prepare_model(model, train, False, "cpu" if not torch.cuda.is_available() else "cuda:0")
    if start_adapter is not None:
        load_weights(core, start_adapter)
    device = str(next(core.parameters()).device)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    limit = train.max_length
    if config.method == "rft":
        examples = [e for e in (chat_example(tokenizer, i["prompt"], i["response"]) for i in items)
                    if len(e.input_ids) <= limit]
        batches = length_batches(examples, train.tokens_per_batch)
        loss_fn = None
    else:
        flat: list[Example] = []
        for item in items:
            chosen = chat_example(tokenizer, item["prompt"], item["chosen"])
            rejected = chat_example(tokenizer, item["prompt"], item["rejected"])
            if max(len(chosen.input_ids), len(rejected.input_ids)) <= limit:
                flat += [chosen, rejected]
        examples = flat
        reference = _reference_logps(core, flat, pad_id, device, folder / "reference.json")
        # Batch pairs by length; each batch index list names pairs, expanded to their two rows below.
        proxies = [Example([0] * max(len(flat[2 * k].input_ids), len(flat[2 * k + 1].input_ids)), [], "")
                   for k in range(len(flat) // 2)]
        batches = length_batches(proxies, train.tokens_per_batch // 2)

        def loss_fn(model: Any, pairs: list[int]) -> tuple[Any, int]:
            rows = [r for k in pairs for r in (2 * k, 2 * k + 1)]
            batch = {key: v.to(device) for key, v in collate(flat, rows, pad_id).items()}
            logps = sequence_logps(model, batch)
            ref = torch.tensor([reference[r] for r in rows], dtype=logps.dtype, device=logps.device)
            loss = dpo_loss(logps[0::2], logps[1::2], ref[0::2], ref[1::2], config.beta)
            # DPO alone can lower the chosen responses' likelihood too and drift into degenerate text (on the
            # shipped example, 62 steps at lr 5e-4 ended in "JSON JSON JSON ..."); their own loss prevents it.
            counts = (batch["labels"][0::2, 1:] != IGNORE).sum(dim=1).clamp(min=1)
            loss = loss + config.nll * (-logps[0::2] / counts).mean()
            return loss, int(batch["attention_mask"].sum())

    if not examples:
        raise SeedlabError(f"nothing to tune on: every {config.method} sample is over train.max_length={limit}")
    plan = PhasePlan(config.method, config.epochs, config.lr, 0.1, None, train.grad_accum, train.save_every,
                     config.seed)
    metrics = folder / "metrics.jsonl"

    def log(row: dict[str, Any]) -> None:
        with open(metrics, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
        if progress is not None:
            progress(row["step"], row["steps"])

    count = len(examples) // (2 if config.method == "dpo" else 1)
    echo(f"{config.method}: {count} {'pairs' if config.method == 'dpo' else 'samples'}, {len(batches)} batches")
    result = run_phase(core, examples, batches, plan, pad_id, folder / "checkpoints", log, batch_loss=loss_fn)
    staging = folder / ".adapter.partial"
    core.save_pretrained(staging)
    staging.rename(adapter)
    write_text_atomic(folder / "done.json", json.dumps(result, indent=2))
    echo(f"{config.method}: {result['steps']} steps, loss {result['first_loss']:.3f} -> {result['last_loss']:.3f}")
    return adapter


def _reference_logps(core: Any, flat: list[Example], pad_id: int, device: str, cache: Path) -> list[float]:
    """Every row's log-probability under the model with its adapter off, computed once and saved."""
    import torch

    saved = read_json_object(cache).get("logps")
    if isinstance(saved, list) and len(saved) == len(flat):
        return [float(v) for v in saved]
    values: list[float] = []
    core.eval()
    with torch.no_grad(), core.disable_adapter():
        for start in range(0, len(flat), 16):
            rows = list(range(start, min(len(flat), start + 16)))
            batch = {key: v.to(device) for key, v in collate(flat, rows, pad_id).items()}
            values += [float(v) for v in sequence_logps(core, batch)]
    core.train()
    write_text_atomic(cache, json.dumps({"logps": values}))
    return values
