"""`seedlab model evaluate`: base and candidate answer the same questions; judge-free scores for knowledge,
pairwise judge verdicts for skills; a per-leaf table, a JSON report and a chart."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from seedlab.backends import Backend, Request
from seedlab.charts import chart
from seedlab.config import Settings
from seedlab.errors import SeedlabError
from seedlab.eval._coverage import TrainingText, diagnose
from seedlab.eval._score import key_fact_score, key_facts, token_f1
from seedlab.fsutil import new_run_dir, read_jsonl_rows, write_text_atomic
from seedlab.judge.judging import Judge, as_judge, open_judge

BENCHMARKS = ("knowledge-branch", "skills-branch")
HELDOUT_FILE = "heldout.jsonl"  # beside a knowledge leaf's qna.yaml: questions on its document that no seed asks
CHANGE = 0.05  # a leaf counts as improved or regressed when its score moves by at least 5 points


@dataclass(frozen=True)
class EvaluateOptions:
    """What one `model evaluate` invocation asks for (None: from config)."""

    candidate: str  # a model reference, or a PEFT adapter folder from `model train`
    base: str | None = None
    benchmarks: tuple[str, ...] = BENCHMARKS
    taxonomy_base: str | None = None
    questions: Path | None = None  # held-out questions (JSONL: question, answer, optional key_facts, leaf)
    judge: str | None = None  # judge model; given, it also grades knowledge answers against the reference
    training_data: tuple[Path, ...] = ()  # what the candidate trained on (default: an adapter's own run's data)


@dataclass
class Question:
    group: str  # the leaf path, or "held-out: FILE" for --questions lines without a leaf
    question: str
    reference: str
    facts: list[str]
    held_out: bool = False
    context: str | None = None


@dataclass
class EvalReport:
    run_dir: Path
    rows: list[dict[str, Any]]
    uplift: dict[str, Any] | None
    answers: list[dict[str, Any]] = field(default_factory=list)
    coverage: dict[str, Any] | None = None  # held-out questions against the training data (eval/_coverage.py)

    @property
    def chart(self) -> Path:
        return self.run_dir / "chart.png"


Opener = Callable[[str], Any]  # "base" | "candidate" -> a Backend; "judge" -> a Judge (or a Backend)


def evaluate(settings: Settings, options: EvaluateOptions, echo: Callable[[str], None] = print,
             opener: Opener | None = None) -> EvalReport:
    """Answer every question with both models, score, and write report.json, answers.jsonl and chart.png."""
    unknown = set(options.benchmarks) - set(BENCHMARKS)
    if unknown:
        raise SeedlabError(f"unknown benchmark {sorted(unknown)[0]!r}; choose from {', '.join(BENCHMARKS)}")
    files = _training_files(options)  # a wrong path fails now, not after minutes of answers
    knowledge, skills = _questions(settings, options)
    if not skills and not knowledge:
        raise SeedlabError("nothing to evaluate: no changed leaf of the chosen benchmarks and no --questions; "
                           "use --taxonomy-base empty for the whole tree")
    open_backend = opener or _opener(settings, options)
    backends: dict[str, Backend] = {}
    try:
        answers: dict[str, list[str]] = {}
        for role in ("base", "candidate"):
            backends[role] = open_backend(role)
            echo(f"{role}: {backends[role].model_id} answers {len(knowledge) + len(skills)} questions")
            answers[role] = answer_questions(backends[role], knowledge + skills, settings.config.eval.max_tokens)
            backends.pop(role).close()  # one model in memory at a time
        judge = None
        if skills or (knowledge and options.judge):
            judge = as_judge(open_backend("judge"))
            backends["judge"] = judge  # type: ignore[assignment]  # closed with the backends
            echo(f"judge: {judge.model_id} ({judge.kind})")
        rows, records = _score_knowledge(knowledge, answers, judge if options.judge else None)
        skill_rows, skill_records = _score_skills(skills, answers, len(knowledge), judge)
    finally:
        for backend in backends.values():
            backend.close()
    rows += skill_rows
    uplift = _uplift(records)
    covered = diagnose(records, TrainingText.read(files)) if files else None
    run_dir = new_run_dir(settings.evaluations_path)
    report = EvalReport(run_dir, rows, uplift, records + skill_records, covered)
    _write(report, options, backends_ids={"base": options.base or settings.config.model.default,
                                          "candidate": options.candidate})
    return report


def _training_files(options: EvaluateOptions) -> list[Path]:
    from seedlab.train import trained_on

    missing = [p for p in options.training_data if not Path(p).is_file()]
    if missing:
        raise SeedlabError(f"{missing[0]}: no such training data file (--training-data takes a JSONL file)")
    return [Path(p) for p in options.training_data] or trained_on(Path(options.candidate))


# --- questions ---------------------------------------------------------------------------------------------------


def _questions(settings: Settings, options: EvaluateOptions) -> tuple[list[Question], list[Question]]:
    from seedlab.taxonomy import changed_leaves

    diff = changed_leaves(settings.taxonomy_path, options.taxonomy_base or settings.config.taxonomy.base)
    knowledge, skills = leaf_questions(settings, diff.files, heldout=False)
    knowledge = knowledge if "knowledge-branch" in options.benchmarks else []
    skills = skills if "skills-branch" in options.benchmarks else []
    if options.questions is not None:
        knowledge += load_questions(options.questions)
    return knowledge, skills


def leaf_questions(settings: Settings, leaves: list[str], heldout: bool = True) -> tuple[list[Question],
                                                                                      list[Question]]:
    """The leaves' seed questions: knowledge (with key facts, and with `heldout` the held-out questions of a
    `heldout.jsonl` beside a leaf's qna.yaml) and skills."""
    from seedlab.taxonomy import KnowledgeLeaf, SkillLeaf, load_leaf

    knowledge: list[Question] = []
    skills: list[Question] = []
    for rel in leaves:
        leaf = load_leaf(settings.taxonomy_path, rel, settings.home.cache / "docs")
        if isinstance(leaf, KnowledgeLeaf):
            knowledge += [Question(rel, qa.question.strip(), qa.answer.strip(), key_facts(qa.answer, qa.question))
                          for seed in leaf.seeds for qa in seed.qna]
            held = settings.taxonomy_path / rel
            held = held.parent / HELDOUT_FILE
            if heldout and held.is_file():
                knowledge += [dataclasses.replace(q, group=rel) for q in load_questions(held)]
        elif isinstance(leaf, SkillLeaf):
            skills += [Question(rel, s.question.strip(), s.answer.strip(), [], context=s.context) for s in leaf.seeds]
    return knowledge, skills


