"""One typed config: every default lives here; YAML overrides it; CLI options override YAML."""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from seedlab.errors import ConfigError
from seedlab.fsutil import write_text_atomic

CONFIG_NAME = "config.yaml"
T = typing.TypeVar("T")


@dataclass
class TaxonomyConfig:
    """Where the taxonomy lives and what `taxonomy diff` compares it against."""

    path: str = "taxonomy"  # relative paths are under the data home
    base: str = "auto"  # auto (origin/main, else the first commit) | empty | any git ref


@dataclass
class PathsConfig:
    """Where generated data, checkpoints and cached models go (relative: under the data home)."""

    datasets: str = "datasets"
    checkpoints: str = "checkpoints"
    docs: str = "docs"  # local git repositories of knowledge documents
    evaluations: str = "evaluations"  # `model evaluate` reports
    judges: str = "judges"  # `judge train` runs
    tao: str = "tao"  # `tao run` runs
    builds: str = "builds"  # `seedlab build` folders, each with its release
    models: str = "models"  # relative: under the cache home


@dataclass
class ModelConfig:
    """Which model chat, serve and the trainer use when no --model is given."""

    default: str = "smollm2-135m-instruct"  # a registry name, a .gguf file or a Hugging Face folder


@dataclass
class LlamaCppConfig:
    """The embedded llama.cpp backend."""

    n_ctx: int = 4096  # context window in tokens
    n_batch: int = 512  # prompt tokens processed per step
    threads: int = 0  # 0: every core this process may use
    slots: int = 1  # model copies streaming in parallel (`model serve`); the cores are shared among them
    sequences: int = 8  # samples decoded together in one batch by every batch call (SDG, judge, TAO, evaluate)
    # The weight type llama.cpp decodes in: `auto` converts the default model (Q4_1) to Q8_0 once, for batched
    # decoding; `as-is` loads every file as it is; q8_0, f16 or bf16 convert any GGUF model.
    weights: str = "auto"
    flash_attn: bool = True  # llama.cpp's fused attention: 1.2x one stream, 1.45x at 32 sequences (README)


@dataclass
class EndpointConfig:
    """An OpenAI-compatible server to use instead of the embedded model (`--endpoint-url` overrides url)."""

    url: str | None = None  # e.g. http://127.0.0.1:8000/v1
    urls: list[str] = field(default_factory=list)  # more servers of the same model: requests spread over all
    model: str | None = None  # the server's model name; None: the first one it lists
    api_key_env: str = "OPENAI_API_KEY"  # the environment variable holding the key
    concurrency: int = 8  # requests in flight
    timeout_s: float = 120.0
    max_retries: int = 3  # retries on connection errors, 429 and 5xx, with exponential backoff


@dataclass
class ServeConfig:
    """`seedlab model serve`."""

    host: str = "127.0.0.1"
    port: int = 8000
    log_prompts: bool = True
    prompt_log: str = "logs/prompts.jsonl"  # relative: under the data home
    prompt_log_max_mb: float = 64.0  # the log rotates past this size (0: never)
    prompt_log_keep: int = 3  # rotated files kept (prompts.jsonl.1 ... .3); `tao run --from-log` reads them all


@dataclass
class SdgConfig:
    """`seedlab data generate`."""

    teacher: str = "smollm2-135m-instruct"  # the model that writes and judges the data
    # A shipped template set by name, or a .yaml file of the same shape. One set ships, 'default', written for
    # small instruct teachers; 'auto' (older configs) names it too.
    templates: str = "default"
    scale: int = 4  # new samples aimed for per seed example (knowledge: per seed question)
    pipeline: str = "full"  # full: with judges; simple: without
    judge_threshold: int = 2  # keep skill pairs the judge rates at least this (1-3)
    replay_fraction: float = 0.2  # share of the knowledge samples replayed in skills.jsonl
    seed: int = 0
    max_rounds: int = 3  # generation rounds per leaf while it is short of its target
    chunk_tokens: int = 256  # knowledge chunk size in teacher tokens
    chunk_overlap: int = 48  # tokens a chunk repeats from the one before
    recall_per_fact: int = 4  # teacher-free questions per document sentence, each cueing it by one phrase
    # Teacher-free questions per sentence asking one of its names or numbers, answered by it alone. Off: 2 per fact
    # scored 35.5 on the example's 31 held-out questions against 41.9 without (one seed; README, synthetic data).
    span_per_fact: int = 0
    # Teacher rewordings of each accepted teacher question (same answer), so a fact is asked in words the document
    # does not use, as held-out questions are. Off: 2 per question scored 33.3 on orsk-ferry's held-out questions, as
    # without them (the 135M teacher's rewordings often ask something else; README, Synthetic data).
    rephrase_per_question: int = 0


