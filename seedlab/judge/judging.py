"""What every judging step shares: the judge prompts and output schemas, verdict and rating parsing, and the policy
for what a judge reference may be. SDG, `model evaluate`, `judge train` and TAO all judge through this module.

A judge answers two questions: which of two answers to a request is better, and a 1-3 rating of one answer. A
generative judge writes verdicts ("[[A]]"/"[[B]]", asked in both orders) and JSON ratings; SDG also asks it a 0/1
verdict on a generated request. A scalar judge (a reward model, or the likelihood judge) scores each answer once."""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from seedlab.backends import (
    Backend,
    Message,
    Request,
    file_sha256,
    is_adapter,
    make_backend,
    model_identity,
    resolve_model,
)
from seedlab.config import Settings

EVALUATION_CHARS = 60  # keeps a verdict to about 25 tokens: a small judge's long evaluations add cost, not sense

# --- pairwise verdicts ---------------------------------------------------------------------------------------------

PAIR_SYSTEM = (
    "Compare two answers to the request. In a short evaluation, note the errors of each and whether it does what "
    "was asked; ignore position and length. Then give the verdict: [[A]] if answer A is better, [[B]] if answer B "
    'is better. Reply in JSON: {"evaluation": "...", "verdict": "[[A]]"}.'
)  # short: every token of it is read again for each of the thousands of verdicts a judge run samples
# The verdict's fixed form inside a JSON reply; llama.cpp and servers that take a schema constrain decoding to it,
# so even a judge that never learnt the form answers in it. The parser still reads any reply: both or neither
# verdict is unparseable.
PAIR_SCHEMA = {"type": "object", "properties": {
    "evaluation": {"type": "string", "maxLength": EVALUATION_CHARS},
    "verdict": {"type": "string", "enum": ["[[A]]", "[[B]]"]}}, "required": ["evaluation", "verdict"]}
PAIR_USER = "Request:\n{prompt}\n\n[Answer A]\n{a}\n[End of answer A]\n\n[Answer B]\n{b}\n[End of answer B]"
_VERDICT = re.compile(r"\[\[([AB])\]\]")


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
    """"A" or "B" from a judge reply: a JSON reply's `verdict` (its evaluation may quote [[A]] or [[B]] too), or
    the one verdict a free-text reply names; None when a free-text reply names both or neither."""
    try:
        data: Any = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        found = set(_VERDICT.findall(str(data.get("verdict", ""))))
    else:
        found = set(_VERDICT.findall(text))
    return found.pop() if len(found) == 1 else None


def cut_at_verdict(text: str) -> str:
    """A free-text reply up to and including its first verdict (what follows is not part of the judgement); a
    JSON reply stays whole."""
    found = _VERDICT.search(text)
    return text.strip() if not found or text.lstrip().startswith("{") else text[:found.end()].strip()


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


# --- 1-3 ratings ----------------------------------------------------------------------------------------------------

# The one rating form every step asks for: a short reason first (the judge says why before it rates), then 1-3.
RATING_SCHEMA = {"type": "object", "properties": {
    "reason": {"type": "string", "maxLength": EVALUATION_CHARS},
    "rating": {"type": "integer", "enum": [1, 2, 3]}}, "required": ["reason", "rating"]}
RATING_REPLY = 'Reply in JSON: {"reason": "...", "rating": 1}, with rating 1, 2 or 3.'
REFERENCE_SYSTEM = (
    "You grade an answer against a reference answer. Rating 1: it contradicts the reference or misses its "
    "point. Rating 2: partly right. Rating 3: it states what the reference states. " + RATING_REPLY
)
REFERENCE_USER = "Question: {question}\nReference answer: {reference}\nAnswer to grade: {answer}"
_RATING = re.compile(r"\[\[([123])\]\]")


def rating_request(system: str, user: str, max_tokens: int = 64, seed: int = 0, n: int = 1,
                   temperature: float = 0.0) -> Request:
    """A 1-3 rating request (greedy unless a temperature is given), constrained to RATING_SCHEMA."""
    return Request(messages=[{"role": "system", "content": system}, {"role": "user", "content": user}], n=n,
                   temperature=temperature, max_tokens=max_tokens, seed=seed, json_schema=RATING_SCHEMA)


def parse_rating(text: str) -> tuple[int, str] | None:
    """(rating 1-3, reason) from a JSON reply, or from a free-text reply naming one of [[1]], [[2]], [[3]] (a
    server that ignores the schema); None when there is no such rating or several different ones."""
    try:
        data: Any = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        rating = data.get("rating")
        valid = type(rating) is int and rating in (1, 2, 3)
        return (int(rating), str(data.get("reason", "")).strip()) if valid else None  # type: ignore[arg-type]
    found = set(_RATING.findall(text))
    return (int(found.pop()), text.strip()) if len(found) == 1 else None


