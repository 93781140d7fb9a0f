"""`seedlab model train`: phases over an SDG run into a checkpoint folder that a killed run resumes from."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from seedlab.charts import chart
from seedlab.config import PhaseConfig, Settings
from seedlab.errors import SeedlabError
from seedlab.fsutil import open_run, read_json_object, write_text_atomic
from seedlab.train._data import length_batches, load_samples, padding_share, replay_mix, tokenize
from seedlab.train._dist import STRATEGIES, Ranks, gathered, share, start, stop, wrap
from seedlab.train._loop import PhasePlan, latest_checkpoint, load_weights, run_phase, use_bf16


@dataclass(frozen=True)
class TrainOptions:
    """What one `model train` invocation asks for (None: from config)."""

    data: str | None = None  # an SDG run id or folder
    knowledge_data: Path | None = None
    skills_data: Path | None = None
    phases: str | None = None  # "skills" skips the knowledge phase
    max_steps: int | None = None
    model: str | None = None
    resume: str | None = None  # a training run id or folder
    replay_data: Path | None = None  # extra samples mixed into the skills phase
    replay_ratio: float = 0.2  # their share of that phase
    full: bool = False  # tune every weight instead of a LoRA adapter


@dataclass
class TrainResult:
    run_dir: Path
    adapter: Path
    phases: dict[str, dict[str, Any]]
    main: bool = True  # False on the other ranks of a torchrun job, which print nothing


def train(settings: Settings, options: TrainOptions, echo: Callable[[str], None] = print,
          model_loader: Callable[[str], tuple[Any, Any]] | None = None,
          progress: Callable[[dict[str, Any]], None] | None = None) -> TrainResult:
    """Train the phases in order, each from the previous one's adapter, and write the final adapter.

    `progress` sees each step's metrics row (phase, step, steps, loss, ...). Under torchrun (WORLD_SIZE > 1)
    every rank runs this; rank 0 alone prints and writes files."""
    ranks = start()
    try:
        return _train(settings, options, echo if ranks.main else (lambda _line: None), model_loader, ranks,
                      progress if ranks.main else None)
    finally:
        stop(ranks)


def _train(settings: Settings, options: TrainOptions, echo: Callable[[str], None],
           model_loader: Callable[[str], tuple[Any, Any]] | None, ranks: Ranks,
           progress: Callable[[dict[str, Any]], None] | None) -> TrainResult:
    import torch

    config = settings.config.train
    run_dir, info = share(open_run(settings.checkpoints_path, options.resume, options, "training")
                          if ranks.main else None, ranks)
    saved = options if not options.resume else TrainOptions(**info["options"])
    files = _data_files(settings, saved)
    phases = [p for p in config.phases if saved.phases != "skills" or p.data == "skills"]
    model, tokenizer = (model_loader or _load_model)(saved.model or settings.config.model.default)
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit and config.max_length > limit:
        raise SeedlabError(f"train.max_length={config.max_length} is longer than the model takes ({limit} tokens); "
                           f"lower it in config")
    torch.manual_seed(config.seed)  # the same LoRA initialisation on every rank and every run
    core = prepare_model(model, config, saved.full, ranks.device)
    if config.strategy not in STRATEGIES:
        raise SeedlabError(f"train.strategy={config.strategy!r}: choose one of {', '.join(STRATEGIES)}")
    finished = {p.name: read_json_object(run_dir / f"phase-{p.name}" / "done.json") for p in phases}
    for phase in phases:  # a resumed run starts from the last finished phase, loaded before any sharding
        if not finished[phase.name]:
            break
        load_weights(core, run_dir / f"phase-{phase.name}" / "final")
    model = wrap(core, ranks, config.strategy, use_bf16(ranks.device.split(":")[0]))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    metrics = run_dir / "metrics.jsonl"

    def log(row: dict[str, Any]) -> None:
        with open(metrics, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
        if progress is not None:
            progress(row)

    results: dict[str, dict[str, Any]] = {}
    for phase in phases:
        folder = run_dir / f"phase-{phase.name}"
        done = finished[phase.name]
        if done:
            results[phase.name] = done
            echo(f"phase {phase.name}: done earlier (loss {done['first_loss']:.3f} -> {done['last_loss']:.3f})")
            continue
        path = files.get(phase.data)
        if path is None:
            raise SeedlabError(f"phase {phase.name} needs {phase.data} data; pass --data RUN or --{phase.data}-data F")
        samples, report = load_samples(path)
        if phase.data == "skills" and saved.replay_data:
            samples = replay_mix(samples, load_samples(Path(saved.replay_data))[0], saved.replay_ratio, config.seed)
            echo(f"phase {phase.name}: {len(samples) - report.kept} replay samples from {saved.replay_data}")
        examples = tokenize(samples, tokenizer, config.max_length, report)
        if not examples:
            raise SeedlabError(f"{path}: no sample fits in train.max_length={config.max_length} tokens; raise it")
        batches = length_batches(examples, config.tokens_per_batch)
        share_padding = padding_share(examples, batches)
        for number, why in report.invalid[:5]:
            echo(f"warning: {path}:{number}: skipped, {why}")
        echo(f"phase {phase.name}: {len(examples)} samples from {path.name} ({len(report.invalid)} invalid lines, "
             f"{report.too_long} over {config.max_length} tokens), {len(batches)} batches, padding {share_padding:.1%}")
        plan = PhasePlan(phase.name, phase.epochs, phase.lr, phase.warmup, options.max_steps or phase.max_steps,
                         config.grad_accum, config.save_every, config.seed)
        if ranks.main:
            folder.mkdir(parents=True, exist_ok=True)
            _write_meta(folder, phase, plan, path, len(examples), share_padding, config, results)
            _forget_steps_after_checkpoint(metrics, phase.name, folder)
        with _memory_hint(config):
            result = run_phase(model, examples, batches, plan, pad_id, folder, log, ranks)
        weights, _ = gathered(model)
        if ranks.main:
            _save_model(core, folder / "final", weights)
            result["padding"] = round(share_padding, 4)
            write_text_atomic(folder / "done.json", json.dumps(result, indent=2))
        results[phase.name] = result
        echo(f"phase {phase.name}: {result['steps']} steps, loss {result['first_loss']:.3f} -> "
             f"{result['last_loss']:.3f}")
    adapter = run_dir / ("model" if saved.full else "adapter")
    weights, _ = gathered(model)
    if ranks.main:
        _save_model(core, adapter, weights)
        if saved.full:
            tokenizer.save_pretrained(adapter)  # a whole model folder that chat and serve load with --model
        _plot(metrics, run_dir / "loss.png")
        info.update(status="finished", finished=datetime.now(UTC).isoformat(timespec="seconds"), phases=results)
        write_text_atomic(run_dir / "run.json", json.dumps(info, indent=2))
    return TrainResult(run_dir, adapter, results, ranks.main)


def _save_model(core: Any, folder: Path, weights: dict[str, Any] | None) -> None:
    """The adapter (or whole model) in its Hugging Face format; `weights` when FSDP gathered them."""
    core.save_pretrained(folder, **({"state_dict": weights} if weights is not None else {}))


@contextlib.contextmanager
def _memory_hint(config: Any) -> Iterator[None]:
    """Running out of memory names the settings to lower; finished checkpoints stay, so --resume continues."""
    import torch

    hint = (f"out of memory with train.tokens_per_batch={config.tokens_per_batch} and train.max_length="
            f"{config.max_length}: lower them in config (raise train.grad_accum to keep the batch), then --resume")
    try:
        yield
    except (torch.OutOfMemoryError, MemoryError) as error:
        raise SeedlabError(hint) from error
    except RuntimeError as error:
        if "can't allocate memory" not in str(error) and "not enough memory" not in str(error):
            raise
        raise SeedlabError(hint) from error


def _write_meta(folder: Path, phase: PhaseConfig, plan: PhasePlan, path: Path, samples: int, padding: float,
                config: Any, results: dict[str, Any]) -> None:
    """The phase's resolved settings, data hash and parent, beside its checkpoints."""
    write_text_atomic(folder / "meta.json", json.dumps({
        "phase": dataclasses.asdict(phase), "plan": dataclasses.asdict(plan), "data": str(path),
        "data_sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "samples": samples,
        "padding": round(padding, 4), "parent": results and list(results)[-1] or None,
        "train_config": {k: v for k, v in dataclasses.asdict(config).items() if k != "phases"}}, indent=2))


