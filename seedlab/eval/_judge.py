"""Judge prompts and verdicts: pairwise "[[A]]"/"[[B]]" comparisons asked in both orders, and a 1-3 rating
of an answer against a reference."""

from __future__ import annotations

import re
from collections.abc import Sequence

from seedlab.backends import Backend, Message, Request

PAIR_SYSTEM = (
    "Compare two answers to the request. In a short evaluation, note the errors of each and whether it does what "
    "was asked; ignore position and length. Then give the verdict: [[A]] if answer A is better, [[B]] if answer B "
    'is better. Reply in JSON: {"evaluation": "...", "verdict": "[[A]]"}.'
)  # short: every token of it is read again for each of the thousands of verdicts a judge run samples
EVALUATION_CHARS = 60  # keeps a verdict to about 25 tokens: a small judge's long evaluations add cost, not sense
# The verdict's fixed form inside a JSON reply; llama.cpp and servers that take a schema constrain decoding to it,
# so even a judge that never learnt the form answers in it. The parser still reads any reply: both or neither
# verdict is unparseable.
PAIR_SCHEMA = {"type": "object", "properties": {
    "evaluation": {"type": "string", "maxLength": EVALUATION_CHARS},
    "verdict": {"type": "string", "enum": ["[[A]]", "[[B]]"]}}, "required": ["evaluation", "verdict"]}
PAIR_USER = "Request:\n{prompt}\n\n[Answer A]\n{a}\n[End of answer A]\n\n[Answer B]\n{b}\n[End of answer B]"
REFERENCE_SYSTEM = (
    "You grade an answer against a reference answer. Rating 1: it contradicts the reference or misses its "
    "point. Rating 2: partly right. Rating 3: it states what the reference states. Reply in JSON: "
    '{"reason": "...", "rating": "[[1]]"}, with [[1]], [[2]] or [[3]].'
)
RATING_SCHEMA = {"type": "object", "properties": {
    "reason": {"type": "string", "maxLength": EVALUATION_CHARS},
    "rating": {"type": "string", "enum": ["[[1]]", "[[2]]", "[[3]]"]}}, "required": ["reason", "rating"]}
REFERENCE_USER = "Question: {question}\nReference answer: {reference}\nAnswer to grade: {answer}"
_VERDICT = re.compile(r"\[\[([AB])\]\]")
_RATING = re.compile(r"\[\[([123])\]\]")


def pair_messages(prompt: str, a: str, b: str) -> list[Message]:
    """The pairwise judge prompt with `a` shown first."""
    return [{"role": "system", "content": PAIR_SYSTEM},
            {"role": "user", "content": PAIR_USER.format(prompt=prompt, a=a, b=b)}]


def pair_request(prompt: str, a: str, b: str, temperature: float = 0.0, max_tokens: int = 64, n: int = 1,
                 seed: int = 0) -> Request:
    """The pairwise verdict request, constrained to PAIR_SCHEMA."""
    return Request(messages=pair_messages(prompt, a, b), n=n, temperature=temperature, max_tokens=max_tokens,
                   seed=seed, json_schema=PAIR_SCHEMA)


def parse_pair_verdict(text: str) -> str | None:
    """"A" or "B" from a judge reply; None when it names both or neither."""
    found = set(_VERDICT.findall(text))
    return found.pop() if len(found) == 1 else None


def cut_at_verdict(text: str) -> str:
    """A free-text reply up to and including its first verdict (what follows is not part of the judgement); a
    JSON reply stays whole."""
    found = _VERDICT.search(text)
    return text.strip() if not found or text.lstrip().startswith("{") else text[:found.end()].strip()


def parse_reference_rating(text: str) -> int | None:
    """1-3 from a reference-grading reply, None when it gives no rating or several different ones."""
    found = set(_RATING.findall(text))
    return int(found.pop()) if len(found) == 1 else None


def both_orders_outcome(first: str | None, second: str | None) -> str:
    """The candidate's result when it was answer A in `first` and answer B in `second`: win, loss or tie.

    A verdict that follows the position (A both times, or B both times) is a tie, and so is an unparseable one."""
    if first == "A" and second == "B":
        return "win"
    if first == "B" and second == "A":
        return "loss"
    return "tie"


def judge_pairs(judge: Backend, items: Sequence[tuple[str, str, str]], max_tokens: int = 64,
                seed: int = 0) -> list[tuple[str, list[str]]]:
    """For each (prompt, candidate, base): the outcome for the candidate and the two raw verdict replies."""
    requests = []
    for prompt, candidate, base in items:
        for a, b in ((candidate, base), (base, candidate)):
            requests.append(pair_request(prompt, a, b, max_tokens=max_tokens, seed=seed))
    results = judge.complete(requests) if requests else []
    out = []
    for k in range(len(items)):
        first, second = results[2 * k].texts[0], results[2 * k + 1].texts[0]
        out.append((both_orders_outcome(parse_pair_verdict(first), parse_pair_verdict(second)), [first, second]))
    return out


def rating_request(system: str, user: str, max_tokens: int = 64, seed: int = 0) -> Request:
    """A greedy 1-3 rating request, constrained to RATING_SCHEMA."""
    return Request(messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
                   temperature=0.0, max_tokens=max_tokens, seed=seed, json_schema=RATING_SCHEMA)


def rate_against_reference(judge: Backend, items: Sequence[tuple[str, str, str]], max_tokens: int = 64,
                           seed: int = 0) -> list[int | None]:
    """For each (question, reference, answer): the judge's 1-3 rating, None when unparseable."""
    requests = [rating_request(REFERENCE_SYSTEM, REFERENCE_USER.format(question=q, reference=r, answer=a), max_tokens,
                               seed) for q, r, a in items]
    results = judge.complete(requests) if requests else []
    return [parse_reference_rating(r.texts[0]) for r in results]
