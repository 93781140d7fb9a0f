"""Judge-free scores of an answer against a reference: token F1, and the share of the reference's key facts
that the answer states."""

from __future__ import annotations

from collections import Counter

from seedlab.text import STOPWORDS, names, numbers, words


def token_f1(answer: str, reference: str) -> float:
    """SQuAD-style F1 over lower-cased words without glue words (a common bag of words, not order)."""
    a = [w for w in words(answer) if w not in STOPWORDS]
    r = [w for w in words(reference) if w not in STOPWORDS]
    if not a or not r:
        return float(a == r)
    common = sum((Counter(a) & Counter(r)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(a), common / len(r)
    return 2 * precision * recall / (precision + recall)


def key_facts(reference: str, question: str = "") -> list[str]:
    """What an answer must state to be right: the reference's numbers and names that the question does not
    already give; failing those, its content words that are new to the question."""
    asked = set(words(question))
    found = [n for n in sorted(numbers(reference)) if n not in asked]
    found += [n for n in sorted(names(reference)) if n not in asked]
    if found:
        return found
    return sorted({w for w in words(reference) if w not in STOPWORDS and w not in asked and len(w) > 2})


def key_fact_score(answer: str, facts: list[str]) -> float:
    """Share of `facts` (each one or more words) whose words all appear in the answer, in order."""
    if not facts:
        return 0.0
    said = " " + " ".join(words(answer)) + " "
    return sum(1 for fact in facts if " " + " ".join(words(fact)) + " " in said) / len(facts)
