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

import dataclasses
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from seedlab.backends import Backend, cached_backend, judge_ref
from seedlab.charts import chart
from seedlab.config import PhaseConfig, Settings
from seedlab.errors import SeedlabError
from seedlab.fsutil import open_run, read_json_object, write_text_atomic
from seedlab.judge._evaluate import JudgeScore, evaluate_judge, load_pairs
from seedlab.judge._synth import SynthPair, Verdicts, sample_verdicts, select_traces, synthesize
from seedlab.train import write_compared

Progress = Callable[[str, int, int], None]  # (stage, done, total)
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


@dataclass
class JudgeTrainResult:
    run_dir: Path
    rounds: list[dict[str, Any]]
    best: int
    judge: Path


def shipped(name: str) -> Path:
    """A file of the shipped judge examples (instructions.jsonl, heldout_pairs.jsonl)."""
    return Path(str(resources.files("seedlab") / "examples" / "judge" / name))


def train_judge(settings: Settings, options: JudgeTrainOptions, echo: Callable[[str], None] = print,
                progress: Progress | None = None) -> JudgeTrainResult:
    from seedlab.prompts import load_prompts

    asked = options.samples or settings.config.judge.samples
    if asked % 2:
        raise SeedlabError(f"--samples {asked}: give an even number, half of the verdicts in each order")
    if not options.resume:  # bad input fails before a run folder exists
        load_pairs(options.heldout or shipped("heldout_pairs.jsonl"))
        load_prompts(options.instructions or shipped("instructions.jsonl"))
    run_dir, info = open_run(settings.judges_path, options.resume, options, "judge")
    saved = options if not options.resume else _options_from(info["options"])
    config = settings.config.judge
    iterations = saved.iterations or config.iterations
    samples = saved.samples or config.samples
    start = judge_ref(settings, saved.judge)
    if (Path(start) / "adapter_config.json").is_file():
        raise SeedlabError(f"--judge {start}: training starts from a model (registry name or .gguf), not an "
                           f"adapter; give the model the adapter was trained on")
    heldout = load_pairs(saved.heldout or shipped("heldout_pairs.jsonl"))
    instructions = load_prompts(saved.instructions or shipped("instructions.jsonl"))
    bar = progress or (lambda _stage, _done, _total: None)
    echo(f"judge run {run_dir.name}: {len(instructions)} instructions, {iterations} rounds, {samples} verdicts "
         f"per pair, {len(heldout)} held-out pairs")

    backends: dict[str, Backend] = {}
    try:
        teacher_ref = saved.teacher or settings.config.sdg.teacher
        pairs = _synthesize(settings, run_dir, instructions, teacher_ref, backends, echo, bar)
        if len(pairs) < 4:
            raise SeedlabError(f"only {len(pairs)} usable pairs from {len(instructions)} instructions; give more "
                               f"instructions or a stronger --teacher")
        rounds = [_evaluate_round(settings, run_dir / "round-0", heldout, backends, "the starting judge", bar,
                                  lambda target: write_compared(settings, start, target))]
        echo(_round_line(rounds[0]))
        for number in range(1, iterations + 1):
            rounds.append(_round(settings, run_dir, number, start, pairs, heldout, samples, backends, echo, bar))
            echo(_round_line(rounds[-1]))
    finally:
        for backend in backends.values():
            backend.close()

    best = max(rounds, key=lambda r: (r["accuracy"], r["consistent"], -r["round"]))["round"]
    judge_file = run_dir / "judge.gguf"
    shutil.copyfile(run_dir / f"round-{best}" / "judge.gguf", judge_file.with_name("judge.gguf.partial"))
    judge_file.with_name("judge.gguf.partial").replace(judge_file)
    report = {"rounds": rounds, "best": best, "judge": str(judge_file), "heldout_pairs": len(heldout)}
    write_text_atomic(run_dir / "report.json", json.dumps(report, indent=2))
    _chart(rounds, run_dir / "chart.png")
    info.update(status="finished", finished=datetime.now(UTC).isoformat(timespec="seconds"), rounds=rounds,
                best=best, judge=str(judge_file))
    write_text_atomic(run_dir / "run.json", json.dumps(info, indent=2))
    return JudgeTrainResult(run_dir, rounds, best, judge_file)


def _options_from(saved: dict[str, Any]) -> JudgeTrainOptions:
    """The options a run was started with, from its run.json."""
    values: dict[str, Any] = dict(saved, resume=None)
    for key in ("instructions", "heldout"):
        values[key] = Path(values[key]) if values.get(key) else None
    return JudgeTrainOptions(**values)


def _synthesize(settings: Settings, run_dir: Path, instructions: list[str], teacher_ref: str,
                backends: dict[str, Backend], echo: Callable[[str], None], bar: Progress) -> list[SynthPair]:
    """Pairs for every instruction, saved after each chunk so a resumed run goes on where it stopped."""
    state_file = run_dir / "synth.json"
    state = read_json_object(state_file) or {"done": 0, "dropped": {"modified": 0, "answers": 0}, "pairs": []}
    pairs = [SynthPair(**p) for p in state["pairs"]]
    if state["done"] < len(instructions):
        teacher = cached_backend(settings, teacher_ref, backends)
        config = settings.config.judge
        for start in range(state["done"], len(instructions), CHUNK):
            bar("synthesize pairs", start, len(instructions))
            made, dropped = synthesize(teacher, instructions[start:start + CHUNK], config.answer_tokens,
                                       config.seed + start, chunk=CHUNK)
            pairs += made
            state = {"done": min(len(instructions), start + CHUNK), "pairs": [p.to_json() for p in pairs],
                     "dropped": {k: state["dropped"][k] + v for k, v in dropped.items()}}
            write_text_atomic(state_file, json.dumps(state))
        bar("synthesize pairs", len(instructions), len(instructions))
        write_text_atomic(run_dir / "pairs.jsonl", "".join(json.dumps(p.to_json()) + "\n" for p in pairs))
    echo(f"pairs: {len(pairs)} from {len(instructions)} instructions (dropped: {state['dropped']['modified']} "
         f"unusable modified instructions, {state['dropped']['answers']} empty or equal responses)")
    return pairs