def rate_against_reference(judge: Backend, items: Sequence[tuple[str, str, str]], max_tokens: int = 64,
                           seed: int = 0) -> list[int | None]:
    """For each (question, reference, answer): the judge's 1-3 rating, None when unparseable."""
    requests = [rating_request(REFERENCE_SYSTEM, REFERENCE_USER.format(question=q, reference=r, answer=a), max_tokens,
                               seed) for q, r, a in items]
    results = judge.complete(requests) if requests else []
    return [None if (parsed := parse_rating(r.texts[0])) is None else parsed[0] for r in results]


def median_rating(parsed: Sequence[tuple[int, str] | None]) -> tuple[int, str] | None:
    """The median rating of several judge samples, with the reason of a sample that gave it."""
    valid = [p for p in parsed if p is not None]
    if not valid:
        return None
    middle = int(statistics.median_low(r for r, _ in valid))
    return middle, next(reason for rating, reason in valid if rating == middle)


# --- 0/1 verdicts on a generated request (SDG's question judge) ----------------------------------------------------

VERDICT_SCHEMA = {"type": "object", "properties": {"verdict": {"type": "integer", "enum": [0, 1]}},
                  "required": ["verdict"]}


def parse_verdict(text: str) -> int | None:
    """0 or 1 from the question judge's JSON, None when unparseable."""
    try:
        value = json.loads(text)["verdict"]
    except (ValueError, KeyError, TypeError):
        return None
    return value if value in (0, 1) else None


