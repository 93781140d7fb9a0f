"""`seedlab tao run`: rounds of candidates -> scores -> preference tuning, from unlabeled prompts alone; every step
saved so a killed run resumes.

Run folder (under paths.tao):
  run.json                     options, status, per-round figures
  prompts.json                 the prompts, split into training and held-out
  round-0/                     the starting policy written as GGUF, its held-out answers and scores
  round-N/                     candidates.json (chunked), pairs.jsonl, tune/ (adapter, checkpoints), policy.gguf,
                               heldout.json
  report.json, chart.png
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from seedlab.backends import Backend, Request, cached_backend
from seedlab.charts import chart
from seedlab.config import Settings
from seedlab.errors import SeedlabError
from seedlab.fsutil import open_run, read_json_object, write_text_atomic
from seedlab.tao._candidates import build_pairs, sample_candidates, score_all
from seedlab.tao._scorers import Scorer, load_scorer
from seedlab.tao._tune import TuneConfig, tune
from seedlab.train import write_compared

Progress = Callable[[str, int, int], None]
CHUNK = 16  # prompts between saved states


@dataclass(frozen=True)
class TaoOptions:
    """What one `tao run` asks for (None: from config)."""

    prompts: Path | None = None  # JSONL prompts (prompt or messages); default: the shipped example
    from_log: bool = False  # add the prompts `model serve` logged
    scorers: tuple[str, ...] = ()  # specs for load_scorer; "judge" adds the judge's rating
    samples: int | None = None
    rounds: int | None = None
    method: str | None = None  # dpo | rft
    model: str | None = None
    judge: str | None = None
    resume: str | None = None


@dataclass
class TaoResult:
    run_dir: Path
    rounds: list[dict[str, Any]]
    adapter: Path | None
    heldout: int
    comparison: dict[str, Any] = dataclasses.field(default_factory=dict)  # judge: tuned vs start, win/tie/loss


def shipped_prompts() -> Path:
    return Path(str(resources.files("seedlab") / "examples" / "tao" / "prompts.jsonl"))


def run_tao(settings: Settings, options: TaoOptions, echo: Callable[[str], None] = print,
            progress: Progress | None = None) -> TaoResult:
    run_dir, info = _open_run(settings, options)
    saved = options if not options.resume else _options_from(info["options"])
    config = settings.config.tao
    samples, rounds_wanted = saved.samples or config.samples, saved.rounds or config.rounds
    method = saved.method or config.method
    if method not in ("dpo", "rft"):
        raise SeedlabError(f"--method {method}: choose dpo or rft")
    model = saved.model or settings.config.model.default
    specs = list(saved.scorers) or ["judge"]
    use_judge = "judge" in [s.split("=")[0] for s in specs]
    judge_weight = next((float(s.split("=")[1]) for s in specs if s.startswith("judge=")), 1.0)
    scorers = [load_scorer(s) for s in specs if s.split("=")[0] != "judge"]
    train_prompts, heldout = _prompts(settings, saved, run_dir)
    bar = progress or (lambda _stage, _done, _total: None)
    echo(f"tao run {run_dir.name}: {len(train_prompts)} prompts, {len(heldout)} held out; {samples} candidates "
         f"per prompt, {rounds_wanted} round(s), {method}; scorers: {', '.join(specs)}")

    backends: dict[str, Backend] = {}

    def scorer_judge() -> Backend | None:
        if not use_judge:
            return None
        from seedlab.backends import judge_ref

        return cached_backend(settings, judge_ref(settings, saved.judge), backends, judge=True)

    try:
        start = run_dir / "round-0"
        rows = [_heldout_round(settings, start, 0, heldout, scorers, scorer_judge(), judge_weight, backends, bar,
                               lambda target: write_compared(settings, model, target), None, 0)]
        echo(_round_line(rows[0]))
        adapter = None
        for number in range(1, rounds_wanted + 1):
            row, adapter = _round(settings, run_dir, number, model, train_prompts, heldout, samples, method,
                                  scorers, scorer_judge, judge_weight, backends, echo, bar, rows[-1])
            rows.append(row)
            echo(_round_line(row))
        comparison = _compare(settings, run_dir, heldout, rows[0], rows[-1], saved.judge, backends, bar) \
            if rounds_wanted else {}
    finally:
        for backend in backends.values():
            backend.close()
    report = {"rounds": rows, "method": method, "samples": samples, "scorers": specs, "heldout": len(heldout),
              "judge_comparison": comparison, "adapter": str(adapter) if adapter else None}
    write_text_atomic(run_dir / "report.json", json.dumps(report, indent=2))
    _chart(rows, run_dir / "chart.png")
    info.update(status="finished", finished=datetime.now(UTC).isoformat(timespec="seconds"), rounds=rows,
                adapter=report["adapter"], judge_comparison=comparison)
    write_text_atomic(run_dir / "run.json", json.dumps(info, indent=2))
    return TaoResult(run_dir, rows, adapter, len(heldout), comparison)


def _options_from(saved: dict[str, Any]) -> TaoOptions:
    values = dict(saved)
    values["prompts"] = Path(values["prompts"]) if values.get("prompts") else None
    values["scorers"] = tuple(values.get("scorers") or ())
    values["resume"] = None
    return TaoOptions(**values)


def _open_run(settings: Settings, options: TaoOptions) -> tuple[Path, dict[str, Any]]:
    if not options.resume:
        for spec in options.scorers:  # a wrong scorer fails before any folder is made
            if spec.split("=")[0] != "judge":
                load_scorer(spec)
    return open_run(settings.tao_path, options.resume, options, "tao")


def _prompts(settings: Settings, options: TaoOptions, run_dir: Path) -> tuple[list[str], list[str]]:
    """Training and held-out prompts, split once (seeded) and kept in the run for resume."""
    from seedlab.prompts import load_prompts

    saved = read_json_object(run_dir / "prompts.json")
    if saved:
        return list(saved["train"]), list(saved["heldout"])
    prompts = load_prompts(options.prompts or shipped_prompts())
    if options.from_log:
        log = settings.prompt_log_path
        if not log.is_file():
            raise SeedlabError(f"--from-log: no prompt log at {log}; `seedlab model serve` writes it while it runs")
        prompts = list(dict.fromkeys(prompts + load_prompts(log)))
    order = prompts[:]
    random.Random(settings.config.tao.seed).shuffle(order)
    held = max(1, round(len(order) * settings.config.tao.heldout_share))
    if len(order) - held < 2:
        raise SeedlabError(f"{len(prompts)} prompts leave too few to tune on after {held} held out; give more")
    train, heldout = order[held:], order[:held]
    write_text_atomic(run_dir / "prompts.json", json.dumps({"train": train, "heldout": heldout}, indent=2))
    return train, heldout


def _round(settings: Settings, run_dir: Path, number: int, model: str, prompts: list[str], heldout: list[str],
           samples: int, method: str, scorers: list[Scorer], scorer_judge: Callable[[], Backend | None],
           judge_weight: float, backends: dict[str, Backend], echo: Callable[[str], None], bar: Progress,
           previous: dict[str, Any]) -> tuple[dict[str, Any], Path]:
    folder = run_dir / f"round-{number}"
    done = read_json_object(folder / "heldout.json")
    if done:
        return done, folder / "tune" / "adapter"
    config = settings.config.tao
    policy_file = str(run_dir / f"round-{number - 1}" / "policy.gguf")
    candidates, compute = _candidates(settings, folder, policy_file, prompts, samples, scorers, scorer_judge,
                                      judge_weight, backends, bar)
    if policy_file in backends:
        backends.pop(policy_file).close()  # the next round samples from the newly tuned policy
    pairs = [p for p in (build_pairs(c["prompt"], c["candidates"], config.margin) for c in candidates) if p]
    found = len(pairs)
    random.Random(config.seed + number).shuffle(pairs)
    pairs = sorted(pairs, key=lambda p: p["rejected_score"] - p["chosen_score"])[:config.max_pairs]
    failed = sum(len(c["errors"]) > 0 for row in candidates for c in row["candidates"])
    ties = sum(len({c["total"] for c in row["candidates"] if c["total"] is not None}) == 1 for row in candidates)
    items = pairs if method == "dpo" else [{"prompt": p["prompt"], "response": p["chosen"]} for p in pairs]
    write_text_atomic(folder / "pairs.jsonl", "".join(json.dumps(p) + "\n" for p in pairs))
    echo(f"round {number}: {compute['candidates']} candidates ({failed} with a failed scorer); {found} prompts "
         f"with a best-worst margin of at least {config.margin} ({len(pairs)} tuned on), {ties} where every "
         f"candidate tied")
    if not items:
        raise SeedlabError(f"round {number}: no prompt's candidates differ by {config.margin} in score, so there is "
                           f"nothing to prefer; raise --samples, or check the scorers on a few responses")
    start_adapter = run_dir / f"round-{number - 1}" / "tune" / "adapter" if number > 1 else None
    adapter = tune(settings, model, start_adapter, items, folder / "tune",
                   TuneConfig(method, config.epochs, config.lr, config.beta, config.seed + number, config.nll),
                   lambda line: echo(f"  {line}"), lambda step, steps: bar(f"round {number}: {method}", step, steps))
    row = _heldout_round(settings, folder, number, heldout, scorers, scorer_judge(), judge_weight, backends, bar,
                         lambda target: write_compared(settings, model, target, adapter), compute,
                         previous.get("compute_tokens", 0))
    row.update(pairs=len(pairs), ties=ties, failed_candidates=failed)
    write_text_atomic(folder / "heldout.json", json.dumps(row, indent=2))
    return row, adapter


def _candidates(settings: Settings, folder: Path, policy_file: str, prompts: list[str], samples: int,
                scorers: list[Scorer], scorer_judge: Callable[[], Backend | None], judge_weight: float,
                backends: dict[str, Backend], bar: Progress) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Scored candidates for every prompt, saved after each chunk."""
    config = settings.config.tao
    state_file = folder / "candidates.json"
    rows: list[dict[str, Any]] = (read_json_object(state_file) or {"rows": []})["rows"]
    if len(rows) < len(prompts):
        policy = cached_backend(settings, policy_file, backends)
        judge = scorer_judge()
        for start in range(len(rows), len(prompts), CHUNK):
            bar(f"{folder.name}: candidates", start, len(prompts))
            part = prompts[start:start + CHUNK]
            made = sample_candidates(policy, part, samples, config.max_tokens, config.seed + start)
            for prompt, cands in zip(part, made, strict=True):
                scored = score_all(scorers, judge, judge_weight, [(prompt, c["response"]) for c in cands])
                rows.append({"prompt": prompt, "candidates": [{**c, **s} for c, s in zip(cands, scored, strict=True)]})
            write_text_atomic(state_file, json.dumps({"rows": rows}))
        bar(f"{folder.name}: candidates", len(prompts), len(prompts))
    tokens = sum(c["tokens"] for r in rows for c in r["candidates"])
    return rows, {"candidates": sum(len(r["candidates"]) for r in rows), "tokens": round(tokens)}


