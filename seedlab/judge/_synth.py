"""The self-taught evaluator's data: pairs whose better answer is known by construction, the judge's sampled
verdicts on them, and the verdict traces kept for training (correct ones, balanced between A and B)."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from seedlab.backends import Backend, Request
from seedlab.judge.judging import cut_at_verdict, pair_messages, pair_request, parse_pair_verdict
from seedlab.text import content_words, words

# The modified instruction x' is asked as a plain few-shot completion: a small chat model continues the pattern far
# more often than it follows an instruction to rewrite (on the held-out instructions, 34 of 64 usable at the first
# try against about 1 in 3 as a chat). Subjects here are kept apart from the shipped instructions.
MODIFY_HEAD = "Each request is followed by a different request of the same form on a neighbouring topic.\n\n"
MODIFY_SHOTS = [
    ("Give three tips for growing roses.", "Give three tips for getting rid of garden slugs."),
    ("Explain in two sentences how a kettle boils water.", "Explain in two sentences how a toaster browns bread."),
    ("Write a limerick about a lazy cat.", "Write a limerick about a noisy parrot."),
    ("What is the difference between a wolf and a fox?", "What is the difference between a lion and a tiger?"),
]
ANSWER_SYSTEM = "You are a helpful assistant. Answer briefly."
_PREFIX = re.compile(r"^(new request|request|rewritten request)\s*:\s*", re.IGNORECASE)


@dataclass(frozen=True)
class SynthPair:
    """An instruction, the response to it (chosen) and the response to its modified version (rejected)."""

    prompt: str
    chosen: str
    rejected: str
    modified: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def modify_request(instruction: str, seed: int) -> Request:
    shots = "".join(f"Request: {given}\nDifferent request: {new}\n\n" for given, new in MODIFY_SHOTS)
    return Request(prompt=f"{MODIFY_HEAD}{shots}Request: {instruction}\nDifferent request:", temperature=0.7,
                   max_tokens=40, stop=["\n"], seed=seed)


def clean_modified(text: str, instruction: str) -> str | None:
    """The first line of the teacher's reply, unquoted, when it is a different request of the same form: it
    starts with the instruction's first word (a small teacher often answers instead of rewriting), drops one of
    its content words and brings one of its own (a paraphrase asks the same). Else None."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return None
    line = _PREFIX.sub("", lines[0]).strip().strip('"').strip()
    if not 3 <= len(line.split()) <= 40 or line.split()[0].lower() != instruction.split()[0].lower():
        return None
    given, new = content_words(instruction), content_words(line)
    if not given - new or not new - given:
        return None
    return line


def answer_request(instruction: str, max_tokens: int) -> Request:
    return Request(messages=[{"role": "system", "content": ANSWER_SYSTEM}, {"role": "user", "content": instruction}],
                   temperature=0.0, max_tokens=max_tokens, seed=0)


MODIFY_TRIES = 3  # attempts at a usable x' per instruction, each with its own seed


def synthesize(teacher: Backend, instructions: Sequence[str], answer_tokens: int, seed: int = 0,
               chunk: int = 16) -> tuple[list[SynthPair], dict[str, int]]:
    """For each instruction x: the teacher's modified instruction x', then its responses y to x and y' to x'.

    Instructions without a usable x' after MODIFY_TRIES attempts, or whose two responses are empty or nearly
    the same, are dropped and counted."""
    pairs: list[SynthPair] = []
    dropped = {"modified": 0, "answers": 0}
    for start in range(0, len(instructions), chunk):
        part = list(instructions[start:start + chunk])
        modified: dict[int, str] = {}
        for attempt in range(MODIFY_TRIES):
            waiting = [k for k in range(len(part)) if k not in modified]
            if not waiting:
                break
            results = teacher.complete([modify_request(part[k], seed + start + k + 7919 * attempt) for k in waiting])
            for k, result in zip(waiting, results, strict=True):
                line = clean_modified(result.texts[0], part[k])
                if line is not None:
                    modified[k] = line
        dropped["modified"] += len(part) - len(modified)
        usable = [(part[k], modified[k]) for k in sorted(modified)]
        asks = [answer_request(q, answer_tokens) for x, m in usable for q in (x, m)]
        answers = [r.texts[0].strip() for r in teacher.complete(asks)] if asks else []
        for k, (x, m) in enumerate(usable):
            y, y_mod = answers[2 * k], answers[2 * k + 1]
            if not y or not y_mod or _overlap(y, y_mod) > 0.8:
                dropped["answers"] += 1
                continue
            pairs.append(SynthPair(x, y, y_mod, m))
    return pairs, dropped


