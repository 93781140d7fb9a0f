"""Preference tuning (TAO) on scored candidates: DPO on LoRA (reference = the same model with the adapter disabled, so
no second copy in memory), or rejection-sampling fine-tuning on the best responses. Both run the trainer's loop,
so checkpoints and resume work as in `model train`."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seedlab.backends import is_adapter, pad_token_id
from seedlab.config import Settings
from seedlab.errors import SeedlabError
from seedlab.fsutil import read_json_object, write_text_atomic
from seedlab.train._data import IGNORE, Example, collate, encode, length_batches
from seedlab.train._loop import BatchLoss, PhasePlan, load_weights, metrics_log, run_phase, save_tuned
from seedlab.train._losses import dpo_loss, sequence_logps
from seedlab.train._model import ModelLoader, model_loader, prepare_model


@dataclass(frozen=True)
class TuneConfig:
    method: str  # "dpo" or "rft"
    epochs: int
    lr: float
    beta: float  # DPO: how far the policy may move from the reference
    seed: int
    nll: float = 1.0  # DPO: weight of the chosen responses' own per-token loss, which keeps them likely


def chat_example(tokenizer: Any, prompt: str, response: str) -> Example:
    """The prompt as a user turn and the response as the assistant turn, loss on the response only."""
    return encode({"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]},
                  tokenizer)


def tune(settings: Settings, model_ref: str, start_adapter: Path | None, items: list[dict[str, str]], folder: Path,
         config: TuneConfig, echo: Callable[[str], None], progress: Callable[[int, int], None] | None = None,
         loader: ModelLoader | None = None) -> Path:
    """Train a LoRA adapter into `folder/adapter` from `start_adapter` (or fresh) on `items`: DPO pairs
    (prompt, chosen, rejected) or RFT samples (prompt, response). Resumes from `folder`'s checkpoints."""
    import torch

    adapter = folder / "adapter"
    if is_adapter(adapter):
        return adapter
    folder.mkdir(parents=True, exist_ok=True)
    train = settings.config.train
    model, tokenizer = model_loader(settings, loader)(model_ref)
    torch.manual_seed(train.seed)
    core = prepare_model(model, train, False, "cpu" if not torch.cuda.is_available() else "cuda:0")
    if start_adapter is not None:
        load_weights(core, start_adapter)
    pad_id = pad_token_id(tokenizer)
    if config.method == "rft":
        examples = [e for e in (chat_example(tokenizer, i["prompt"], i["response"]) for i in items)
                    if len(e.input_ids) <= train.max_length]
        batches, loss_fn, count = length_batches(examples, train.tokens_per_batch), None, len(examples)
    else:
        examples, batches, loss_fn = _dpo_data(core, tokenizer, items, folder, config, train.max_length,
                                               train.tokens_per_batch)
        count = len(examples) // 2
    if not examples:
        raise SeedlabError(f"nothing to tune on: every {config.method} sample is over "
                           f"train.max_length={train.max_length}")
    plan = PhasePlan(config.method, config.epochs, config.lr, 0.1, None, train.grad_accum, train.save_every,
                     config.seed, train.precision)
    echo(f"{config.method}: {count} {'pairs' if config.method == 'dpo' else 'samples'}, {len(batches)} batches")
    log = metrics_log(folder / "metrics.jsonl", progress and (lambda row: progress(row["step"], row["steps"])))
    result = run_phase(core, examples, batches, plan, pad_id, folder / "checkpoints", log, batch_loss=loss_fn)
    return save_tuned(core, folder, result, echo, config.method)


def _dpo_data(core: Any, tokenizer: Any, items: list[dict[str, str]], folder: Path, config: TuneConfig,
              max_length: int, tokens_per_batch: int) -> tuple[list[Example], list[list[int]], BatchLoss]:
    """Rows chosen, rejected, chosen, ... (pairs that fit), batches of pair indices, and the DPO batch loss."""
    import torch

    flat: list[Example] = []
    for item in items:
        chosen = chat_example(tokenizer, item["prompt"], item["chosen"])
        rejected = chat_example(tokenizer, item["prompt"], item["rejected"])
        if max(len(chosen.input_ids), len(rejected.input_ids)) <= max_length:
            flat += [chosen, rejected]
    device = str(next(core.parameters()).device)
    pad_id = pad_token_id(tokenizer)
    reference = _reference_logps(core, flat, pad_id, device, folder / "reference.json")
    # Batch pairs by length; each batch index list names pairs, expanded to their two rows below.
    proxies = [Example([0] * max(len(flat[2 * k].input_ids), len(flat[2 * k + 1].input_ids)), [], "")
               for k in range(len(flat) // 2)]

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

    return flat, length_batches(proxies, tokens_per_batch // 2), loss_fn


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
