"""`seedlab build`: a release from the whole taxonomy. Stages, each saved in state.json so a killed build resumes:
generate (every leaf; unchanged ones reuse earlier samples) -> data (new samples and the replay buffer mixed
into the phases) -> each phase trained, its checkpoints scored and one chosen -> regression check -> release."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from seedlab.build._choose import RULE, candidate_checkpoints, choose, score_model
from seedlab.build._regress import GeneralQuestion, Limits, load_general, regression_summary
from seedlab.build._replay import Sample, carried, mix_phases, origin_key, self_replay, with_origin
from seedlab.build.models import BuildModels
from seedlab.config import PhaseConfig, Settings
from seedlab.errors import SeedlabError
from seedlab.fsutil import read_json_object, write_text_atomic
from seedlab.runs import Progress, finish_run, open_run, run_status


@dataclass(frozen=True)
class BuildOptions:
    """What one `seedlab build` asks for (None: from config)."""

    previous: str | None = None  # the release this one continues from (a build id or folder)
    resume: str | None = None  # a build id or folder to finish
    scale: int | None = None  # SDG samples aimed for per seed example (None: build.scale, else sdg.scale)
    teacher: str | None = None
    endpoint_urls: tuple[str, ...] = ()


@dataclass
class BuildResult:
    build_dir: Path
    release: Path
    report: dict[str, Any]


StepBars = Callable[[dict[str, Any]], None]


def build(settings: Settings, options: BuildOptions, echo: Callable[[str], None] = print,
          leaf_progress: Progress | None = None, step_progress: StepBars | None = None,
          models: BuildModels | None = None) -> BuildResult | None:
    """Build a release of the whole taxonomy into builds/<id>/release, resuming `options.resume` if given.

    `models` supplies the teacher, trainer, judge and answering models (default: the configured ones). Under
    torchrun rank 0 runs the build and every rank joins its trainings; the other ranks return None."""
    from seedlab.train import start, stop

    models = models or BuildModels(settings)
    ranks = start(RANK_WAIT_S)
    try:
        if not ranks.main:
            _follow(settings, models, ranks)
            return None
        return _lead(settings, options, echo, leaf_progress, step_progress, models, ranks)
    finally:
        stop(ranks)


SELF_REPLAY_TOKENS = 64  # answer length of the base's self-replay answers: short, like the Q&A it trains beside
RANK_WAIT_S = 24 * 3600  # under torchrun the other ranks wait while rank 0 generates data and scores checkpoints


def _follow(settings: Settings, models: BuildModels, ranks: Any) -> None:
    """A rank other than 0: train whatever rank 0 trains, until it says the build is done."""
    from seedlab.train import share, train

    while (options := share(None, ranks)) is not None:
        train(settings, options, lambda _line: None, loader=models.loader())


def _lead(settings: Settings, options: BuildOptions, echo: Callable[[str], None], leaf_progress: Progress | None,
          step_progress: StepBars | None, models: BuildModels, ranks: Any) -> BuildResult:
    from seedlab.build._release import write_release
    from seedlab.train import share

    try:  # whatever happens, the other ranks hear that the build is over
        job = _Build(settings, options, echo)
        job.ranks = ranks
        echo(f"build {job.dir.name}: taxonomy @ {job.commit[:12]}, base {job.base}"
             + (f", continues {job.previous.name}" if job.previous else ""))
        job.stage("generate", lambda: job.generate(models, leaf_progress))
        job.stage("data", lambda: job.mix(models))
        job.stage("base", lambda: job.score_base(models))
        for phase in settings.config.train.phases:
            job.stage(f"phase-{phase.name}", partial(job.train_phase, phase, models, step_progress))
        job.stage("regression", lambda: job.regression(models))
        release = job.stage("release", lambda: write_release(job.dir, job.state, settings, job.info, models))
    finally:
        share(None, ranks)  # the other ranks stop waiting for trainings
        models.close()
    finish_run(job.dir, job.info, regressed=job.state["regression"]["regressed"])
    return BuildResult(job.dir, Path(release["folder"]), job.state)


class _Build:
    """One build: its folder, state, the taxonomy it builds and the release it continues."""

    def __init__(self, settings: Settings, options: BuildOptions, echo: Callable[[str], None]) -> None:
        self.settings, self.config, self.echo = settings, settings.config.build, echo
        if self.config.start not in ("base", "previous"):
            raise SeedlabError(f"build.start is {self.config.start!r}; set it to base or previous")
        self.dir, self.info, self.options = open_run(settings.builds_path, options.resume, options, "build")
        self.state: dict[str, Any] = read_json_object(self.dir / "state.json")
        self.tree, self.commit = _taxonomy_tree(settings)
        self.ranks: Any = None  # the torchrun ranks (one process: rank 0 alone)
        self.base = settings.config.model.default
        self.previous = self._previous()
        if "taxonomy" not in self.info:
            self.info.update(taxonomy={"commit": self.commit, "leaves": self.tree}, base=self.base,
                             previous=self.previous.name if self.previous else None)
            write_text_atomic(self.dir / "run.json", json.dumps(self.info, indent=2))
        elif self.info["taxonomy"]["commit"] != self.commit or self.info["taxonomy"]["leaves"] != self.tree:
            raise SeedlabError(f"the taxonomy changed since build {self.dir.name} started "
                               f"(@ {self.info['taxonomy']['commit'][:12]}); start a new build")

    def _previous(self) -> Path | None:
        if not self.options.previous:
            return None
        given = Path(self.options.previous)
        folder = given if given.is_dir() else self.settings.builds_path / self.options.previous
        if run_status(folder) != "finished":
            raise SeedlabError(f"--previous {self.options.previous}: no finished build there; `seedlab build list`")
        if read_json_object(folder / "run.json").get("base") != self.base:
            raise SeedlabError(f"--previous {folder.name} was built on another base model; set model.default to it")
        return folder

    def stage(self, name: str, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """A stage's result: saved by an earlier run of this build, or run now and saved."""
        if name not in self.state:
            start = time.perf_counter()
            self.state[name] = run()
            self.state[name]["seconds"] = round(time.perf_counter() - start, 1)
            write_text_atomic(self.dir / "state.json", json.dumps(self.state, indent=2))
        return dict(self.state[name])

    # --- stages ---------------------------------------------------------------------------------------------------

    def generate(self, models: BuildModels, progress: Progress | None) -> dict[str, Any]:
        from seedlab.sdg import GenerateOptions, generate

        scale = self.options.scale or self.config.scale
        self.echo(f"generate: {len(self.tree)} leaves (unchanged ones reuse their finished samples)")
        result = generate(self.settings, GenerateOptions(taxonomy_base="empty", scale=scale,
                                                         teacher=self.options.teacher,
                                                         endpoint_urls=self.options.endpoint_urls),
                          teacher=models.teacher(), progress=progress)
        leaves = {leaf: {"kind": s["kind"], "samples": s["samples"] + s["seed_and_document_samples"],
                         "teacher_requests": s.get("teacher_requests", 0), "reused": s["reused"]}
                  for leaf, s in result.stats["leaves"].items()}
        for leaf, info in leaves.items():
            self.echo(f"  {info['teacher_requests']:5d} teacher requests  {info['samples']:4d} samples  {leaf}")
        return {"run": str(result.run_dir), "leaves": leaves, "teacher_requests": result.stats.get("teacher_requests",
                sum(i["teacher_requests"] for i in leaves.values()))}

    def mix(self, models: BuildModels) -> dict[str, Any]:
        """The phases' data: this build's new leaves' samples, a replayed share of the earlier releases', and the
        base model's own answers to general instructions."""
        run = Path(self.state["generate"]["run"])
        made = [s for name in ("knowledge.jsonl", "skills.jsonl") for s in _read(run / name)
                if not s["metadata"].get("replay")]
        built_before = read_json_object(self.previous / "run.json")["taxonomy"]["leaves"] if self.previous else {}
        earlier = carried(_read(self.previous / "data" / "buffer.jsonl"), self.tree) if self.previous else []
        new = [with_origin(s, self.dir.name) for s in made
               if built_before.get(s["metadata"]["leaf"]) != s["metadata"]["seed_blob"]]
        if not new:
            raise SeedlabError(f"no leaf is new or changed since build {self.previous.name if self.previous else ''};"
                               " nothing to train")
        c = self.config
        seed = self.settings.config.train.seed
        mix = mix_phases(new, earlier, c.replay_share, c.replay_cap, c.knowledge_in_skills, seed)
        anchors = self.self_replay(models) if c.self_replay > 0 else []
        phases = {name: self_replay(samples, anchors, c.self_replay, seed, name)
                  for name, samples in (("knowledge", mix.knowledge), ("skills", mix.skills))}
        mix.counts.update({f"self_replay_{n}": len(phases[n]) - len(s) for n, s in (("knowledge", mix.knowledge),
                                                                                     ("skills", mix.skills))})
        data = self.dir / "data"
        for name, samples in (*phases.items(), ("buffer", earlier + new)):
            lines = "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in samples)
            write_text_atomic(data / f"{name}.jsonl", lines)
        status = {leaf: ("unchanged" if built_before.get(leaf) == blob else
                         "changed" if leaf in built_before else "new") for leaf, blob in self.tree.items()}
        replayed = [origin_key(s)[0] for s in mix.knowledge + mix.skills
                    if s["metadata"]["origin"]["release"] != self.dir.name]
        leaves = {leaf: {"status": status[leaf], "replayed": replayed.count(leaf),
                         "in_buffer": sum(1 for s in earlier + new if origin_key(s)[0] == leaf)} for leaf in self.tree}
        self.echo("data: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in mix.counts.items()))
        return {"counts": mix.counts, "leaves": leaves, "buffer": len(earlier) + len(new)}

    def self_replay(self, models: BuildModels) -> list[Sample]:
        """The base model's greedy answers to the self-replay instructions, made once per base and prompt file."""
        from seedlab.fsutil import read_jsonl_rows
        from seedlab.workspace import shipped

        name = self.config.self_replay_prompts
        path = Path(name).expanduser() if name.endswith(".jsonl") else shipped("judge", f"{name}.jsonl")
        if not path.is_file():
            raise SeedlabError(f"build.self_replay_prompts={name!r}: no such file; give a .jsonl of {{\"prompt\"}}")
        prompts = [row["prompt"] for _, row in read_jsonl_rows(path, ("prompt",), "self-replay prompts")]
        key = hashlib.sha256(json.dumps([self.base, prompts, SELF_REPLAY_TOKENS]).encode()).hexdigest()[:16]
        cached = self.settings.builds_path / ".self-replay" / f"{key}.jsonl"
        if not cached.is_file():
            self.echo(f"self-replay: {self.base} answers {len(prompts)} general instructions (once per base model)")
            questions = [GeneralQuestion("general", p, "", ("",)) for p in prompts]
            with models.answering(self.base, None) as backend:
                answers = _answer_general(backend, questions, SELF_REPLAY_TOKENS)
            rows = [{"messages": [{"role": "user", "content": p}, {"role": "assistant", "content": a}],
                     "metadata": {"source": "self-replay", "leaf_kind": "general", "model": self.base}}
                    for p, a in zip(prompts, answers, strict=True) if a.strip()]
            write_text_atomic(cached, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        return _read(cached)

    def score_base(self, models: BuildModels) -> dict[str, Any]:
        """The base model on the leaves' questions and on the general questions (the regression's baseline)."""
        questions = self.questions()
        self.echo(f"base: {self.base} answers {len(questions)} leaf and {len(self.general())} general questions")
        with models.answering(self.base, None) as backend:
            scores, _ = score_model(backend, models.judge(), questions, self.config.max_tokens)
            general = _answer_general(backend, self.general(), self.config.max_tokens)
        return {"scores": scores, "general_answers": general}

    def train_phase(self, phase: PhaseConfig, models: BuildModels, progress: StepBars | None) -> dict[str, Any]:
        from seedlab.train import TrainOptions, share, train

        data = self.dir / "data" / f"{phase.data}.jsonl"
        start = self.start_adapter()
        if not data.is_file() or not data.read_text(encoding="utf-8").strip():
            self.echo(f"phase {phase.name}: no new {phase.data} data, skipped")
            return {"skipped": True, "chosen": str(start) if start else None}
        runs = self.dir / f"train-{phase.name}"
        unfinished = [p.parent for p in sorted(runs.glob("*/run.json")) if run_status(p.parent) != "finished"]
        if phase.data not in ("knowledge", "skills"):
            raise SeedlabError(f"train.phases: phase {phase.name} reads {phase.data!r}; a build trains knowledge and "
                               "skills")
        options = TrainOptions(knowledge_data=data if phase.data == "knowledge" else None,
                               skills_data=data if phase.data == "skills" else None, phase_configs=(phase,),
                               runs=runs, model=self.base, start_adapter=start, checkpoints=self.config.candidates,
                               resume=str(unfinished[-1]) if unfinished else None)
        share(options, self.ranks)  # under torchrun every rank trains this phase
        trained = train(self.settings, options, lambda line: self.echo(f"  {line}"), loader=models.loader(),
                        progress=progress)
        questions = self.questions() if phase.data == "skills" else [q for q in self.questions() if q.facts]
        rows: list[dict[str, Any]] = []
        for checkpoint in candidate_checkpoints(trained.run_dir / f"phase-{phase.name}", self.config.candidates):
            with models.answering(self.base, checkpoint) as backend:
                scores, _ = score_model(backend, models.judge() if phase.data == "skills" else None, questions,
                                        self.config.max_tokens)
            rows.append({"checkpoint": str(checkpoint.relative_to(self.dir)), "step": int(checkpoint.name[5:]),
                         "scores": scores})
            self.echo(f"  candidate {checkpoint.name}: " + _score_line(scores))
        best = choose(rows, phase.data)
        self.echo(f"phase {phase.name}: chose {Path(rows[best]['checkpoint']).name} of {len(rows)} candidates")
        return {"run": str(trained.run_dir), "start": str(start) if start else None,
                "result": trained.phases[phase.name], "candidates": rows,
                "chosen": str(self.dir / rows[best]["checkpoint"]), "chosen_index": best, "rule": RULE}

    def regression(self, models: BuildModels) -> dict[str, Any]:
        adapter = Path(self.final_adapter())
        general = self.general()
        with models.answering(self.base, adapter) as backend:
            built = _answer_general(backend, general, self.config.max_tokens)
        base = self.state["base"]["general_answers"]
        base_logp, built_logp = models.answer_logps(self.base, adapter, [(q.question, a) for q, a in
                                                                         zip(general, base, strict=True)])
        pairs = [(q.question, b, a) for q, a, b in zip(general, base, built, strict=True)]
        verdicts = [outcome for outcome, _ in models.judge().compare(pairs)]
        limits = Limits(self.config.max_accuracy_drop, self.config.max_nll_increase)
        summary = regression_summary(general, base, built, base_logp, built_logp, verdicts, limits)
        summary["built_answers"] = built
        self.echo(f"regression: general accuracy {summary['accuracy']['base']:.1f} -> "
                  f"{summary['accuracy']['built']:.1f}, base answers' likelihood {summary['nll_increase']:+.3f} "
                  f"nats/token, {summary['changed_answers']}/{summary['questions']} answers changed"
                  + (f"; REGRESSED: {'; '.join(summary['reasons'])}" if summary["regressed"] else ""))
        return summary

    # --- helpers --------------------------------------------------------------------------------------------------

    def start_adapter(self) -> Path | None:
        """Where the next phase starts: the last chosen checkpoint of this build, else the previous release."""
        for phase in reversed(self.settings.config.train.phases):
            chosen = self.state.get(f"phase-{phase.name}", {}).get("chosen")
            if chosen:
                return Path(chosen)
        if self.previous is None or self.config.start == "base":
            return None
        return self.previous / "release" / "adapter"

    def final_adapter(self) -> Path:
        final = self.start_adapter()
        if final is None:
            raise SeedlabError("no phase trained anything; check train.phases")
        return final

    def questions(self) -> list[Any]:
        from seedlab.eval import leaf_questions

        knowledge, skills = leaf_questions(self.settings, sorted(self.tree))
        return knowledge + skills

    def general(self) -> list[GeneralQuestion]:
        from seedlab.workspace import shipped

        name = self.config.general_questions
        path = Path(name).expanduser() if name.endswith(".jsonl") else shipped("general", f"{name}.jsonl")
        if not path.is_file():
            raise SeedlabError(f"build.general_questions={name!r}: no such file; give a .jsonl path or 'questions'")
        return load_general(path)


def _taxonomy_tree(settings: Settings) -> tuple[dict[str, str], str]:
    """Every valid leaf of the taxonomy (path -> seed file blob) and the commit it is at."""
    from seedlab.taxonomy import changed_leaves, load_leaf

    diff = changed_leaves(settings.taxonomy_path, "empty")
    if not diff.files:
        raise SeedlabError(f"{settings.taxonomy_path} has no leaves to build")
    tree, commit = {}, ""
    for rel in diff.files:
        leaf = load_leaf(settings.taxonomy_path, rel, settings.home.cache / "docs")
        tree[rel], commit = leaf.blob_id, leaf.taxonomy_commit or commit
    return tree, commit


def _answer_general(backend: Any, questions: list[GeneralQuestion], max_tokens: int) -> list[str]:
    from seedlab.eval import Question, answer_questions

    asked = [Question(q.kind, q.question, q.answer, list(q.facts)) for q in questions]
    return answer_questions(backend, asked, max_tokens)


def _score_line(scores: dict[str, Any]) -> str:
    names = {"seed": "seed key facts", "heldout": "held-out key facts", "skill": "skill rating"}
    return ", ".join(f"{names[k]} {100 * scores[k]:.1f}" for k in names if k in scores)


def _read(path: Path) -> list[Sample]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