def _heldout_round(settings: Settings, folder: Path, number: int, heldout: list[str], scorers: list[Scorer],
                   judge: Backend | None, judge_weight: float, backends: dict[str, Backend], bar: Progress,
                   write_policy: Callable[[Path], Any], compute: dict[str, Any] | None,
                   tokens_before: float) -> dict[str, Any]:
    """Write the round's policy as GGUF, answer the held-out prompts greedily, score the answers."""
    saved = read_json_object(folder / "heldout.json")
    if saved and number == 0:
        return saved
    target = folder / "policy.gguf"
    if not target.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        write_policy(target)
    policy = cached_backend(settings, str(target), backends)
    bar(f"{folder.name}: held-out answers", 0, len(heldout))
    max_tokens = settings.config.tao.max_tokens
    results = policy.complete([Request(messages=[{"role": "user", "content": p}], temperature=0.0,
                                       max_tokens=max_tokens, seed=0) for p in heldout])
    answers = [r.texts[0].strip() for r in results]
    scored = score_all(scorers, judge, judge_weight, list(zip(heldout, answers, strict=True)))
    bar(f"{folder.name}: held-out answers", len(heldout), len(heldout))
    totals = [s["total"] for s in scored if s["total"] is not None]
    per_scorer = {}
    for name in scored[0]["scores"] if scored else []:
        values = [s["scores"][name] for s in scored if s["scores"][name] is not None]
        per_scorer[name] = round(sum(values) / len(values), 4) if values else None
    row = {"round": number, "score": round(sum(totals) / len(totals), 4) if totals else 0.0, "scorers": per_scorer,
           "length": round(sum(r.completion_tokens for r in results) / max(1, len(results)), 2),
           "failed": sum(s["total"] is None for s in scored),
           "compute_candidates": (compute or {}).get("candidates", 0),
           "compute_tokens": round(tokens_before + (compute or {}).get("tokens", 0)),
           "policy": str(target)}
    write_text_atomic(folder / "answers.json", json.dumps(
        [{"prompt": p, "answer": a, **s} for p, a, s in zip(heldout, answers, scored, strict=True)], indent=2))
    if number == 0:
        write_text_atomic(folder / "heldout.json", json.dumps(row, indent=2))
    return row