def _round(settings: Settings, run_dir: Path, number: int, start: str, pairs: list[SynthPair],
           heldout: list[Any], samples: int, backends: dict[str, Backend], echo: Callable[[str], None],
           bar: Progress) -> dict[str, Any]:
    """Sample verdicts with the latest judge, keep the correct balanced traces, train from the starting judge."""
    folder = run_dir / f"round-{number}"
    done = read_json_object(folder / "eval.json")
    if done:
        return done
    config = settings.config.judge
    previous = str(run_dir / f"round-{number - 1}" / "judge.gguf")
    verdicts = _sample(settings, folder, previous, pairs, samples, backends, bar)
    traces, stats = select_traces(verdicts, config.seed + number, config.max_traces)
    if len(traces) < 2:
        raise SeedlabError(f"round {number}: the judge picked the better answer of no pair in both positions "
                           f"often enough to train on ({stats}); raise --samples or start from a stronger --judge")
    write_text_atomic(folder / "traces.jsonl", "".join(json.dumps(t.sample()) + "\n" for t in traces))
    write_text_atomic(folder / "select.json", json.dumps(stats, indent=2))
    echo(f"round {number}: {stats['correct']} of {stats['pairs']} pairs with a correct verdict, {stats['kept']} "
         f"traces kept after balancing A and B")
    adapter = _train_round(settings, folder, start, number, echo, bar)
    score = _evaluate_round(settings, folder, heldout, backends, f"round {number}", bar,
                            lambda target: write_compared(settings, start, target, adapter))
    score.update(traces=stats["kept"], correct_pairs=stats["correct"], adapter=str(adapter))
    write_text_atomic(folder / "eval.json", json.dumps(score, indent=2))
    return score


def _sample(settings: Settings, folder: Path, sampler: str, pairs: list[SynthPair], samples: int,
            backends: dict[str, Backend], bar: Progress) -> list[Verdicts]:
    config = settings.config.judge
    state_file = folder / "verdicts.json"
    state = read_json_object(state_file) or {"rows": []}
    rows: list[dict[str, Any]] = state["rows"]
    if len(rows) < len(pairs):
        judge = cached_backend(settings, sampler, backends)
        for start in range(len(rows), len(pairs), CHUNK):
            bar(f"{folder.name}: sample verdicts", start, len(pairs))
            made = sample_verdicts(judge, pairs[start:start + CHUNK], samples, config.temperature,
                                   config.verdict_tokens, config.seed + start)
            rows += [{"pair": v.pair.to_json(), "first": v.first, "second": v.second} for v in made]
            write_text_atomic(state_file, json.dumps({"rows": rows}))
        bar(f"{folder.name}: sample verdicts", len(pairs), len(pairs))
        backends.pop(sampler).close()  # this round's sampler is not needed again
    return [Verdicts(SynthPair(**r["pair"]), r["first"], r["second"]) for r in rows]


def _train_round(settings: Settings, folder: Path, start: str, number: int, echo: Callable[[str], None],
                 bar: Progress) -> Path:
    """A LoRA adapter trained on this round's traces from the starting judge, by `model train`."""
    from seedlab.train import TrainOptions, train

    config = settings.config.judge
    phase = PhaseConfig("judge", "skills", config.epochs, config.lr, 0.1)
    root = folder / "train"
    tuned = dataclasses.replace(
        settings.config, train=dataclasses.replace(settings.config.train, phases=[phase]),
        paths=dataclasses.replace(settings.config.paths, checkpoints=str(root)))
    unfinished = [d for d in sorted(root.glob("*")) if read_json_object(d / "run.json").get("status") == "running"]
    finished = [d for d in sorted(root.glob("*")) if read_json_object(d / "run.json").get("status") == "finished"]
    if finished:
        return finished[-1] / "adapter"
    options = TrainOptions(skills_data=folder / "traces.jsonl", phases="skills", model=start,
                           resume=str(unfinished[-1]) if unfinished else None)
    result = train(dataclasses.replace(settings, config=tuned), options, echo=lambda line: echo(f"  {line}"),
                   progress=lambda row: bar(f"round {number}: train", row["step"], row["steps"]))
    return result.adapter


def _evaluate_round(settings: Settings, folder: Path, heldout: list[Any], backends: dict[str, Backend], name: str,
                    bar: Progress, write_judge: Callable[[Path], Any]) -> dict[str, Any]:
    """Write the round's judge as GGUF (if not yet there) and score it on the held-out pairs."""
    done = read_json_object(folder / "eval.json")
    if done and folder.name == "round-0":
        return done
    target = folder / "judge.gguf"
    if not target.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        write_judge(target)
    judge = cached_backend(settings, str(target), backends)
    bar(f"{folder.name}: held-out pairs", 0, len(heldout))
    score = evaluate_judge(judge, heldout, settings.config.judge.verdict_tokens)
    bar(f"{folder.name}: held-out pairs", len(heldout), len(heldout))
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