def vote(values: Sequence[Any]) -> Any:
    """The median of the parseable votes (the middle one of three; of two that disagree, the lower), None when
    none parsed."""
    valid = sorted(v for v in values if v is not None)
    return valid[(len(valid) - 1) // 2] if valid else None


# --- the judge kinds -----------------------------------------------------------------------------------------------

POINT_SYSTEM = (
    "You rate a response to a request. Rating 1: it ignores the request or is wrong. Rating 2: it partly does what "
    "was asked. Rating 3: it does exactly what was asked, correctly. " + RATING_REPLY
)
Outcome = tuple[str, list[str]]  # win | tie | loss for the candidate, and the raw replies or scores behind it


class Judge:
    """What every judging step asks a judge: which of two answers is better (`compare`, candidate against base),
    a 1-3 rating of one answer (`rate`), and a 1-3 grade against a reference answer (`grade`)."""

    kind = "generative"
    model_id = ""

    def compare(self, items: Sequence[tuple[str, str, str]], max_tokens: int = 64) -> list[Outcome]:
        raise NotImplementedError

    def rate(self, items: Sequence[tuple[str, str]], max_tokens: int = 64) -> list[int | None]:
        raise NotImplementedError

    def grade(self, items: Sequence[tuple[str, str, str]], max_tokens: int = 64) -> list[int | None]:
        raise NotImplementedError

    def close(self) -> None:
        """Free the model."""


class GenerativeJudge(Judge):
    """A chat model that writes its verdict: pairs are asked in both orders, ratings in JSON."""

    def __init__(self, backend: Backend) -> None:
        self.backend, self.model_id = backend, backend.model_id

    def compare(self, items: Sequence[tuple[str, str, str]], max_tokens: int = 64) -> list[Outcome]:
        return judge_pairs(self.backend, items, max_tokens)

    def rate(self, items: Sequence[tuple[str, str]], max_tokens: int = 64) -> list[int | None]:
        requests = [rating_request(POINT_SYSTEM, f"Request: {p}\n\nResponse: {r}", max_tokens) for p, r in items]
        return [None if (got := parse_rating(r.texts[0])) is None else got[0]
                for r in (self.backend.complete(requests) if requests else [])]

    def grade(self, items: Sequence[tuple[str, str, str]], max_tokens: int = 64) -> list[int | None]:
        return rate_against_reference(self.backend, items, max_tokens)

    def close(self) -> None:
        self.backend.close()


class ScalarJudge(Judge):
    """A judge that scores each (request, answer) with one number. A pair is compared by its two scores, so no
    position can be preferred; a rating cuts the score at two thresholds: 1 below `low`, 3 from `high` up."""

    low = 0.0
    high = 0.0

    def score(self, items: Sequence[tuple[str, str]]) -> list[float]:
        raise NotImplementedError

    def compare(self, items: Sequence[tuple[str, str, str]], max_tokens: int = 64) -> list[Outcome]:
        scores = self.score([(p, c) for p, c, _ in items] + [(p, b) for p, _, b in items])
        out = []
        for k in range(len(items)):
            mine, theirs = scores[k], scores[len(items) + k]
            outcome = "win" if mine > theirs + 1e-6 else "loss" if theirs > mine + 1e-6 else "tie"
            out.append((outcome, [f"{mine:.4f}", f"{theirs:.4f}"]))
        return out

    def rate(self, items: Sequence[tuple[str, str]], max_tokens: int = 64) -> list[int | None]:
        return [self.rating(value) for value in self.score(items)]

    def grade(self, items: Sequence[tuple[str, str, str]], max_tokens: int = 64) -> list[int | None]:
        return self.rate([(question, answer) for question, _reference, answer in items])  # no reference needed

    def rating(self, value: float) -> int:
        return 1 if value < self.low else 3 if value >= self.high else 2


def as_judge(judge: Judge | Backend) -> Judge:
    """A Judge as it is, a plain backend as a generative judge."""
    return judge if isinstance(judge, Judge) else GenerativeJudge(judge)


# --- which judge ----------------------------------------------------------------------------------------------------

LIKELIHOOD = "likelihood:"  # likelihood:MODEL, a judge that needs no training
REWARD_FILE = "judge.json"  # beside a reward model's adapter: its kind, backbone, thresholds and accuracy


def judge_kind(ref: str) -> str:
    """generative, reward or likelihood, by what the reference names."""
    if ref.startswith(LIKELIHOOD):
        return "likelihood"
    return "reward" if (Path(ref) / REWARD_FILE).is_file() else "generative"


def open_judge(settings: Settings, given: str | None = None, echo: Callable[[str], None] | None = None,
               open_model: Callable[[str], Backend] | None = None) -> Judge:
    """The judge a reference names: `likelihood:MODEL`; a reward model folder from `judge train --kind reward`
    (its judge.json); else a generative model (a registry name, .gguf or adapter folder; see judge_model),
    opened by `open_model` (default make_backend)."""
    ref = judge_ref(settings, given)
    kind = judge_kind(ref)
    if kind == "generative":
        model = judge_model(settings, ref, echo)
        return GenerativeJudge(open_model(model) if open_model else make_backend(settings, model))
    from seedlab.judge._scalar import LikelihoodJudge, RewardJudge

    if kind == "likelihood":
        return LikelihoodJudge(settings, ref.removeprefix(LIKELIHOOD) or settings.config.model.default)
    return RewardJudge(settings, Path(ref))


# --- which judge ----------------------------------------------------------------------------------------------------


def judge_ref(settings: Settings, given: str | None = None) -> str:
    """The judge every judging step uses: `given` (--judge), else eval.judge, else the SDG teacher."""
    return given or settings.config.eval.judge or settings.config.sdg.teacher


def judge_model(settings: Settings, given: str | None = None, echo: Callable[[str], None] | None = None) -> str:
    """The model file a judge reference runs as. Judges answer under constrained decoding on llama.cpp, so a PEFT
    adapter folder is merged into a q8_0 GGUF beside it (`merged_file`: once, and again when retrained) and that
    file judges."""
    ref = judge_ref(settings, given)
    if not is_adapter(ref):
        return ref
    adapter = Path(ref)
    from seedlab.train import merged_file

    return str(merged_file(settings, adapter, echo=echo))


def judge_identity(settings: Settings, given: str | None = None) -> dict[str, Any]:
    """A judge as it enters cache keys: the model's name and file hash, or a folder (adapter, reward model) and
    its weights' time."""
    ref = judge_ref(settings, given)
    kind = judge_kind(ref)
    if kind == "reward":
        weights = Path(ref) / "adapter" / "adapter_model.safetensors"
        return {"kind": kind, "folder": ref, "mtime": weights.stat().st_mtime if weights.exists() else None}
    if kind == "likelihood":  # scored on transformers, from the model's own file
        model = resolve_model(ref.removeprefix(LIKELIHOOD) or settings.config.model.default, settings.models_path)
        return {"kind": kind, "model": model.name, "sha256": file_sha256(model.path, settings.models_path)
                if model.format == "gguf" else None}
    if is_adapter(ref):
        weights = Path(ref) / "adapter_model.safetensors"
        return {"adapter": ref, "mtime": weights.stat().st_mtime if weights.exists() else None}
    return model_identity(settings, resolve_model(ref, settings.models_path))