@dataclass
class PhaseConfig:
    """One training phase: which data file of an SDG run it reads and how long it trains."""

    name: str = "knowledge"
    data: str = "knowledge"  # knowledge | skills: the file of the run (or --knowledge-data/--skills-data)
    epochs: int = 6
    lr: float = 1e-3
    warmup: float = 0.05  # share of the phase's steps
    max_steps: int | None = None  # stop earlier than the epochs (--max-steps overrides)


def _default_phases() -> list[PhaseConfig]:
    # Knowledge first, many epochs (facts need repetition); then skills, whose file replays knowledge.
    # Measured on the example leaf: 5 epochs at 1e-3 in 512-token batches took held-out facts from 0 to 40-60
    # points; a skills phase at 2e-4 then lost 10 of them, so it runs gentler. With the loss on answers only
    # (knowledge samples' unmask false), 2e-3 learned 14.5 points more than 1e-3 on the example and 16.6 on
    # orsk-ferry (bench/knowledge_learning.py, two seeds); 10 epochs or rank 32 added nothing on orsk-ferry.
    return [PhaseConfig("knowledge", "knowledge", 6, 2e-3), PhaseConfig("skills", "skills", 2, 1e-4)]


@dataclass
class TrainConfig:
    """`seedlab model train`: LoRA settings and the phases."""

    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0  # dropout masks cost ~20 % of a CPU step; facts need every token anyway
    target_modules: str = "all-linear"
    max_length: int = 1024  # longer samples are dropped and counted
    tokens_per_batch: int = 512  # padded tokens per micro-batch (samples of similar length share one): more steps
    grad_accum: int = 1  # micro-batches per optimiser step
    save_every: int = 50  # steps between checkpoints (and at the end of each phase)
    strategy: str = "ddp"  # under torchrun: ddp (whole model per rank) or fsdp (weights sharded across ranks)
    precision: str = "auto"  # auto: bf16 autocast on CUDA and on CPUs with native bf16, else fp32; or fp32, bf16
    seed: int = 0
    replay_ratio: float = 0.2  # share of the skills phase taken by --replay-data samples (a community skills set)
    phases: list[PhaseConfig] = field(default_factory=_default_phases)


@dataclass
class EvalConfig:
    """`seedlab model evaluate` (and the judge every judging step uses)."""

    # The judge every judging step uses: likelihood:MODEL (no training), a reward judge folder (`judge train`), or
    # a generative model; null: the SDG teacher as a generative judge. On the shipped held-out pairs the default
    # likelihood judge scored 97.9 %, the 135M model as a generative judge 46.9 % (README, the judge).
    judge: str | None = "likelihood:smollm2-135m-instruct"
    max_tokens: int = 96  # answer length limit; key facts come early in a good answer


@dataclass
class JudgeConfig:
    """`seedlab judge train`: the self-taught evaluator's rounds."""

    kind: str = "reward"  # reward: a scalar reward model (Bradley-Terry); generative: verdict traces (README)
    # likelihood: the score is the tuned model's own likelihood ratio (training starts from the likelihood judge);
    # scalar: a new one-number head. Measured (README, the judge): likelihood head 95.8 % held-out, 64.6 % quality;
    # a scalar head 89.6 % and 52.1 % (chance). More epochs or a higher lr overfit the few hundred pairs.
    reward_head: str = "likelihood"
    reward_epochs: int = 1
    reward_lr: float = 1e-4  # LoRA (and the scalar head)

    iterations: int = 2  # rounds of verdict sampling and training
    samples: int = 4  # verdicts sampled per pair and round, half in each order
    temperature: float = 0.8  # verdict sampling
    answer_tokens: int = 32  # length limit of the better and worse responses the teacher writes (brief: cost)
    verdict_tokens: int = 64  # length limit of a JSON verdict with its short evaluation
    max_traces: int = 64  # kept verdict traces per round (half A, half B): bounds a round's training time
    epochs: int = 1  # per round, from the starting judge (judges overfit fast)
    lr: float = 1e-3  # LoRA; neither 5e-4 nor 1e-3 lifted the 135M judge's accuracy off chance (README, the judge)
    seed: int = 0