def _forget_steps_after_checkpoint(metrics: Path, phase: str, folder: Path) -> None:
    """A resumed phase repeats the steps after its last checkpoint: drop their old metric lines first."""
    if not metrics.exists():
        return
    checkpoint = latest_checkpoint(folder)
    saved = read_json_object(checkpoint / "position.json").get("step", 0) if checkpoint else 0
    rows = [json.loads(line) for line in metrics.read_text(encoding="utf-8").splitlines() if line.strip()]
    kept = [r for r in rows if r.get("phase") != phase or r.get("step", 0) <= saved]
    if len(kept) != len(rows):
        write_text_atomic(metrics, "".join(json.dumps(r) + "\n" for r in kept))


def _data_files(settings: Settings, options: TrainOptions) -> dict[str, Path]:
    files: dict[str, Path] = {}
    if options.data:
        run = Path(options.data) if Path(options.data).is_dir() else settings.datasets_path / options.data
        if not (run / "run.json").is_file():
            raise SeedlabError(f"no data run {options.data!r} in {settings.datasets_path}; `seedlab data list`")
        files = {"knowledge": run / "knowledge.jsonl", "skills": run / "skills.jsonl"}
    if options.knowledge_data:
        files["knowledge"] = Path(options.knowledge_data)
    if options.skills_data:
        files["skills"] = Path(options.skills_data)
    if not files:
        raise SeedlabError("no training data: pass --data RUN, or --knowledge-data F and --skills-data F")
    return files


