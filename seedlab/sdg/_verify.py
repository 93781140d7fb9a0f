"""Checks that need no model: each returns None when the text passes, else a drop reason."""

from __future__ import annotations

import re

from seedlab.text import PRONOUN_START, content_words, names, normalise, numbers, rouge_l, words

_ARTIFACT = re.compile(r"^(request|question|answer|text|fact|rating)\s*:", re.IGNORECASE | re.MULTILINE)


def clean(text: str) -> str:
    """Strip whitespace and a leading label the model may have repeated ("Question: ...")."""
    text = text.strip()
    return re.sub(r"^(request|question|answer)\s*:\s*", "", text, flags=re.IGNORECASE).strip()


def check_request(text: str, seeds: list[str], max_words: int = 120) -> str | None:
    """A generated skill request: present, not too long, no template labels, not a copy of a seed.

    Pass no seeds for grounded skills, whose requests may repeat while their contexts differ."""
    if len(words(text)) < 3:
        return "empty_or_too_short"
    if len(words(text)) > max_words:
        return "too_long"
    if _ARTIFACT.search(text):
        return "template_artifact"
    if any(normalise(text) == normalise(seed) for seed in seeds):
        return "copies_seed"
    return None


def check_context(text: str, seeds: list[str]) -> str | None:
    """A generated grounding text: long enough, no labels, not a near-copy of a seed context."""
    if len(words(text)) < 12:
        return "empty_or_too_short"
    if _ARTIFACT.search(text):
        return "template_artifact"
    if any(rouge_l(text, seed) >= 0.8 for seed in seeds):
        return "copies_seed"
    return None


def check_answer(answer: str, question: str, finish_reason: str) -> str | None:
    """A generated answer: present, finished, not an echo of the request."""
    if len(words(answer)) < 1:
        return "empty_answer"
    if finish_reason == "length":
        return "answer_cut_off"
    if _ARTIFACT.search(answer):
        return "template_artifact"
    if normalise(answer) == normalise(question):
        return "answer_repeats_request"
    return None


# --- knowledge ---------------------------------------------------------------------------------------------------


def check_standalone(question: str, anchors: set[str]) -> str | None:
    """A knowledge question must read on its own: a question, no dangling pronoun, names its subject."""
    if not question.endswith("?") or len(words(question)) < 4:
        return "not_a_question"
    if len(words(question)) > 30:
        return "too_long"
    if PRONOUN_START.match(question):
        return "not_standalone"
    if anchors and not (content_words(question) & anchors):
        return "not_standalone"
    return None


def best_sentences(question: str, sentences: list[str]) -> tuple[set[int], int]:
    """Indices of the sentences sharing the most rare content words with the question, and that overlap."""
    asked = content_words(question)
    frequency: dict[str, int] = {}
    for sentence in sentences:
        for word in content_words(sentence):
            frequency[word] = frequency.get(word, 0) + 1
    scores = []
    for sentence in sentences:
        shared = asked & content_words(sentence)
        # Words found in few sentences identify a fact; words found everywhere ("library") do not.
        scores.append((sum(1 / frequency[w] for w in shared), len(shared)))
    top = max(score for score, _ in scores) if scores else 0
    best = {i for i, (score, _) in enumerate(scores) if score == top and top > 0}
    return best, max((scores[i][1] for i in best), default=0)


# Words a question may add to what its source says without making anything up.
_ASKING_WORDS = ("kind type name called happened happen year date day many much long number percent percentage "
                 "amount size part role purpose reason main known describe new held take place located cost costs")
_ASKING = frozenset(_ASKING_WORDS.split())


def _stem(word: str) -> str:
    """A crude English stem, enough to match "hold" with "holds" and "donate" with "donated"."""
    for suffix in ("ies", "ing", "ed", "es", "s", "e"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix) and not word.endswith("ss"):
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def check_relevant(question: str, fact_index: int, sentences: list[str], source: str, title: str = "") -> str | None:
    """The question must point at its own fact (its sentence is a best lexical match) and assume
    nothing the source does not say: one plain word of its own is a paraphrase ("gave" for "donated"),
    but a name or number the source lacks, or two new words, are a premise made up."""
    known = {_stem(w) for w in content_words(source) | content_words(title) | _ASKING}
    unsupported = {w for w in content_words(question) if _stem(w) not in known}
    if len(unsupported) > 1 or unsupported & (names(question) | numbers(question)):
        return "unsupported_premise"
    best, shared = best_sentences(question, sentences)
    if fact_index not in best or shared < 2:
        return "asks_another_fact"
    if rouge_l(question, sentences[fact_index]) >= 0.8:
        return "copies_fact"
    return None


_WHEN = re.compile(r"^(when|what year|in what year|in which year|what date|on what date)\b", re.IGNORECASE)
_COUNT = re.compile(r"^(how many|how much|how long|how far|how high|how old|what percentage|at what)\b", re.IGNORECASE)
_WHO = re.compile(r"^(who|whom|whose)\b", re.IGNORECASE)


_NEGATION = frozenset(("not", "no", "never", "none", "nothing", "neither", "nor", "without"))


def check_rewording(question: str, original: str) -> str | None:
    """A rewording of a knowledge question must differ from it and keep its numbers (a small teacher changes
    years)."""
    if normalise(question) == normalise(original):
        return "unchanged"
    if numbers(question) != numbers(original):
        return "changed_number"
    return None


def check_faithful(answer: str, question: str, source: str, strict: bool = False) -> str | None:
    """The answer states only what the source says, and gives the kind of thing the question asks for.

    `strict` allows no content word beyond the source and the question (for answers the teacher wrote)."""
    if len(words(answer)) < 1:
        return "empty_answer"
    if (set(words(answer)) & _NEGATION) - set(words(source)):
        return "adds_negation"
    if not numbers(answer) <= numbers(source):
        return "unsupported_number"
    if not names(answer) <= (names(source) | content_words(source)):
        return "unsupported_name"
    unsupported = content_words(answer) - content_words(source) - content_words(question)
    if len(unsupported) > (0 if strict else max(1, len(content_words(answer)) // 4)):
        return "unsupported_words"
    if (_WHEN.match(question) or _COUNT.match(question)) and not numbers(answer):
        return "does_not_answer"
    if _WHO.match(question) and not names(answer) and not (content_words(answer) & names(source)):
        return "does_not_answer"
    return None