@dataclass
class TaoConfig:
    """`seedlab tao run`: candidates, scoring and preference tuning from unlabeled prompts."""

    samples: int = 8  # candidates per prompt and round (the tuning-compute knob, with rounds)
    rounds: int = 1
    method: str = "dpo"  # dpo | rft (fine-tune on the best responses only)
    heldout_share: float = 0.2  # prompts kept aside for the report
    margin: float = 0.25  # least score difference between the best and the worst candidate of a pair
    max_pairs: int = 96  # pairs tuned on per round, the widest margins first: bounds a round's training time
    max_tokens: int = 64  # candidate length limit
    epochs: int = 1
    lr: float = 5e-4  # LoRA; on the shipped example 54 DPO pairs took the held-out score from 0.24 to 0.62
    beta: float = 0.1  # DPO
    nll: float = 1.0  # DPO: weight of the chosen responses' own loss beside the preference loss
    seed: int = 0


@dataclass
class BuildConfig:
    """`seedlab build`: a release from the whole taxonomy (README, maintainer builds)."""

    # SDG samples aimed for per seed example (None: sdg.scale). 1 keeps a build of the example taxonomy on a 2-core
    # laptop near ten minutes (README, maintainer builds); knowledge leaves add their teacher-free recall questions.
    scale: int | None = 1
    # Share of each earlier release's leaf samples replayed into a new build's phases, and where a build with
    # --previous starts training: "base" (the base model: with share 1 a rebuild of the whole tree, teacher calls
    # only for new or changed leaves) or "previous" (that release's adapter). On the example's second release
    # (bench/build_releases.py, 2026-12-05) base + 1 kept the first leaf within 7.3 points of build 1 and taught the
    # new leaf 32.5 in 17 min; continuing build 1's adapter with half replayed lost 14.6 and taught 10 (its
    # knowledge phase over-trained the seed questions it is chosen on). README, maintainer builds.
    replay_share: float = 1.0
    start: str = "base"
    replay_cap: int = 2000  # replayed samples per kind at most; every leaf's share shrinks evenly to fit
    # Knowledge samples in the skills phase, as a share of the knowledge phase's. On the example's second release the
    # skills phase cost the held-out answers 11.2 points at 0.2 and 7.4 at 0.5, for 1.5 more minutes (README).
    knowledge_in_skills: float = 0.5
    # The base model's own answers to general instructions (the shipped 192 of examples/judge/instructions.jsonl,
    # or a JSONL file of {"prompt"}), added to each phase as this share of its samples. Without them the example
    # build's general accuracy fell from 52.6 to 26.0 points; at 0.3 the second release still fell to 32.8 (README,
    # maintainer builds). 0 turns it off.
    self_replay: float = 0.5
    self_replay_prompts: str = "instructions"
    candidates: int = 3  # evenly spaced checkpoints per phase (the last among them), scored to choose one
    max_tokens: int = 64  # answer length when scoring candidates and on the general questions
    general_questions: str = "questions"  # the regression set: a shipped name or a .jsonl file
    max_accuracy_drop: float = 10.0  # points on the general questions; more marks the build regressed
    max_nll_increase: float = 0.5  # nats per token lost on the base's own general answers; more marks it regressed
    quantize: str = "q8_0"  # model.gguf: q8_0 or f16


