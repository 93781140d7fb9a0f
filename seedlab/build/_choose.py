"""Checkpoint choice on the contributed leaves: every candidate answers the leaves' seed and held-out questions,
knowledge scored by key facts and skills by the judge, and one stated rule picks the best of each phase."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from seedlab.backends import Backend
from seedlab.eval import Question, answer_questions, key_fact_score, user_turn
from seedlab.judge.judging import Judge

RULE = ("knowledge phase: the highest key-fact score on the knowledge leaves' seed questions; skills phase: the "
        "highest mean of that score and the judge's skill rating (so skills may not cost knowledge); held-out "
        "questions are reported, never used to choose; a tie goes to the later checkpoint")


def candidate_checkpoints(phase_dir: Path, count: int) -> list[Path]:
    """Up to `count` saved checkpoints of a phase, oldest first: the last one and evenly spaced earlier ones."""
    saved = sorted(p for p in phase_dir.glob("step-*") if (p / "position.json").is_file())
    if count <= 1 or len(saved) <= count:
        return saved[-max(1, count):] if count <= 1 else saved
    picks = {round(i * (len(saved) - 1) / (count - 1)) for i in range(count)}
    return [saved[i] for i in sorted(picks)]


def score_answers(questions: Sequence[Question], answers: Sequence[str],
                  ratings: dict[int, int | None]) -> dict[str, Any]:
    """Per-leaf and overall scores of one model's answers (0-1): knowledge seed and held-out key facts, skills as
    the judge's 1-3 rating mapped to 0-1; `ratings` maps a skill question's index to its rating."""
    leaves: dict[str, dict[str, list[float]]] = {}
    for k, (question, answer) in enumerate(zip(questions, answers, strict=True)):
        mine = leaves.setdefault(question.group, {})
        if question.facts:
            kind = "heldout" if question.held_out else "seed"
            mine.setdefault(kind, []).append(key_fact_score(answer, question.facts))
        elif ratings.get(k) is not None:
            mine.setdefault("skill", []).append((int(ratings[k] or 1) - 1) / 2)
    per_leaf = {leaf: {kind: _mean(values) or 0.0 for kind, values in kinds.items()}
                for leaf, kinds in leaves.items()}
    overall = {kind: _mean([scores[kind] for scores in per_leaf.values() if kind in scores])
               for kind in ("seed", "heldout", "skill")}
    return {"leaves": per_leaf, **{k: v for k, v in overall.items() if v is not None}}


def rate_skills(judge: Judge | None, questions: Sequence[Question], answers: Sequence[str]) -> dict[int, int | None]:
    """The judge's rating of each skill answer against its seed's answer, by question index."""
    skill = [k for k, q in enumerate(questions) if not q.facts]
    if judge is None or not skill:
        return {}
    ratings = judge.grade([(user_turn(questions[k]), questions[k].reference, answers[k]) for k in skill])
    return dict(zip(skill, ratings, strict=True))


def score_model(backend: Backend, judge: Judge | None, questions: Sequence[Question],
                max_tokens: int) -> tuple[dict[str, Any], list[str]]:
    """One model's scores on the questions, and its answers."""
    answers = answer_questions(backend, list(questions), max_tokens)
    return score_answers(questions, answers, rate_skills(judge, questions, answers)), answers


def choose(rows: Sequence[dict[str, Any]], phase: str) -> int:
    """The index of the candidate RULE picks among scored rows (oldest first)."""
    def value(row: dict[str, Any]) -> float:
        seed = row["scores"].get("seed", 0.0)
        if phase == "knowledge" or "skill" not in row["scores"]:
            return float(seed)
        return float((seed + row["scores"]["skill"]) / 2 if "seed" in row["scores"] else row["scores"]["skill"])

    best = 0
    for k, row in enumerate(rows):
        if value(row) >= value(rows[best]) - 1e-9:  # ties go to the later checkpoint
            best = k
    return best


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None