def load_questions(path: Path) -> list[Question]:
    """Held-out questions: JSONL objects with `question` and `answer`, optional `key_facts` and `leaf`."""
    out = []
    for number, row in read_jsonl_rows(path, ("question", "answer"), "questions"):
        facts = row.get("key_facts")
        if facts is not None and not (isinstance(facts, list) and all(isinstance(f, str) for f in facts)):
            raise SeedlabError(f"{path}:{number}: \"key_facts\" must be a list of strings")
        group = str(row.get("leaf") or f"held-out: {path.name}")
        out.append(Question(group, row["question"].strip(), row["answer"].strip(),
                            facts if facts else key_facts(row["answer"], row["question"]), held_out=True))
    return out


# --- answering and scoring ----------------------------------------------------------------------------------------


def answer_questions(backend: Backend, questions: list[Question], max_tokens: int) -> list[str]:
    """Greedy answers, so a rerun gives the same report."""
    requests = [Request(messages=[{"role": "user", "content": user_turn(q)}], temperature=0.0,
                        max_tokens=max_tokens, seed=0) for q in questions]
    return [r.texts[0].strip() for r in backend.complete(requests)]


def user_turn(question: Question) -> str:
    """The user's message for a question: its context (skills) above it."""
    return f"{question.context.strip()}\n\n{question.question}" if question.context else question.question