def _compare(settings: Settings, run_dir: Path, heldout: list[str], start: dict[str, Any], tuned: dict[str, Any],
             judge_given: str | None, backends: dict[str, Backend], bar: Progress) -> dict[str, Any]:
    """The judge's pairwise verdicts, both orders, on the tuned policy's held-out answers against the start's."""
    from seedlab.backends import judge_ref
    from seedlab.eval._judge import judge_pairs

    saved = read_json_object(run_dir / "judge_comparison.json")
    if saved:
        return saved
    start_answers = json.loads((Path(start["policy"]).parent / "answers.json").read_text())
    tuned_answers = json.loads((Path(tuned["policy"]).parent / "answers.json").read_text())
    judge = cached_backend(settings, judge_ref(settings, judge_given), backends, judge=True)
    bar("judge: tuned vs start", 0, len(heldout))
    outcomes = judge_pairs(judge, [(p, t["answer"], s["answer"]) for p, t, s in
                                   zip(heldout, tuned_answers, start_answers, strict=True)], max_tokens=128)
    bar("judge: tuned vs start", len(heldout), len(heldout))
    counts = {k: sum(o == k for o, _ in outcomes) for k in ("win", "tie", "loss")}
    write_text_atomic(run_dir / "judge_comparison.json", json.dumps(counts))
    return counts


