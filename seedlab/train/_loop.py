"""The training loop, written out: batches -> loss -> step, with checkpoints that resume exactly."""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seedlab.fsutil import disk_full_error
from seedlab.train._data import Example, collate, epoch_order
from seedlab.train._dist import ALONE, Ranks, accumulating, barrier, gathered, reduce_sum, scatter, sharded, unwrap
from seedlab.train._losses import next_token_loss


@dataclass(frozen=True)
class PhasePlan:
    """One phase, resolved: its data, epochs and optimiser settings."""

    name: str
    epochs: int
    lr: float
    warmup: float  # share of the phase's steps spent warming up
    max_steps: int | None
    grad_accum: int
    save_every: int
    seed: int
    precision: str = "auto"  # train.precision: auto, fp32 or bf16
    keep: int = 2  # newest checkpoints kept (0: all, which `seedlab build` scores to choose one)
    checkpoints: int | None = None  # instead of save_every: this many evenly spaced checkpoints in the phase


def lr_lambda(total: int, warmup_steps: int) -> Callable[[int], float]:
    """Linear warm-up, then cosine decay to zero."""

    def scale(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return scale


def use_bf16(device: str, precision: str = "auto") -> bool:
    """Whether training runs under bf16 autocast: as `precision` says, or with "auto" on CUDA and on CPUs whose
    torch build runs bf16 matrix products (elsewhere bf16 is emulated, hundreds of times slower)."""
    import torch

    if precision not in ("auto", "fp32", "bf16"):
        from seedlab.errors import SeedlabError

        raise SeedlabError(f"train.precision={precision!r}: choose auto, fp32 or bf16")
    if precision != "auto":
        return precision == "bf16"
    if device == "cuda":
        return True
    try:
        return bool(torch.backends.mkldnn.is_available()) and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    except (AttributeError, RuntimeError):
        return False


BatchLoss = Callable[[Any, list[int]], tuple[Any, int]]  # (model, indices of one batch) -> (loss, tokens)


def run_phase(model: Any, examples: list[Example], batches: list[list[int]], plan: PhasePlan, pad_id: int,
              folder: Path, log: Callable[[dict[str, Any]], None], ranks: Ranks = ALONE,
              batch_loss: BatchLoss | None = None) -> dict[str, Any]:
    """Train one phase, checkpointing into `folder`; resumes from its latest checkpoint when there is one.

    A step takes `grad_accum x world` batches of the epoch's order, split across ranks, so N processes with
    grad_accum 1 take the same steps as one process with grad_accum N. The loss is next-token cross-entropy on
    `examples`, or `batch_loss` (preference training brings its own)."""
    import torch

    def token_loss(model: Any, indices: list[int]) -> tuple[Any, int]:
        batch = {key: v.to(ranks.device) for key, v in collate(examples, indices, pad_id).items()}
        return next_token_loss(model, batch), int(batch["attention_mask"].sum())

    per_step = plan.grad_accum * ranks.world
    total = min(plan.max_steps or 10**9, math.ceil(len(batches) / per_step) * plan.epochs)
    save_every = math.ceil(total / plan.checkpoints) if plan.checkpoints else plan.save_every
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=plan.lr, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(total, max(1, int(plan.warmup * total))))
    step, epoch, position = 0, 0, 0
    latest = latest_checkpoint(folder)
    if latest is not None:
        step, epoch, position = _restore(latest, unwrap(model), optimizer, scheduler)
    else:
        torch.manual_seed(plan.seed)
        random.seed(plan.seed)
    bf16 = use_bf16(ranks.device.split(":")[0], plan.precision)
    model.train()
    losses: list[tuple[int, float]] = []  # (epoch, loss) of the steps run in this process
    while step < total:
        order = epoch_order(len(batches), plan.seed, epoch)
        while position < len(order) and step < total:
            start = time.perf_counter()
            group = order[position: position + per_step]
            loss, tokens = _accumulate(model, [batches[i] for i in group], batch_loss or token_loss, ranks, bf16)
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step, position = step + 1, position + len(group)
            losses.append((epoch, loss))
            if ranks.main:
                log({"phase": plan.name, "step": step, "steps": total, "epoch": epoch, "loss": round(loss, 5),
                     "lr": scheduler.get_last_lr()[0], "tokens": tokens,
                     "tokens_per_s": round(tokens / (time.perf_counter() - start), 1)})
            if step % save_every == 0 or step == total:
                weights, optimizer_state = gathered(model, optimizer)  # FSDP: every rank sends its shards
                if ranks.main:
                    _save(folder, step, epoch, position, unwrap(model), optimizer, scheduler, weights, optimizer_state)
                    _prune(folder, plan.keep)
                barrier(ranks)
        if position >= len(order):
            epoch, position = epoch + 1, 0
    means = _epoch_means(losses)
    return {"steps": step, "first_loss": means[0] if means else None, "last_loss": means[-1] if means else None,
            "epoch_losses": [round(m, 4) for m in means]}


