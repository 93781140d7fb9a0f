"""`seedlab model train`: phases over an SDG run into a checkpoint folder that a killed run resumes from."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seedlab.backends import pad_token_id
from seedlab.charts import chart
from seedlab.config import PhaseConfig, Settings
from seedlab.errors import SeedlabError
from seedlab.fsutil import read_json_object, write_text_atomic
from seedlab.runs import finish_run, open_run
from seedlab.train._data import DataReport, Example, length_batches, load_samples, padding_share, replay_mix, tokenize
from seedlab.train._dist import STRATEGIES, Ranks, gathered, share, start, stop, wrap
from seedlab.train._loop import PhasePlan, latest_checkpoint, load_weights, metrics_log, run_phase, use_bf16
from seedlab.train._model import ModelLoader, model_loader, prepare_model


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
    replay_ratio: float | None = None  # their share of that phase (None: train.replay_ratio)
    full: bool = False  # tune every weight instead of a LoRA adapter
    phase_configs: tuple[PhaseConfig, ...] = ()  # instead of train.phases (judge train's rounds train one phase)
    runs: Path | None = None  # the folder the run folder goes into (None: paths.checkpoints)
    start_adapter: Path | None = None  # LoRA weights the first phase starts from (a release continues its previous)
    checkpoints: int | None = None  # this many evenly spaced checkpoints per phase, all kept (`seedlab build`)


@dataclass
class TrainResult:
    run_dir: Path
    adapter: Path
    phases: dict[str, dict[str, Any]]
    main: bool = True  # False on the other ranks of a torchrun job, which print nothing


def train(settings: Settings, options: TrainOptions, echo: Callable[[str], None] = print,
          loader: ModelLoader | None = None,
          progress: Callable[[dict[str, Any]], None] | None = None) -> TrainResult:
    """Train the phases in order, each from the previous one's adapter, and write the final adapter.

    `progress` sees each step's metrics row (phase, step, steps, loss, ...); `loader` loads the model (tests
    pass a tiny one). Under torchrun (WORLD_SIZE > 1) every rank runs this; rank 0 alone prints and writes."""
    ranks = start()
    try:
        run = _Training(settings, options, echo if ranks.main else (lambda _line: None), ranks)
        return run.train(model_loader(settings, loader), progress if ranks.main else None)
    finally:
        stop(ranks)


class _Training:
    """One `model train` run: its folder, options and data files, and the model while it trains."""

    def __init__(self, settings: Settings, options: TrainOptions, echo: Callable[[str], None], ranks: Ranks) -> None:
        self.config = settings.config.train
        if self.config.strategy not in STRATEGIES:
            raise SeedlabError(f"train.strategy={self.config.strategy!r}: choose one of {', '.join(STRATEGIES)}")
        root = options.runs or settings.checkpoints_path
        self.run_dir, self.info, self.options = share(open_run(root, options.resume, options, "training")
                                                      if ranks.main else None, ranks)
        self.files = _data_files(settings, self.options)
        self.model_ref = self.options.model or settings.config.model.default
        phases = list(self.options.phase_configs) or self.config.phases
        self.phases = [p for p in phases if self.options.phases != "skills" or p.data == "skills"]
        self.echo, self.ranks = echo, ranks
        self.max_steps = options.max_steps  # this invocation's, also on resume
        self.replay_ratio = self.options.replay_ratio if self.options.replay_ratio is not None \
            else self.config.replay_ratio

    def train(self, loader: ModelLoader, progress: Callable[[dict[str, Any]], None] | None) -> TrainResult:
        import torch

        model, tokenizer = loader(self.model_ref)
        limit = getattr(model.config, "max_position_embeddings", None)
        if limit and self.config.max_length > limit:
            raise SeedlabError(f"train.max_length={self.config.max_length} is longer than the model takes ({limit} "
                               f"tokens); lower it in config")
        torch.manual_seed(self.config.seed)  # the same LoRA initialisation on every rank and every run
        self.core = prepare_model(model, self.config, self.options.full, self.ranks.device)
        if self.options.start_adapter is not None:
            load_weights(self.core, Path(self.options.start_adapter))
        finished = {p.name: read_json_object(self.run_dir / f"phase-{p.name}" / "done.json") for p in self.phases}
        for phase in self.phases:  # a resumed run starts from the last finished phase, loaded before any sharding
            if not finished[phase.name]:
                break
            load_weights(self.core, self.run_dir / f"phase-{phase.name}" / "final")
        self.model = wrap(self.core, self.ranks, self.config.strategy)
        self.tokenizer = tokenizer
        self.log = metrics_log(self.run_dir / "metrics.jsonl", progress)
        results: dict[str, dict[str, Any]] = {}
        for phase in self.phases:
            done = finished[phase.name]
            if done:
                self.echo(f"phase {phase.name}: done earlier (loss {done['first_loss']:.3f} -> "
                          f"{done['last_loss']:.3f})")
            results[phase.name] = done or self._phase(phase, results)
        return self._finish(results)

    def _phase(self, phase: PhaseConfig, results: dict[str, Any]) -> dict[str, Any]:
        """Train one phase into its folder: data, meta.json, checkpoints, final weights and done.json."""
        config, folder = self.config, self.run_dir / f"phase-{phase.name}"
        path, examples, report = self._examples(phase)
        batches = length_batches(examples, config.tokens_per_batch)
        share_padding = padding_share(examples, batches)
        for number, why in report.invalid[:5]:
            self.echo(f"warning: {path}:{number}: skipped, {why}")
        self.echo(f"phase {phase.name}: {len(examples)} samples from {path.name} ({len(report.invalid)} invalid "
                  f"lines, {report.too_long} over {config.max_length} tokens), {len(batches)} batches, padding "
                  f"{share_padding:.1%}")
        plan = PhasePlan(phase.name, phase.epochs, phase.lr, phase.warmup, self.max_steps or phase.max_steps,
                         config.grad_accum, config.save_every, config.seed, config.precision,
                         keep=0 if self.options.checkpoints else 2, checkpoints=self.options.checkpoints)
        steps, tokens = planned_work(examples, batches, plan, self.ranks.world)
        rate, source = measured_tokens_per_s(self.run_dir, use_bf16(self.ranks.device.split(":")[0], config.precision))
        self.echo(f"phase {phase.name}: planned {steps} steps, {tokens:,} tokens, ~{tokens / rate / 60:.1f} min at "
                  f"{rate:.0f} tokens/s ({source})")
        started = time.monotonic()
        if self.ranks.main:
            folder.mkdir(parents=True, exist_ok=True)
            _write_meta(folder, phase, plan, path, len(examples), share_padding, config, results)
            _forget_steps_after_checkpoint(self.run_dir / "metrics.jsonl", phase.name, folder)
        with _memory_hint(config):
            result = run_phase(self.model, examples, batches, plan, pad_token_id(self.tokenizer), folder, self.log,
                               self.ranks)
        weights, _ = gathered(self.model)
        if self.ranks.main:
            _save_model(self.core, folder / "final", weights)
            result["padding"] = round(share_padding, 4)
            write_text_atomic(folder / "done.json", json.dumps(result, indent=2))
        self.echo(f"phase {phase.name}: {result['steps']} steps, loss {result['first_loss']:.3f} -> "
                  f"{result['last_loss']:.3f}, {(time.monotonic() - started) / 60:.1f} min")
        return result

    def _examples(self, phase: PhaseConfig) -> tuple[Path, list[Example], DataReport]:
        """The phase's data file and its tokenised samples (skills with --replay-data mixed in)."""
        path = self.files.get(phase.data)
        if path is None:
            raise SeedlabError(f"phase {phase.name} needs {phase.data} data; pass --data RUN or --{phase.data}-data F")
        samples, report = load_samples(path)
        replay = self.options.replay_data
        if phase.data == "skills" and replay:
            samples = replay_mix(samples, load_samples(Path(replay))[0], self.replay_ratio, self.config.seed)
            self.echo(f"phase {phase.name}: {len(samples) - report.kept} replay samples from {replay}")
        examples = tokenize(samples, self.tokenizer, self.config.max_length, report)
        if not examples:
            raise SeedlabError(f"{path}: no sample fits in train.max_length={self.config.max_length} tokens; raise it")
        return path, examples, report

    def _finish(self, results: dict[str, dict[str, Any]]) -> TrainResult:
        """The final adapter (or whole model), the loss chart, and run.json marked finished."""
        adapter = self.run_dir / ("model" if self.options.full else "adapter")
        weights, _ = gathered(self.model)
        if self.ranks.main:
            _save_model(self.core, adapter, weights)
            if self.options.full:
                self.tokenizer.save_pretrained(adapter)  # a whole model folder that chat and serve load with --model
            _plot(self.run_dir / "metrics.jsonl", self.run_dir / "loss.png")
            finish_run(self.run_dir, self.info, phases=results)
        return TrainResult(self.run_dir, adapter, results, self.ranks.main)


