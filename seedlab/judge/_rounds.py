"""`seedlab judge train`: the self-taught evaluator's rounds, each step saved so a killed run resumes.

Run folder (under paths.judges):
  run.json                     options, status, per-round scores, the selected round
  synth.json, pairs.jsonl      the synthesized pairs (prompt, chosen, rejected, modified)
  round-0/                     the starting judge: judge.gguf, eval.json on the held-out pairs
  round-N/                     verdicts.json (sampled by round N-1's judge), traces.jsonl, select.json,
                               train/ (a `model train` run from the starting judge), judge.gguf, eval.json
  judge.gguf, report.json, chart.png
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seedlab.backends import is_adapter
from seedlab.charts import chart
from seedlab.config import PhaseConfig, Settings
from seedlab.errors import SeedlabError
from seedlab.fsutil import read_json_object, write_text_atomic
from seedlab.judge._evaluate import JudgeScore, Pair, evaluate_judge, load_pairs
from seedlab.judge._reward import train_reward
from seedlab.judge._synth import SynthPair, Verdicts, sample_verdicts, select_traces, synthesize
from seedlab.judge.judging import judge_kind, judge_ref
from seedlab.judge.rounds import RoundModels
from seedlab.runs import Progress, finish_run, no_progress, open_run, run_status
from seedlab.workspace import shipped

CHUNK = 16  # instructions or pairs between saved states


@dataclass(frozen=True)
class JudgeTrainOptions:
    """What one `judge train` invocation asks for (None: from config or the shipped examples)."""

    instructions: Path | None = None  # JSONL prompts, a serve prompt log, or a taxonomy folder
    iterations: int | None = None
    samples: int | None = None
    judge: str | None = None  # the starting judge: a registry name or .gguf (default eval.judge, else sdg.teacher)
    teacher: str | None = None  # writes x', y and y' (default sdg.teacher)
    heldout: Path | None = None  # labelled pairs that select the best round
    resume: str | None = None  # a judge run id or folder
    kind: str | None = None  # reward | generative (default judge.kind)


@dataclass
class JudgeTrainResult:
    run_dir: Path
    rounds: list[dict[str, Any]]
    best: int
    judge: Path
    kind: str = "generative"


def train_judge(settings: Settings, options: JudgeTrainOptions, echo: Callable[[str], None] = print,
                progress: Progress | None = None, models: RoundModels | None = None) -> JudgeTrainResult:
    """Synthesize pairs, score the starting judge, run the rounds, and keep the best round's judge.

    `models` opens, writes and trains the models (tests pass one with fakes)."""
    from seedlab.prompts import load_prompts

    asked = options.samples or settings.config.judge.samples
    if asked % 2:
        raise SeedlabError(f"--samples {asked}: give an even number, half of the verdicts in each order")
    if not options.resume:  # bad input fails before a run folder exists
        _check_kind(options.kind or settings.config.judge.kind, options)
        load_pairs(options.heldout or shipped("judge", "heldout_pairs.jsonl"))
        load_prompts(options.instructions or shipped("judge", "instructions.jsonl"))
    run_dir, info, saved = open_run(settings.judges_path, options.resume, options, "judge")
    start = judge_ref(settings, saved.judge)
    if not saved.judge and judge_kind(start) != "generative":
        start = settings.config.sdg.teacher  # eval.judge names a scalar judge: train from the teacher model
    if judge_kind(start) != "generative" or is_adapter(start):
        raise SeedlabError(f"--judge {start}: training starts from a model (registry name or .gguf), not an "
                           f"adapter; give the model the adapter was trained on")
    run = _JudgeRun(settings, run_dir, start, models or RoundModels(settings), echo, progress or no_progress)
    kind = saved.kind or settings.config.judge.kind
    heldout = load_pairs(saved.heldout or shipped("judge", "heldout_pairs.jsonl"))
    instructions = load_prompts(saved.instructions or shipped("judge", "instructions.jsonl"))
    iterations = saved.iterations or settings.config.judge.iterations
    samples = saved.samples or settings.config.judge.samples
    plan = f"a reward model from {start}" if kind == "reward" else \
        f"{iterations} rounds, {samples} verdicts per pair"
    echo(f"judge run {run_dir.name}: {len(instructions)} instructions, {plan}, {len(heldout)} held-out pairs")
    try:
        pairs = run.synthesize(instructions, saved.teacher or settings.config.sdg.teacher)
        if len(pairs) < 4:
            raise SeedlabError(f"only {len(pairs)} usable pairs from {len(instructions)} instructions; give more "
                               f"instructions or a stronger --teacher")
        if kind == "reward":
            sets = {"heldout": heldout, "quality": load_pairs(shipped("judge", "quality_pairs.jsonl"))}
            row = train_reward(settings, run_dir, start, pairs, sets, run.models, echo, run.bar)
            return _finish(run_dir, info, [row], len(heldout), run_dir / "judge", kind)
        rounds = [run.evaluate(run_dir / "round-0", heldout, "the starting judge", None)]
        echo(_round_line(rounds[0]))
        for number in range(1, iterations + 1):
            rounds.append(run.round(number, pairs, heldout, samples))
            echo(_round_line(rounds[-1]))
    finally:
        run.models.close()
    return _finish(run_dir, info, rounds, len(heldout), run_dir / "judge.gguf", kind)


def _check_kind(kind: str, options: JudgeTrainOptions) -> None:
    if kind not in ("reward", "generative"):
        raise SeedlabError(f"--kind {kind}: choose reward or generative")
    if kind == "reward" and (options.iterations or options.samples):
        raise SeedlabError("--iterations and --samples set the verdict rounds of --kind generative; a reward judge "
                           "trains once (judge.reward_epochs)")


def _finish(run_dir: Path, info: dict[str, Any], rounds: list[dict[str, Any]], heldout: int, judge_file: Path,
            kind: str) -> JudgeTrainResult:
    """Keep the best round's judge (a generative run copies its GGUF to judge.gguf); write the report and chart;
    mark the run finished."""
    best = max(rounds, key=lambda r: (r["accuracy"], r["consistent"], -r["round"]))["round"]
    if kind == "generative":
        shutil.copyfile(run_dir / f"round-{best}" / "judge.gguf", judge_file.with_name("judge.gguf.partial"))
        judge_file.with_name("judge.gguf.partial").replace(judge_file)
    report = {"kind": kind, "rounds": rounds, "best": best, "judge": str(judge_file), "heldout_pairs": heldout}
    write_text_atomic(run_dir / "report.json", json.dumps(report, indent=2))
    _chart(rounds, run_dir / "chart.png")
    finish_run(run_dir, info, kind=kind, rounds=rounds, best=best, judge=str(judge_file))
    return JudgeTrainResult(run_dir, rounds, best, judge_file, kind)


@dataclass
class _JudgeRun:
    """One `judge train` run's state, which every step reads."""

    settings: Settings
    run_dir: Path
    start: str  # the starting judge: every round trains from it
    models: RoundModels
    echo: Callable[[str], None]
    bar: Progress

    def synthesize(self, instructions: list[str], teacher_ref: str) -> list[SynthPair]:
        """Pairs for every instruction, saved after each chunk so a resumed run goes on where it stopped."""
        state_file = self.run_dir / "synth.json"
        state = read_json_object(state_file) or {"done": 0, "dropped": {"modified": 0, "answers": 0}, "pairs": []}
        pairs = [SynthPair(**p) for p in state["pairs"]]
        if state["done"] < len(instructions):
            teacher = self.models.model(teacher_ref)
            config = self.settings.config.judge
            for start in range(state["done"], len(instructions), CHUNK):
                self.bar("synthesize pairs", start, len(instructions))
                made, dropped = synthesize(teacher, instructions[start:start + CHUNK], config.answer_tokens,
                                           config.seed + start, chunk=CHUNK)
                pairs += made
                state = {"done": min(len(instructions), start + CHUNK), "pairs": [p.to_json() for p in pairs],
                         "dropped": {k: state["dropped"][k] + v for k, v in dropped.items()}}
                write_text_atomic(state_file, json.dumps(state))
            self.bar("synthesize pairs", len(instructions), len(instructions))
            write_text_atomic(self.run_dir / "pairs.jsonl", "".join(json.dumps(p.to_json()) + "\n" for p in pairs))
        self.echo(f"pairs: {len(pairs)} from {len(instructions)} instructions (dropped: {state['dropped']['modified']}"
                  f" unusable modified instructions, {state['dropped']['answers']} empty or equal responses)")
        return pairs

    def round(self, number: int, pairs: list[SynthPair], heldout: list[Pair], samples: int) -> dict[str, Any]:
        """Sample verdicts with the latest judge, keep the correct balanced traces, train from the starting judge."""
        folder = self.run_dir / f"round-{number}"
        done = read_json_object(folder / "eval.json")
        if done:
            return done
        config = self.settings.config.judge
        verdicts = self.sample(folder, str(self.run_dir / f"round-{number - 1}" / "judge.gguf"), pairs, samples)
        traces, stats = select_traces(verdicts, config.seed + number, config.max_traces)
        if len(traces) < 2:
            raise SeedlabError(f"round {number}: the judge picked the better answer of no pair in both positions "
                               f"often enough to train on ({stats}); raise --samples or start from a stronger --judge")
        write_text_atomic(folder / "traces.jsonl", "".join(json.dumps(t.sample()) + "\n" for t in traces))
        write_text_atomic(folder / "select.json", json.dumps(stats, indent=2))
        self.echo(f"round {number}: {stats['correct']} of {stats['pairs']} pairs with a correct verdict, "
                  f"{stats['kept']} traces kept after balancing A and B")
        adapter = self.train(folder, number)
        score = self.evaluate(folder, heldout, f"round {number}", adapter)
        score.update(traces=stats["kept"], correct_pairs=stats["correct"], adapter=str(adapter))
        write_text_atomic(folder / "eval.json", json.dumps(score, indent=2))
        return score

    def sample(self, folder: Path, sampler: str, pairs: list[SynthPair], samples: int) -> list[Verdicts]:
        """`samples` verdicts per pair from the `sampler` judge, saved after each chunk."""
        config = self.settings.config.judge
        state_file = folder / "verdicts.json"
        rows: list[dict[str, Any]] = (read_json_object(state_file) or {"rows": []})["rows"]
        if len(rows) < len(pairs):
            judge = self.models.model(sampler)
            for start in range(len(rows), len(pairs), CHUNK):
                self.bar(f"{folder.name}: sample verdicts", start, len(pairs))
                made = sample_verdicts(judge, pairs[start:start + CHUNK], samples, config.temperature,
                                       config.verdict_tokens, config.seed + start)
                rows += [{"pair": v.pair.to_json(), "first": v.first, "second": v.second} for v in made]
                write_text_atomic(state_file, json.dumps({"rows": rows}))
            self.bar(f"{folder.name}: sample verdicts", len(pairs), len(pairs))
            self.models.release(sampler)  # this round's sampler is not needed again
        return [Verdicts(SynthPair(**r["pair"]), r["first"], r["second"]) for r in rows]

    def train(self, folder: Path, number: int) -> Path:
        """A LoRA adapter trained on this round's traces from the starting judge, by `model train`'s trainer
        (one phase of its own, its run folder inside the round's)."""
        from seedlab.train import TrainOptions

        config = self.settings.config.judge
        root = folder / "train"
        runs = sorted(root.glob("*"))
        finished = [d for d in runs if run_status(d) == "finished"]
        if finished:
            return finished[-1] / "adapter"
        unfinished = [d for d in runs if run_status(d) == "running"]
        options = TrainOptions(skills_data=folder / "traces.jsonl", model=self.start, runs=root,
                               phase_configs=(PhaseConfig("judge", "skills", config.epochs, config.lr, 0.1),),
                               resume=str(unfinished[-1]) if unfinished else None)
        result = self.models.train(self.settings, options, lambda line: self.echo(f"  {line}"),
                                   lambda row: self.bar(f"round {number}: train", row["step"], row["steps"]))
        return Path(result.adapter)

    def evaluate(self, folder: Path, heldout: list[Pair], name: str, adapter: Path | None) -> dict[str, Any]:
        """Write the round's judge as GGUF (if not yet there) and score it on the held-out pairs."""
        done = read_json_object(folder / "eval.json")
        if done and folder.name == "round-0":
            return done
        judge = self.models.written(self.start, folder / "judge.gguf", adapter)
        self.bar(f"{folder.name}: held-out pairs", 0, len(heldout))
        score = evaluate_judge(judge, heldout, self.settings.config.judge.verdict_tokens)
        self.bar(f"{folder.name}: held-out pairs", len(heldout), len(heldout))
        row = {"round": int(folder.name.split("-")[1]), "name": name, **_score_json(score)}
        if folder.name == "round-0":
            write_text_atomic(folder / "eval.json", json.dumps(row, indent=2))
        return row