def _accumulate(model: Any, group: list[list[int]], loss_of: BatchLoss, ranks: Ranks,
                bf16: bool) -> tuple[float, int]:
    """Forward and backward over one step's batches, this rank's share of them; (mean loss, tokens) over ranks.

    Each batch weighs 1/len(group) after DDP averages over ranks; a rank short of batches repeats one with
    weight 0 so its collective calls still match the others'."""
    import torch

    device = ranks.device.split(":")[0]
    mine = group[ranks.rank::ranks.world]
    rounds = math.ceil(len(group) / ranks.world)  # every rank runs as many passes, or DDP would hang
    loss_sum, tokens = 0.0, 0
    for k in range(rounds):
        batch, weight = (mine[k], ranks.world / len(group)) if k < len(mine) else (group[0], 0.0)
        with accumulating(model, k == rounds - 1 or ranks.world == 1):
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
                loss, count = loss_of(model, batch)
            (loss * weight).backward()
        loss_sum += float(loss.detach()) * weight / ranks.world
        tokens += count if weight else 0
    loss_all, tokens_all = reduce_sum([loss_sum, float(tokens)], ranks)
    return loss_all, int(tokens_all)


def _epoch_means(losses: list[tuple[int, float]]) -> list[float]:
    """Mean step loss per epoch: single steps are noisy (batches differ in length and content)."""
    by_epoch: dict[int, list[float]] = {}
    for epoch, value in losses:
        by_epoch.setdefault(epoch, []).append(value)
    return [sum(v) / len(v) for _, v in sorted(by_epoch.items())]


def _save(folder: Path, step: int, epoch: int, position: int, model: Any, optimizer: Any, scheduler: Any,
          weights: dict[str, Any] | None = None, optimizer_state: dict[str, Any] | None = None) -> None:
    """Adapter, optimiser, scheduler, RNG and data position, written beside and renamed into place. A sharded
    (FSDP) model passes its gathered `weights` and `optimizer_state`; its trained weights also go into
    state.pt under their module names, which is how the shards are restored."""
    import torch

    target = folder / f"step-{step:06d}"
    staging = folder / f".step-{step:06d}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        model.save_pretrained(staging, **({"state_dict": weights} if weights is not None else {}))
        trained = None
        if weights is not None:
            names = {name for name, p in model.named_parameters() if p.requires_grad}
            trained = {k: v for k, v in weights.items() if k in names}
        torch.save({"optimizer": optimizer_state if optimizer_state is not None else optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "weights": trained,
                    "torch_rng": torch.get_rng_state(), "python_rng": random.getstate()}, staging / "state.pt")
        (staging / "position.json").write_text(json.dumps({"step": step, "epoch": epoch, "position": position}))
    except BaseException as exc:
        # torch and safetensors report a full disk as their own errors; say what it is, so the CLI names it
        full = disk_full_error(folder) if isinstance(exc, Exception) and not isinstance(exc, OSError) else None
        shutil.rmtree(staging, ignore_errors=True)  # the last whole checkpoint stays the newest
        if full:
            raise full from exc
        raise
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)


def _prune(folder: Path, keep: int) -> None:
    """Delete all but the `keep` newest checkpoints (0: keep every one)."""
    for old in sorted(folder.glob("step-*"))[:-keep] if keep else []:
        shutil.rmtree(old, ignore_errors=True)


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest whole checkpoint of a phase folder, if any."""
    found = sorted(p for p in folder.glob("step-*") if (p / "position.json").is_file())
    return found[-1] if found else None


def _restore(checkpoint: Path, model: Any, optimizer: Any, scheduler: Any) -> tuple[int, int, int]:
    import torch

    state = torch.load(checkpoint / "state.pt", weights_only=False)
    if sharded(model):
        if state.get("weights") is None:
            from seedlab.errors import SeedlabError

            raise SeedlabError(f"{checkpoint} was written without FSDP; resume it with the strategy it ran with")
        scatter(model, optimizer, state["weights"], state["optimizer"])
    else:
        load_weights(model, checkpoint)
        optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    random.setstate(state["python_rng"])
    position = json.loads((checkpoint / "position.json").read_text())
    return int(position["step"]), int(position["epoch"]), int(position["position"])


def load_weights(model: Any, folder: Path) -> None:
    """Put saved weights back: a PEFT adapter's, or a whole model's (full fine-tuning)."""
    from safetensors.torch import load_file

    if (folder / "adapter_model.safetensors").is_file():
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(model, load_file(str(folder / "adapter_model.safetensors")))
    else:
        model.load_state_dict(load_file(str(folder / "model.safetensors")), strict=False)  # tied weights omitted


Log = Callable[[dict[str, Any]], None]


def metrics_log(path: Path, progress: Log | None = None) -> Log:
    """A `log` for run_phase: each step's row appended to the metrics JSONL file, then shown to `progress`."""

    def log(row: dict[str, Any]) -> None:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
        if progress is not None:
            progress(row)

    return log


def save_tuned(core: Any, folder: Path, result: dict[str, Any], echo: Callable[[str], None], name: str) -> Path:
    """A one-phase tuning's end: `folder/adapter` written beside and renamed into place, done.json, a last line."""
    from seedlab.fsutil import write_text_atomic

    staging, adapter = folder / ".adapter.partial", folder / "adapter"
    shutil.rmtree(staging, ignore_errors=True)
    core.save_pretrained(staging)
    staging.rename(adapter)
    write_text_atomic(folder / "done.json", json.dumps(result, indent=2))
    echo(f"{name}: {result['steps']} steps, loss {result['first_loss']:.3f} -> {result['last_loss']:.3f}")
    return adapter
