"""The regression check: general questions (arithmetic, everyday facts, instructions, formats) answered by the
base and by the built model. Did general ability fall (key facts of the reference answers), and how far did the
answers drift (the base's own answers' per-token likelihood under each model; judge verdicts where one is set)?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seedlab.errors import SeedlabError
from seedlab.eval import key_fact_score, token_f1
from seedlab.fsutil import read_jsonl_rows


@dataclass(frozen=True)
class GeneralQuestion:
    kind: str
    question: str
    answer: str
    facts: tuple[str, ...]


@dataclass(frozen=True)
class Limits:
    max_accuracy_drop: float  # points
    max_nll_increase: float  # nats per token


def load_general(path: Path) -> list[GeneralQuestion]:
    """A general-questions file: JSONL objects with kind, question, answer and key_facts."""
    out = []
    for number, row in read_jsonl_rows(path, ("kind", "question", "answer"), "general questions"):
        facts = row.get("key_facts")
        if not (isinstance(facts, list) and facts and all(isinstance(f, str) for f in facts)):
            raise SeedlabError(f"{path}:{number}: \"key_facts\" must be a non-empty list of strings")
        out.append(GeneralQuestion(row["kind"], row["question"], row["answer"], tuple(facts)))
    return out


def regression_summary(questions: Sequence[GeneralQuestion], base: Sequence[str], built: Sequence[str],
                       base_logp: Sequence[float], built_logp: Sequence[float],
                       verdicts: Sequence[str] | None, limits: Limits) -> dict[str, Any]:
    """The check's figures: accuracy per kind (points) for both models, the drop, the base answers' mean
    log-likelihood per token under both (the increase in nats is the drift), how many answers changed, their
    token F1 to the base's, judge verdicts for the built model; `regressed` with its reasons past a limit."""
    rows = []
    for kind in dict.fromkeys(q.kind for q in questions):
        mine = [k for k, q in enumerate(questions) if q.kind == kind]
        rows.append({"kind": kind, "questions": len(mine),
                     "base": _points([key_fact_score(base[k], list(questions[k].facts)) for k in mine]),
                     "built": _points([key_fact_score(built[k], list(questions[k].facts)) for k in mine])})
    all_k = range(len(questions))
    accuracy = {role: _points([key_fact_score(answers[k], list(questions[k].facts)) for k in all_k])
                for role, answers in (("base", base), ("built", built))}
    nll_increase = round(sum(b - t for b, t in zip(base_logp, built_logp, strict=True)) / max(1, len(base_logp)), 4)
    summary: dict[str, Any] = {
        "questions": len(questions), "kinds": rows, "accuracy": accuracy,
        "accuracy_drop": round(accuracy["base"] - accuracy["built"], 1),
        "base_answer_logp": {"base": _mean(base_logp), "built": _mean(built_logp)}, "nll_increase": nll_increase,
        "changed_answers": sum(1 for a, b in zip(base, built, strict=True) if a.strip() != b.strip()),
        "answer_f1_to_base": _mean([token_f1(b, a) for a, b in zip(base, built, strict=True)]),
        "limits": {"max_accuracy_drop": limits.max_accuracy_drop, "max_nll_increase": limits.max_nll_increase}}
    if verdicts is not None:
        summary["judge"] = {o: list(verdicts).count(o) for o in ("win", "tie", "loss")}
    reasons = []
    if summary["accuracy_drop"] > limits.max_accuracy_drop:
        reasons.append(f"general accuracy fell {summary['accuracy_drop']:.1f} points (limit "
                       f"{limits.max_accuracy_drop:g})")
    if nll_increase > limits.max_nll_increase:
        reasons.append(f"the base's answers lost {nll_increase:.3f} nats per token of likelihood (limit "
                       f"{limits.max_nll_increase:g})")
    summary["regressed"], summary["reasons"] = bool(reasons), reasons
    return summary


def _points(values: list[float]) -> float:
    return round(100 * sum(values) / len(values), 1) if values else 0.0


def _mean(values: Sequence[float]) -> float:
    return round(sum(values) / len(values), 4) if values else 0.0