def trained_on(model_dir: Path) -> list[Path]:
    """The data files a `model train` output (its `adapter` or `model` folder) learned from: each phase's data
    (from its meta.json) and the skills phase's replay file; [] for any other folder."""
    run_dir = Path(model_dir).parent
    files = [Path(str(read_json_object(meta).get("data", ""))) for meta in sorted(run_dir.glob("phase-*/meta.json"))]
    replay = read_json_object(run_dir / "run.json").get("options", {}).get("replay_data")
    files += [Path(replay)] if isinstance(replay, str) and replay else []
    return [f for f in dict.fromkeys(files) if f.name and f.is_file()]


# A LoRA step on the default model on a 2-core CPU with native bf16 under bf16 autocast: median 329.8 tokens/s over
# the 2,958 steps of the 12,000-word knowledge run (2026-12-05, after the loss and attention work; was ~240). fp32:
# ~130, measured before that work and not measured again.
DEFAULT_TOKENS_PER_S = {True: 330.0, False: 130.0}


def planned_work(examples: list[Example], batches: list[list[int]], plan: PhasePlan, world: int) -> tuple[int, int]:
    """The steps a phase will take (as run_phase counts them) and the real tokens it will read."""
    epoch_steps = math.ceil(len(batches) / (plan.grad_accum * world))
    steps = min(plan.max_steps or 10**9, epoch_steps * plan.epochs)
    per_epoch = sum(len(e.input_ids) for e in examples)
    return steps, round(per_epoch * plan.epochs * steps / max(1, epoch_steps * plan.epochs))


def measured_tokens_per_s(run_dir: Path, bf16: bool = False) -> tuple[float, str]:
    """The median training speed of the newest earlier run beside this one (its metrics.jsonl), else a default."""
    for other in sorted(run_dir.parent.glob("*/metrics.jsonl"), reverse=True):
        if other.parent == run_dir:
            continue
        speeds = []
        for line in other.read_text(encoding="utf-8").splitlines()[-200:]:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and isinstance(row.get("tokens_per_s"), int | float) and row["tokens_per_s"] > 0:
                speeds.append(float(row["tokens_per_s"]))
        if speeds:
            return statistics.median(speeds), f"measured in run {other.parent.name}"
    return DEFAULT_TOKENS_PER_S[bf16], f"a default measured on a 2-core CPU, {'bf16' if bf16 else 'fp32'}"


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