def _overlap(a: str, b: str) -> float:
    """Shared share of the two texts' words (Jaccard): near 1 for responses that say the same."""
    first, second = set(words(a)), set(words(b))
    return len(first & second) / max(1, len(first | second))


@dataclass(frozen=True)
class Verdicts:
    """The judge's sampled replies on one pair: `first` with the chosen answer as A, `second` with it as B."""

    pair: SynthPair
    first: list[str]
    second: list[str]


def sample_verdicts(judge: Backend, pairs: Sequence[SynthPair], samples: int, temperature: float, max_tokens: int,
                    seed: int = 0) -> list[Verdicts]:
    """`samples` verdicts per pair, half with the chosen answer shown first and half with it second."""
    per_order = max(1, samples // 2)
    requests = [pair_request(p.prompt, a, b, temperature, max_tokens, per_order, seed + 1000 * k + 500 * order)
                for k, p in enumerate(pairs)
                for order, (a, b) in enumerate(((p.chosen, p.rejected), (p.rejected, p.chosen)))]
    results = judge.complete(requests) if requests else []
    return [Verdicts(p, results[2 * k].texts, results[2 * k + 1].texts) for k, p in enumerate(pairs)]


@dataclass(frozen=True)
class Trace:
    """One kept verdict: the pair as shown (answer A, answer B) and the judge's reply, which names `label`."""

    prompt: str
    a: str
    b: str
    text: str
    label: str  # "A" or "B": where the chosen answer stood

    def sample(self) -> dict[str, Any]:
        """A chat sample for the trainer: the pairwise prompt, and the reply as the assistant turn."""
        messages = pair_messages(self.prompt, self.a, self.b) + [{"role": "assistant", "content": self.text}]
        return {"messages": messages, "metadata": {"source": "judge_trace", "label": self.label}}


def correct_options(verdicts: Verdicts) -> dict[str, list[str]]:
    """Per position of the chosen answer, the replies whose verdict picks it ("A" in the first order, "B" in
    the second); malformed replies (both or neither verdict) never count."""
    return {"A": [cut_at_verdict(t) for t in verdicts.first if parse_pair_verdict(t) == "A"],
            "B": [cut_at_verdict(t) for t in verdicts.second if parse_pair_verdict(t) == "B"]}


def select_traces(all_verdicts: Sequence[Verdicts], seed: int = 0,
                  limit: int | None = None) -> tuple[list[Trace], dict[str, int]]:
    """One correct trace per pair, then as many "A is better" as "B is better" traces (at most `limit` in all).

    A pair with correct replies in both orders takes the position that is short so far; the larger side is then
    cut at random to the smaller one's size."""
    rng = random.Random(seed)
    fixed: list[tuple[Verdicts, str]] = []
    flexible: list[Verdicts] = []
    none = 0
    for v in all_verdicts:
        options = correct_options(v)
        labels = [label for label in ("A", "B") if options[label]]
        if not labels:
            none += 1
        elif len(labels) == 1:
            fixed.append((v, labels[0]))
        else:
            flexible.append(v)
    counts = {"A": sum(label == "A" for _, label in fixed), "B": sum(label == "B" for _, label in fixed)}
    rng.shuffle(flexible)
    for v in flexible:
        label = "A" if counts["A"] <= counts["B"] else "B"
        fixed.append((v, label))
        counts[label] += 1
    by_label: dict[str, list[Trace]] = {"A": [], "B": []}
    for v, label in fixed:
        p = v.pair
        a, b = (p.chosen, p.rejected) if label == "A" else (p.rejected, p.chosen)
        by_label[label].append(Trace(p.prompt, a, b, rng.choice(correct_options(v)[label]), label))
    size = min(len(by_label["A"]), len(by_label["B"]), (limit // 2) if limit else len(fixed))
    kept = rng.sample(by_label["A"], size) + rng.sample(by_label["B"], size)
    rng.shuffle(kept)
    stats = {"pairs": len(all_verdicts), "no_correct": none, "correct": len(fixed), "kept": len(kept),
             "dropped_to_balance": len(fixed) - len(kept)}  # or beyond the limit
    return kept, stats