def _round_line(row: dict[str, Any]) -> str:
    name = "start" if row["round"] == 0 else f"round {row['round']}"
    return (f"{name}: held-out score {row['score']:.2f}, mean length {row['length']:.1f} tokens, tuning compute "
            f"{row['compute_candidates']} candidates / {row['compute_tokens']} tokens")


def render_report(result: TaoResult) -> str:
    """The table and the last line `tao run` prints."""
    lines = ["round  held-out score  mean length  candidates  generated tokens  pairs",
             "-----  --------------  -----------  ----------  ----------------  -----"]
    for r in result.rounds:
        lines.append(f"{r['round']:>5}  {r['score']:14.2f}  {r['length']:11.1f}  {r['compute_candidates']:>10}  "
                     f"{r['compute_tokens']:>16}  {r.get('pairs', '-'):>5}")
    if result.comparison:
        c = result.comparison
        lines.append(f"judge, tuned vs start (both orders): {c['win']} wins, {c['tie']} ties, {c['loss']} losses")
    start, last = result.rounds[0], result.rounds[-1]
    ratio = last["length"] / start["length"] if start["length"] else 1.0
    lines.append(f"held-out score: start {start['score']:.2f} -> tuned {last['score']:.2f}; length ratio {ratio:.2f} "
                 f"({result.heldout} prompts)")
    return "\n".join(lines)


def _chart(rows: list[dict[str, Any]], target: Path) -> None:
    """Held-out score against tuning compute (generated candidate tokens), one point per round."""
    with chart(target) as axes:
        xs = [r["compute_tokens"] for r in rows]
        axes.plot(xs, [r["score"] for r in rows], marker="o")
        for r in rows:
            axes.annotate("start" if r["round"] == 0 else f"round {r['round']}", (r["compute_tokens"], r["score"]),
                          textcoords="offset points", xytext=(4, 4))
        axes.set_xlabel("tuning compute (generated candidate tokens)")
        axes.set_ylabel("held-out score")
