"""`seedlab judge evaluate`: how often a judge picks the known-better answer of labelled pairs, asked in both
orders, and how often its verdict follows the position or cannot be read."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from seedlab.backends import Backend
from seedlab.fsutil import read_jsonl_rows
from seedlab.judge.judging import GenerativeJudge, Judge, ScalarJudge, as_judge, pair_request, parse_pair_verdict


@dataclass(frozen=True)
class Pair:
    prompt: str
    chosen: str
    rejected: str


@dataclass(frozen=True)
class JudgeScore:
    pairs: int
    accuracy: float  # share of verdicts (two per pair) that pick the chosen answer
    consistent: float  # share of pairs whose two verdicts pick the same answer, whatever its position
    unparseable: float  # share of verdicts with neither or both of [[A]] and [[B]]


def load_pairs(path: Path) -> list[Pair]:
    """Labelled pairs: JSONL objects with `prompt`, `chosen` and `rejected` strings."""
    return [Pair(row["prompt"], row["chosen"], row["rejected"])
            for _, row in read_jsonl_rows(path, ("prompt", "chosen", "rejected"), "pairs")]


def evaluate_judge(judge: Judge | Backend, pairs: Sequence[Pair], max_tokens: int = 64) -> JudgeScore:
    """Ask a generative judge about every pair twice, the chosen answer first and then second (greedy, so reruns
    agree); a scalar judge scores both answers once, so it cannot follow the position (consistent by construction)."""
    judge = as_judge(judge)
    if isinstance(judge, ScalarJudge):
        outcomes = [outcome for outcome, _ in judge.compare([(p.prompt, p.chosen, p.rejected) for p in pairs])]
        right = sum(o == "win" for o in outcomes) + 0.5 * sum(o == "tie" for o in outcomes)
        return JudgeScore(len(pairs), right / max(1, len(pairs)), 1.0 if pairs else 0.0, 0.0)
    assert isinstance(judge, GenerativeJudge)
    requests = [pair_request(p.prompt, a, b, max_tokens=max_tokens)
                for p in pairs for a, b in ((p.chosen, p.rejected), (p.rejected, p.chosen))]
    verdicts = [parse_pair_verdict(r.texts[0]) for r in judge.backend.complete(requests)]
    correct = consistent = unparseable = 0
    for k in range(len(pairs)):
        first, second = verdicts[2 * k], verdicts[2 * k + 1]  # chosen was A, then B
        correct += (first == "A") + (second == "B")
        unparseable += (first is None) + (second is None)
        consistent += (first, second) in (("A", "B"), ("B", "A"))
    total = max(1, len(pairs))
    return JudgeScore(len(pairs), correct / (2 * total), consistent / total, unparseable / (2 * total))


def score_line(score: JudgeScore) -> str:
    """The line `judge evaluate` ends with."""
    return (f"accuracy: {100 * score.accuracy:.1f}% position-consistent: {100 * score.consistent:.1f}% "
            f"unparseable: {100 * score.unparseable:.1f}% ({score.pairs} pairs)")


def clear_of_chance(pairs: int, per_pair: int = 2) -> float:
    """The accuracy on `pairs` pairs (`per_pair` verdicts each: two for a generative judge asked in both orders,
    one for a scalar judge's comparison) above which a judge clearly beats one that guesses or always names the
    same position (50 %): the one-sided 5 % level of the binomial, by its normal approximation."""
    return 0.5 + 1.645 * math.sqrt(0.25 / (per_pair * max(1, pairs)))


def chance_line(accuracy: float, pairs: int, per_pair: int = 2) -> str:
    """Whether an accuracy is clear of chance, so that 50 % from a judge naming one position reads as such."""
    bound = clear_of_chance(pairs, per_pair)
    verdict = "clear of" if accuracy > bound else "not clear of"
    return (f"{verdict} chance: on {pairs} pairs that takes more than {100 * bound:.1f}% (a judge that always names "
            f"one position scores 50%)")
