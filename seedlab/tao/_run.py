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
from pathlib import Path
from typing import Any

from seedlab.backends import Request
from seedlab.charts import chart
from seedlab.config import Settings
from seedlab.errors import SeedlabError
from seedlab.fsutil import read_json_object, write_text_atomic
from seedlab.judge.judging import Judge, ScalarJudge, open_judge
from seedlab.judge.rounds import RoundModels
from seedlab.runs import Progress, finish_run, no_progress, open_run
from seedlab.tao._candidates import build_pairs, sample_candidates, score_all
from seedlab.tao._scorers import Scorer, load_scorer
from seedlab.train import TuneConfig
from seedlab.workspace import shipped

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


def run_tao(settings: Settings, options: TaoOptions, echo: Callable[[str], None] = print,
            progress: Progress | None = None, models: RoundModels | None = None) -> TaoResult:
    """Score the starting policy, run the rounds (each tuned from the last), compare with the judge, report.

    `models` opens, writes and tunes the models (tests pass one with fakes)."""
    if not options.resume:
        for spec in options.scorers:  # a wrong scorer fails before any folder is made
            if spec.split("=")[0] != "judge":
                load_scorer(spec)
    run_dir, info, saved = open_run(settings.tao_path, options.resume, options, "tao")
    run = _TaoRun.start(settings, run_dir, saved, models or RoundModels(settings), echo, progress or no_progress)
    config = settings.config.tao
    rounds_wanted = saved.rounds or config.rounds
    train_prompts, heldout = _prompts(settings, saved, run_dir)
    echo(f"tao run {run_dir.name}: {len(train_prompts)} prompts, {len(heldout)} held out; {run.samples} candidates "
         f"per prompt, {rounds_wanted} round(s), {run.method}; scorers: {', '.join(run.specs)}")
    try:
        rows = [run.heldout_round(run_dir / "round-0", 0, heldout, None, None, 0)]
        echo(_round_line(rows[0]))
        adapter = None
        for number in range(1, rounds_wanted + 1):
            row, adapter = run.round(number, train_prompts, heldout, rows[-1])
            rows.append(row)
            echo(_round_line(row))
        comparison = run.compare(heldout, rows[0], rows[-1]) if rounds_wanted else {}
    finally:
        run.models.close()
    report = {"rounds": rows, "method": run.method, "samples": run.samples, "scorers": run.specs,
              "heldout": len(heldout), "judge_comparison": comparison, "adapter": str(adapter) if adapter else None}
    write_text_atomic(run_dir / "report.json", json.dumps(report, indent=2))
    _chart(rows, run_dir / "chart.png")
    finish_run(run_dir, info, rounds=rows, adapter=report["adapter"], judge_comparison=comparison)
    return TaoResult(run_dir, rows, adapter, len(heldout), comparison)


def _prompts(settings: Settings, options: TaoOptions, run_dir: Path) -> tuple[list[str], list[str]]:
    """Training and held-out prompts, split once (seeded) and kept in the run for resume."""
    from seedlab.prompts import load_prompts

    saved = read_json_object(run_dir / "prompts.json")
    if saved:
        return list(saved["train"]), list(saved["heldout"])
    prompts = load_prompts(options.prompts or shipped("tao", "prompts.jsonl"))
    if options.from_log:
        from seedlab.prompts import rotated

        log = settings.prompt_log_path
        if not log.is_file():
            raise SeedlabError(f"--from-log: no prompt log at {log}; `seedlab model serve` writes it while it runs")
        older = [rotated(log, n) for n in range(settings.config.serve.prompt_log_keep, 0, -1)]
        for file in [f for f in older if f.is_file()] + [log]:  # oldest first
            prompts = list(dict.fromkeys(prompts + load_prompts(file)))
    order = prompts[:]
    random.Random(settings.config.tao.seed).shuffle(order)
    held = max(1, round(len(order) * settings.config.tao.heldout_share))
    if len(order) - held < 2:
        raise SeedlabError(f"{len(prompts)} prompts leave too few to tune on after {held} held out; give more")
    train, heldout = order[held:], order[:held]
    write_text_atomic(run_dir / "prompts.json", json.dumps({"train": train, "heldout": heldout}, indent=2))
    return train, heldout