def _load_model(reference: str) -> tuple[Any, Any]:
    import torch
    import transformers

    from seedlab.backends import resolve_model
    from seedlab.backends._convert import hf_copy
    from seedlab.config import load_settings

    settings = load_settings()
    folder = hf_copy(resolve_model(reference, settings.models_path), settings.models_path)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    return model, tokenizer


def prepare_model(model: Any, config: Any, full: bool, device: str) -> Any:
    """The model as it trains: LoRA layers added (unless `full`), on `device`, frozen weights in bf16 where
    bf16 autocast runs (autocast would otherwise re-cast them on every step)."""
    import torch

    core = (model if full else _with_lora(model, config)).to(device)
    if use_bf16(device.split(":")[0]):
        for weight in core.parameters():
            if not weight.requires_grad:
                weight.data = weight.data.to(torch.bfloat16)
    return core


def _with_lora(model: Any, config: Any) -> Any:
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=config.target_modules, task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def _plot(metrics: Path, target: Path) -> None:
    """Loss per step, one line per phase."""
    rows = [json.loads(line) for line in metrics.read_text().splitlines()] if metrics.exists() else []
    with chart(target, (7, 4)) as axes:
        offset = 0
        for phase in dict.fromkeys(r["phase"] for r in rows):
            points = {r["step"]: r["loss"] for r in rows if r["phase"] == phase}
            axes.plot([offset + s for s in points], list(points.values()), label=phase)
            offset += max(points, default=0)
        axes.set_xlabel("step")
        axes.set_ylabel("loss")
        axes.legend()


__all__ = ["PhaseConfig", "TrainOptions", "TrainResult", "train"]