def _score_json(score: JudgeScore) -> dict[str, Any]:
    return {"pairs": score.pairs, "accuracy": round(score.accuracy, 4), "consistent": round(score.consistent, 4),
            "unparseable": round(score.unparseable, 4)}


def _round_line(row: dict[str, Any]) -> str:
    return (f"{row['name']}: accuracy {100 * row['accuracy']:.1f}% position-consistent "
            f"{100 * row['consistent']:.1f}% unparseable {100 * row['unparseable']:.1f}% "
            f"({row['pairs']} held-out pairs)")


def render_rounds(rounds: list[dict[str, Any]], best: int) -> str:
    """The per-round table `judge train` prints."""
    lines = ["round  accuracy  position-consistent  unparseable  traces",
             "-----  --------  -------------------  -----------  ------"]
    for r in rounds:
        mark = "  <- selected" if r["round"] == best else ""
        lines.append(f"{r['round']:>5}  {100 * r['accuracy']:7.1f}%  {100 * r['consistent']:18.1f}%  "
                     f"{100 * r['unparseable']:10.1f}%  {r.get('traces', '-'):>6}{mark}")
    return "\n".join(lines)


def _chart(rounds: list[dict[str, Any]], target: Path) -> None:
    """Held-out accuracy and position consistency per round."""
    with chart(target) as axes:
        xs = [r["round"] for r in rounds]
        axes.plot(xs, [100 * r["accuracy"] for r in rounds], marker="o", label="accuracy")
        axes.plot(xs, [100 * r["consistent"] for r in rounds], marker="s", label="position-consistent")
        axes.axhline(50, color="grey", linestyle=":", linewidth=1)
        axes.set_xticks(xs)
        axes.set_xlabel("round (0: starting judge)")
        axes.set_ylabel("% on held-out pairs")
        axes.set_ylim(0, 100)
        axes.legend()


def trained_judges(settings: Settings) -> list[dict[str, Any]]:
    """Finished `judge train` runs in this home, newest first: kind, judge path, held-out (and quality) accuracy."""
    rows = []
    for report_file in sorted(settings.judges_path.glob("*/report.json"), reverse=True):
        report = read_json_object(report_file)
        best = next((r for r in report.get("rounds", []) if r.get("round") == report.get("best")), None)
        if best is None or "judge" not in report:
            continue
        rows.append({"kind": report.get("kind", "generative"), "judge": report["judge"], "accuracy": best["accuracy"],
                     "quality": (best.get("quality") or {}).get("accuracy")})
    return rows
