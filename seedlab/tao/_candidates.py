"""TAO's candidates and preference pairs: N responses per prompt from the policy under varied strategies, scored,
then best against worst (or the best alone, for RFT)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from seedlab.backends import Backend, Request
from seedlab.judge.judging import Judge, as_judge
from seedlab.tao._scorers import Scorer, score_response


@dataclass(frozen=True)
class Strategy:
    name: str
    system: str | None  # added before the prompt while sampling; the tuned model later sees the prompt alone
    temperature: float


STRATEGIES = [
    Strategy("plain", None, 0.7),
    Strategy("careful", "Follow the request exactly: give only what it asks for, in the form it asks for.", 0.7),
    Strategy("step-by-step", "Think step by step in a few short lines. Then write 'Answer:' and the final answer "
             "alone, in the form the request asks for.", 0.7),
    Strategy("plain-cool", None, 0.3),
    Strategy("plain-hot", None, 1.0),
]
ANSWER_MARK = "Answer:"


def split_samples(samples: int, strategies: Sequence[Strategy] = STRATEGIES) -> list[tuple[Strategy, int]]:
    """`samples` shared out over the strategies in order, so every strategy runs once there are enough."""
    base, extra = divmod(samples, len(strategies))
    return [(s, base + (k < extra)) for k, s in enumerate(strategies) if base + (k < extra) > 0]


def final_answer(strategy: Strategy, text: str) -> str:
    """What a strategy's reply says as the response: after the last 'Answer:' for step-by-step, else all of it."""
    if strategy.name == "step-by-step" and ANSWER_MARK in text:
        return text.rsplit(ANSWER_MARK, 1)[1].strip()
    return text.strip()


def candidate_requests(prompt: str, samples: int, max_tokens: int, seed: int) -> list[tuple[Strategy, Request]]:
    requests = []
    for k, (strategy, count) in enumerate(split_samples(samples)):
        messages = ([{"role": "system", "content": strategy.system}] if strategy.system else []) + [
            {"role": "user", "content": prompt}]
        requests.append((strategy, Request(messages=messages, n=count, temperature=strategy.temperature,
                                           max_tokens=max_tokens, seed=seed + 100 * k)))
    return requests


def sample_candidates(policy: Backend, prompts: Sequence[str], samples: int, max_tokens: int,
                      seed: int = 0) -> list[list[dict[str, Any]]]:
    """For each prompt, `samples` candidates {response, strategy, tokens}, the strategies spread evenly."""
    plans = [candidate_requests(p, samples, max_tokens, seed + 7919 * i) for i, p in enumerate(prompts)]
    flat = [request for plan in plans for _, request in plan]
    results = iter(policy.complete(flat) if flat else [])
    out = []
    for plan in plans:
        mine = []
        for strategy, _request in plan:
            result = next(results)
            per = result.completion_tokens / max(1, len(result.texts))
            mine += [{"response": final_answer(strategy, t), "strategy": strategy.name, "tokens": round(per, 1)}
                     for t in result.texts]
        out.append(mine)
    return out


def judge_ratings(judge: Judge | Backend, items: Sequence[tuple[str, str]],
                  max_tokens: int = 64) -> list[float | None]:
    """The judge's pointwise 1-3 rating of each (prompt, response), as 0, 0.5 or 1; None when unparseable."""
    return [None if r is None else (r - 1) / 2 for r in as_judge(judge).rate(items, max_tokens)]


def score_all(scorers: Sequence[Scorer], judge: Judge | Backend | None, judge_weight: float,
              items: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """Scores of each (prompt, response): every rule scorer, the judge's rating when a judge is given, and their
    weighted mean (`total`, None when every scorer failed)."""
    ratings = judge_ratings(judge, items) if judge is not None else [None] * len(items)
    out = []
    for (prompt, response), rating in zip(items, ratings, strict=True):
        scored = score_response(scorers, prompt, response)
        scores, errors = dict(scored.scores), dict(scored.errors)
        weights = [(s.weight, scores[s.name]) for s in scorers]
        if judge is not None:
            scores["judge"] = rating
            if rating is None:
                errors["judge"] = "unparseable rating"
            weights.append((judge_weight, rating))
        counted = [(w, v) for w, v in weights if v is not None]
        total = sum(w * v for w, v in counted) / sum(w for w, _ in counted) if counted and sum(
            w for w, _ in counted) else None
        out.append({"scores": scores, "total": total, "errors": errors})
    return out


def build_pairs(prompt: str, candidates: Sequence[dict[str, Any]], margin: float) -> dict[str, Any] | None:
    """Best against worst by total score, when they differ by at least `margin`; among equal scores the shorter
    response counts as better (inference cost must not grow). None: no pair (all failed, or a tie)."""
    scored = [c for c in candidates if c.get("total") is not None]
    if len(scored) < 2:
        return None
    ranked = sorted(scored, key=lambda c: (-c["total"], len(c["response"])))
    best, worst = ranked[0], ranked[-1]
    if best["total"] - worst["total"] < margin:
        return None
    return {"prompt": prompt, "chosen": best["response"], "rejected": worst["response"],
            "chosen_score": best["total"], "rejected_score": worst["total"]}