@dataclass
class Config:
    """The whole seedlab config."""

    taxonomy: TaxonomyConfig = field(default_factory=TaxonomyConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    llama_cpp: LlamaCppConfig = field(default_factory=LlamaCppConfig)
    endpoint: EndpointConfig = field(default_factory=EndpointConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    sdg: SdgConfig = field(default_factory=SdgConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    tao: TaoConfig = field(default_factory=TaoConfig)
    build: BuildConfig = field(default_factory=BuildConfig)


@dataclass(frozen=True)
class Home:
    """Where seedlab keeps its files: all under SEEDLAB_HOME when set, else the XDG directories."""

    config_file: Path
    data: Path
    cache: Path

    @classmethod
    def under(cls, root: Path) -> Home:
        """Everything under one folder, as SEEDLAB_HOME sets it."""
        base = root.expanduser().absolute()
        return cls(base / CONFIG_NAME, base, base / "cache")

    @classmethod
    def current(cls) -> Home:
        root = os.environ.get("SEEDLAB_HOME")
        if root:
            return cls.under(Path(root))
        user = Path.home()
        config = Path(os.environ.get("XDG_CONFIG_HOME") or user / ".config")
        data = Path(os.environ.get("XDG_DATA_HOME") or user / ".local" / "share")
        cache = Path(os.environ.get("XDG_CACHE_HOME") or user / ".cache")
        return cls(config / "seedlab" / CONFIG_NAME, data / "seedlab", cache / "seedlab")


@dataclass(frozen=True)
class Settings:
    """A loaded config together with the home it resolves its relative paths against."""

    config: Config
    home: Home

    def _under(self, value: str, root: Path) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else root / path

    @property
    def taxonomy_path(self) -> Path:
        return self._under(self.config.taxonomy.path, self.home.data)

    @property
    def datasets_path(self) -> Path:
        return self._under(self.config.paths.datasets, self.home.data)

    @property
    def checkpoints_path(self) -> Path:
        return self._under(self.config.paths.checkpoints, self.home.data)

    @property
    def evaluations_path(self) -> Path:
        return self._under(self.config.paths.evaluations, self.home.data)

    @property
    def judges_path(self) -> Path:
        return self._under(self.config.paths.judges, self.home.data)

    @property
    def tao_path(self) -> Path:
        return self._under(self.config.paths.tao, self.home.data)

    @property
    def builds_path(self) -> Path:
        return self._under(self.config.paths.builds, self.home.data)

    @property
    def docs_path(self) -> Path:
        return self._under(self.config.paths.docs, self.home.data)

    @property
    def models_path(self) -> Path:
        return self._under(self.config.paths.models, self.home.cache)

    @property
    def prompt_log_path(self) -> Path:
        return self._under(self.config.serve.prompt_log, self.home.data)

    def resolved_paths(self) -> dict[str, Path]:
        """Every path the config resolves to, by its property name (what `config show` prints)."""
        names = [n for n, v in vars(Settings).items() if isinstance(v, property) and n.endswith("_path")]
        return {name: getattr(self, name) for name in names}


def load_settings(config_file: Path | None = None, home: Home | None = None) -> Settings:
    """Load the config (defaults when the file does not exist) and the home it belongs to (default: the one
    SEEDLAB_HOME or the XDG variables name)."""
    home = home or Home.current()
    path = config_file or home.config_file
    if not path.exists():
        if config_file is not None:
            raise ConfigError(f"{path}: no such config file (create one with `seedlab config init`)")
        return Settings(Config(), home)
    return Settings(parse_config(path), home)


def parse_config(path: Path) -> Config:
    """Read one config file strictly: unknown keys and wrong types are errors naming key and file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        message = "not valid YAML; fix the syntax or rerun `seedlab config init --force`"
        raise ConfigError(f"{path}{where}: {message}") from exc
    if data is None:
        return Config()
    return _build(Config, data, "", path)


def dataclass_from_json(cls: type[T], data: Any, source: Path) -> T:
    """A dataclass of options rebuilt from its JSON form (run.json), with paths, tuples and nested dataclasses
    typed again; a key or type that does not fit raises ConfigError naming `source`."""
    return typing.cast(T, _build(cls, data, "", source))


def _build(cls: type, data: Any, prefix: str, path: Path) -> Any:
    # Hand-written rather than pydantic: the config is small, and this keeps start-up fast and the
    # error text ours ("unknown key 'taxonomy.bse' ... did you mean 'base'?").
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: '{prefix.rstrip('.') or 'the top level'}' must be a mapping of keys")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"; did you mean '{prefix}{close[0]}'?" if close else f"; known keys: {', '.join(names)}"
            raise ConfigError(f"{path}: unknown key '{prefix}{key}'{hint}")
        values[key] = _coerce(hints[key], value, f"{prefix}{key}", path)
    return cls(**values)


def _coerce(hint: Any, value: Any, key: str, path: Path) -> Any:
    if dataclasses.is_dataclass(hint):
        return _build(typing.cast(type, hint), value, f"{key}.", path)
    if typing.get_origin(hint) in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{path}: key '{key}' must be a list, got {type(value).__name__}")
        item = typing.get_args(hint)[0]  # list[X] or tuple[X, ...]
        items = [_coerce(item, v, f"{key}[{i}]", path) for i, v in enumerate(value)]
        return items if typing.get_origin(hint) is list else tuple(items)
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for kind in allowed:
        if kind is type(None) and value is None:
            return None
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if kind is Path and isinstance(value, str | Path):
            return Path(value)
        if dataclasses.is_dataclass(kind) and isinstance(value, dict):
            return _build(typing.cast(type, kind), value, f"{key}.", path)
        if isinstance(kind, type) and type(value) is kind:
            return value
    wanted = " or ".join(getattr(k, "__name__", str(k)) for k in allowed)
    raise ConfigError(f"{path}: key '{key}' must be {wanted}, got {type(value).__name__} {value!r}")


def dump_config(config: Config) -> str:
    """The config as YAML text, every key present."""
    header = "# seedlab config: relative paths live under the data home (models: the cache home).\n"
    return header + yaml.safe_dump(dataclasses.asdict(config), sort_keys=False)


def write_config(path: Path, config: Config) -> None:
    """Write the config atomically (write then rename)."""
    write_text_atomic(path, dump_config(config))