@dataclass
class _TaoRun:
    """One `tao run`'s resolved settings and models, which every step reads."""

    settings: Settings
    run_dir: Path
    model: str  # the starting policy; every round's adapter applies to it
    method: str
    samples: int
    specs: list[str]
    scorers: list[Scorer]
    use_judge: bool
    judge_weight: float
    judge_ref: str | None  # --judge: for the judge scorer and the comparison (default: eval.judge)
    models: RoundModels
    echo: Callable[[str], None]
    bar: Progress
    opened: Judge | None = None

    @classmethod
    def start(cls, settings: Settings, run_dir: Path, options: TaoOptions, models: RoundModels,
              echo: Callable[[str], None], bar: Progress) -> _TaoRun:
        method = options.method or settings.config.tao.method
        if method not in ("dpo", "rft"):
            raise SeedlabError(f"--method {method}: choose dpo or rft")
        specs = list(options.scorers) or ["judge"]
        return cls(settings, run_dir, options.model or settings.config.model.default, method,
                   options.samples or settings.config.tao.samples, specs,
                   [load_scorer(s) for s in specs if s.split("=")[0] != "judge"],
                   "judge" in [s.split("=")[0] for s in specs],
                   next((float(s.split("=")[1]) for s in specs if s.startswith("judge=")), 1.0),
                   options.judge, models, echo, bar)

    def judge(self) -> Judge:
        """The judge, opened once: a generative one through the run's models, a scalar one owned by them."""
        if self.opened is None:
            self.opened = open_judge(self.settings, self.judge_ref, self.echo, self.models.model)
            if isinstance(self.opened, ScalarJudge):
                self.models.own(self.opened)
        return self.opened

    def scorer_judge(self) -> Judge | None:
        """The judge whose rating joins the scores, when the scorers name it."""
        return self.judge() if self.use_judge else None

    def round(self, number: int, prompts: list[str], heldout: list[str],
              previous: dict[str, Any]) -> tuple[dict[str, Any], Path]:
        """Candidates from the last policy, preference pairs, tuning, and the tuned policy's held-out scores."""
        folder = self.run_dir / f"round-{number}"
        done = read_json_object(folder / "heldout.json")
        if done:
            return done, folder / "tune" / "adapter"
        config = self.settings.config.tao
        policy_file = str(self.run_dir / f"round-{number - 1}" / "policy.gguf")
        candidates, compute = self.candidates(folder, policy_file, prompts)
        self.models.release(policy_file)  # the next round samples from the newly tuned policy
        pairs, found = _best_pairs(candidates, config.margin, config.max_pairs, config.seed + number)
        failed = sum(len(c["errors"]) > 0 for row in candidates for c in row["candidates"])
        ties = sum(len({c["total"] for c in row["candidates"] if c["total"] is not None}) == 1 for row in candidates)
        items = pairs if self.method == "dpo" else [{"prompt": p["prompt"], "response": p["chosen"]} for p in pairs]
        write_text_atomic(folder / "pairs.jsonl", "".join(json.dumps(p) + "\n" for p in pairs))
        self.echo(f"round {number}: {compute['candidates']} candidates ({failed} with a failed scorer); {found} "
                  f"prompts with a best-worst margin of at least {config.margin} ({len(pairs)} tuned on), {ties} where "
                  f"every candidate tied")
        if not items:
            raise SeedlabError(f"round {number}: no prompt's candidates differ by {config.margin} in score, so there "
                               f"is nothing to prefer; raise --samples, or check the scorers on a few responses")
        start_adapter = self.run_dir / f"round-{number - 1}" / "tune" / "adapter" if number > 1 else None
        tune_config = TuneConfig(self.method, config.epochs, config.lr, config.beta, config.seed + number, config.nll)
        adapter = self.models.tune(self.model, start_adapter, items, folder / "tune", tune_config,
                                   lambda line: self.echo(f"  {line}"),
                                   lambda step, steps: self.bar(f"round {number}: {self.method}", step, steps))
        row = self.heldout_round(folder, number, heldout, adapter, compute, previous.get("compute_tokens", 0))
        row.update(pairs=len(pairs), ties=ties, failed_candidates=failed)
        write_text_atomic(folder / "heldout.json", json.dumps(row, indent=2))
        return row, adapter

    def candidates(self, folder: Path, policy_file: str,
                   prompts: list[str]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Scored candidates for every prompt, saved after each chunk."""
        config = self.settings.config.tao
        state_file = folder / "candidates.json"
        rows: list[dict[str, Any]] = (read_json_object(state_file) or {"rows": []})["rows"]
        if len(rows) < len(prompts):
            policy, judge = self.models.model(policy_file), self.scorer_judge()
            for start in range(len(rows), len(prompts), CHUNK):
                self.bar(f"{folder.name}: candidates", start, len(prompts))
                part = prompts[start:start + CHUNK]
                made = sample_candidates(policy, part, self.samples, config.max_tokens, config.seed + start)
                for prompt, cands in zip(part, made, strict=True):
                    scored = score_all(self.scorers, judge, self.judge_weight,
                                       [(prompt, c["response"]) for c in cands])
                    rows.append({"prompt": prompt,
                                 "candidates": [{**c, **s} for c, s in zip(cands, scored, strict=True)]})
                write_text_atomic(state_file, json.dumps({"rows": rows}))
            self.bar(f"{folder.name}: candidates", len(prompts), len(prompts))
        tokens = sum(c["tokens"] for r in rows for c in r["candidates"])
        return rows, {"candidates": sum(len(r["candidates"]) for r in rows), "tokens": round(tokens)}

    def heldout_round(self, folder: Path, number: int, heldout: list[str], adapter: Path | None,
                      compute: dict[str, Any] | None, tokens_before: float) -> dict[str, Any]:
        """Write the round's policy as GGUF, answer the held-out prompts greedily, score the answers."""
        saved = read_json_object(folder / "heldout.json")
        if saved and number == 0:
            return saved
        target = folder / "policy.gguf"
        policy = self.models.written(self.model, target, adapter)
        self.bar(f"{folder.name}: held-out answers", 0, len(heldout))
        results = policy.complete([Request(messages=[{"role": "user", "content": p}], temperature=0.0,
                                           max_tokens=self.settings.config.tao.max_tokens, seed=0) for p in heldout])
        answers = [r.texts[0].strip() for r in results]
        scored = score_all(self.scorers, self.scorer_judge(), self.judge_weight,
                           list(zip(heldout, answers, strict=True)))
        self.bar(f"{folder.name}: held-out answers", len(heldout), len(heldout))
        totals = [s["total"] for s in scored if s["total"] is not None]
        row = {"round": number, "score": round(sum(totals) / len(totals), 4) if totals else 0.0,
               "scorers": _scorer_means(scored),
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

    def compare(self, heldout: list[str], start: dict[str, Any], tuned: dict[str, Any]) -> dict[str, Any]:
        """The judge's pairwise verdicts, both orders, on the tuned policy's held-out answers against the start's."""
        saved = read_json_object(self.run_dir / "judge_comparison.json")
        if saved:
            return saved
        start_answers = json.loads((Path(start["policy"]).parent / "answers.json").read_text())
        tuned_answers = json.loads((Path(tuned["policy"]).parent / "answers.json").read_text())
        judge = self.judge()
        self.bar("judge: tuned vs start", 0, len(heldout))
        outcomes = judge.compare([(p, t["answer"], s["answer"]) for p, t, s in
                                  zip(heldout, tuned_answers, start_answers, strict=True)], max_tokens=128)
        self.bar("judge: tuned vs start", len(heldout), len(heldout))
        counts = {k: sum(o == k for o, _ in outcomes) for k in ("win", "tie", "loss")}
        write_text_atomic(self.run_dir / "judge_comparison.json", json.dumps(counts))
        return counts


def _best_pairs(candidates: list[dict[str, Any]], margin: float, most: int,
                seed: int) -> tuple[list[dict[str, Any]], int]:
    """Best-vs-worst pairs of the prompts whose candidates differ by `margin`, widest margins first, at most
    `most` of them; and how many prompts had one."""
    pairs = [p for p in (build_pairs(c["prompt"], c["candidates"], margin) for c in candidates) if p]
    found = len(pairs)
    random.Random(seed).shuffle(pairs)
    return sorted(pairs, key=lambda p: p["rejected_score"] - p["chosen_score"])[:most], found


def _scorer_means(scored: list[dict[str, Any]]) -> dict[str, float | None]:
    """Each scorer's mean over the answers it could score."""
    means = {}
    for name in scored[0]["scores"] if scored else []:
        values = [s["scores"][name] for s in scored if s["scores"][name] is not None]
        means[name] = round(sum(values) / len(values), 4) if values else None
    return means


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