def _score_knowledge(questions: list[Question], answers: dict[str, list[str]],
                     judge: Judge | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    records = []
    for k, q in enumerate(questions):
        record: dict[str, Any] = {"benchmark": "knowledge-branch", "group": q.group, "held_out": q.held_out,
                                  "question": q.question, "reference": q.reference, "key_facts": q.facts}
        for role in ("base", "candidate"):
            answer = answers[role][k]
            record[role] = {"answer": answer, "key_facts": key_fact_score(answer, q.facts),
                            "f1": round(token_f1(answer, q.reference), 4)}
        records.append(record)
    if judge is not None and records:
        for role in ("base", "candidate"):
            ratings = judge.grade([(r["question"], r["reference"], r[role]["answer"]) for r in records])
            for record, rating in zip(records, ratings, strict=True):
                record[role]["judge"] = rating
    rows = []
    for group in dict.fromkeys(r["group"] for r in records):
        mine = [r for r in records if r["group"] == group]
        row: dict[str, Any] = {"benchmark": "knowledge-branch", "group": group, "questions": len(mine)}
        for role in ("base", "candidate"):
            row[role] = {"key_facts": _mean([r[role]["key_facts"] for r in mine]),
                         "f1": _mean([r[role]["f1"] for r in mine])}
            if judge is not None:
                rated = [r[role]["judge"] for r in mine if r[role]["judge"] is not None]
                row[role]["judge"] = _mean(rated) if rated else None
        change = row["candidate"]["key_facts"] - row["base"]["key_facts"]
        row["status"] = "improved" if change >= CHANGE else "regressed" if change <= -CHANGE else "unchanged"
        rows.append(row)
    return rows, records


def _score_skills(questions: list[Question], answers: dict[str, list[str]], offset: int,
                  judge: Judge | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if not questions or judge is None:
        return [], []
    items = [(user_turn(q), answers["candidate"][offset + k], answers["base"][offset + k])
             for k, q in enumerate(questions)]
    verdicts = judge.compare(items)
    records = [{"benchmark": "skills-branch", "group": q.group, "question": user_turn(q), "reference": q.reference,
                "base": {"answer": base}, "candidate": {"answer": cand}, "outcome": outcome, "verdicts": raw}
               for q, (_, cand, base), (outcome, raw) in zip(questions, items, verdicts, strict=True)]
    rows = []
    for group in dict.fromkeys(r["group"] for r in records):
        outcomes = [r["outcome"] for r in records if r["group"] == group]
        wins, ties, losses = (outcomes.count(o) for o in ("win", "tie", "loss"))
        status = "improved" if wins > losses else "regressed" if losses > wins else "unchanged"
        rows.append({"benchmark": "skills-branch", "group": group, "questions": len(outcomes), "win": wins,
                     "tie": ties, "loss": losses, "status": status})
    return rows, records


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 4) if values else 0.0


def _uplift(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Key-fact score change in points, on the held-out questions when there are any, else on every question."""
    held = [r for r in records if r["held_out"]]
    chosen = held or records
    if not chosen:
        return None
    base = 100 * _mean([r["base"]["key_facts"] for r in chosen])
    candidate = 100 * _mean([r["candidate"]["key_facts"] for r in chosen])
    return {"base": round(base, 1), "candidate": round(candidate, 1), "points": round(candidate - base, 1),
            "questions": len(chosen), "kind": "held-out" if held else "seed"}


def uplift_line(uplift: dict[str, Any]) -> str:
    """The figure `model evaluate` and `seedlab demo` end with."""
    return (f"uplift: {uplift['points']:+.1f} points (base {uplift['base']:.1f} -> trained {uplift['candidate']:.1f})"
            f" on {uplift['questions']} {uplift['kind']} questions")


# --- output ------------------------------------------------------------------------------------------------------


def render_table(rows: list[dict[str, Any]]) -> str:
    """One line per leaf: key-fact score and F1 (knowledge) or win/tie/loss (skills), and the status."""
    lines = [f"{'benchmark':17} {'leaf':52} {'n':>3}  {'base':>14}  {'trained':>14}  status"]
    for row in rows:
        name = row["group"] if len(row["group"]) <= 52 else "..." + row["group"][-49:]
        if row["benchmark"] == "knowledge-branch":
            base, cand = (f"{100 * row[r]['key_facts']:5.1f} f1 {row[r]['f1']:.2f}" for r in ("base", "candidate"))
        else:
            base, cand = "", f"{row['win']}W {row['tie']}T {row['loss']}L"
        lines.append(f"{row['benchmark']:17} {name:52} {row['questions']:3d}  {base:>14}  {cand:>14}  {row['status']}")
    lines.append("(knowledge: key-fact score in points and token F1; skills: the judge's verdicts for the trained "
                 "model, each pair asked in both orders)")
    return "\n".join(lines)


def _write(report: EvalReport, options: EvaluateOptions, backends_ids: dict[str, str]) -> None:
    options_json = {k: (str(v) if isinstance(v, Path) else [str(p) for p in v] if k == "training_data" else v)
                    for k, v in asdict(options).items()}
    data = {"created": datetime.now(UTC).isoformat(timespec="seconds"), "models": backends_ids,
            "options": options_json, "rows": report.rows, "uplift": report.uplift, "training_data": report.coverage}
    write_text_atomic(report.run_dir / "answers.jsonl", "".join(json.dumps(r) + "\n" for r in report.answers))
    _chart(report.rows, report.chart)
    write_text_atomic(report.run_dir / "report.json", json.dumps(data, indent=2))


def _chart(rows: list[dict[str, Any]], target: Path) -> None:
    """Base vs trained per leaf: key-fact points for knowledge, win share (ties count half) for skills."""
    labels, base, cand = [], [], []
    for row in rows:
        parts = row["group"].split("/")
        name = parts[-2] if len(parts) > 1 and parts[-1].startswith("qna.") else parts[-1]  # the leaf's folder
        labels.append(f"{'knowledge' if row['benchmark'] == 'knowledge-branch' else 'skill'}: {name}")
        if row["benchmark"] == "knowledge-branch":
            base.append(100 * row["base"]["key_facts"])
            cand.append(100 * row["candidate"]["key_facts"])
        else:
            n = max(1, row["questions"])
            base.append(100 * (row["loss"] + row["tie"] / 2) / n)
            cand.append(100 * (row["win"] + row["tie"] / 2) / n)
    with chart(target, (max(6, 1.6 * len(rows) + 2), 4)) as axes:
        positions = range(len(rows))
        axes.bar([p - 0.2 for p in positions], base, 0.4, label="base")
        axes.bar([p + 0.2 for p in positions], cand, 0.4, label="trained")
        axes.set_xticks(list(positions), labels, rotation=20, ha="right")
        axes.set_ylabel("key-fact score / win share (points)")
        axes.set_ylim(0, 100)
        axes.legend()


# --- models ------------------------------------------------------------------------------------------------------


def _opener(settings: Settings, options: EvaluateOptions) -> Opener:
    """Backends for each role. A PEFT adapter is merged into its base as a Q8_0 GGUF and the base is written
    through the same path (`merged_file`, `compared_base`; judge train and tao run compare the same way), so the
    two differ only by the adapter and both answer on llama.cpp: 62 s -> 32 s on Halvane's 46 questions, 20 s
    once written (README). A base that is a Hugging Face folder has no GGUF path; then both run on transformers,
    with the same weights and numerics again."""
    from seedlab.backends import is_adapter, make_backend, resolve_model
    from seedlab.train import compared_base, merged_file

    base = options.base or settings.config.model.default
    candidate = Path(options.candidate)
    adapter = candidate if is_adapter(candidate) else None
    for reference in (options.candidate, options.judge):
        if reference and not is_adapter(reference):
            resolve_model(reference, settings.models_path)  # a wrong name fails now, not after minutes of answers
    on_gguf = resolve_model(base, settings.models_path).format == "gguf"

    def open_backend(role: str) -> Any:
        if role == "judge":
            return open_judge(settings, options.judge)
        if adapter is not None and on_gguf:
            model = merged_file(settings, adapter, base) if role == "candidate" else compared_base(settings, base)
            return make_backend(settings, str(model))
        if adapter is not None:
            return make_backend(settings, base, adapter=adapter if role == "candidate" else None, hf=True)
        return make_backend(settings, base if role == "base" else options.candidate)

    return open_backend
