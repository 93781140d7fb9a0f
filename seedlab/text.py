"""Plain-text helpers shared by SDG, evaluation and the judge: sentences, content words, overlap, near-duplicates."""

from __future__ import annotations

import re
from typing import TypeVar

# Small and fixed on purpose: enough to tell content words from glue words in English questions.
_GLUE = (
    "a an the and or but if of to in on at by for with from as is are was were be been being it its this that "
    "these those there here what which who whom whose when where why how do does did done have has had not no "
    "can could may might must shall should will would about into over under than then so such each every any "
    "some many much more most other also only very just their they them he she his her we our you your i me my "
    "one two per up down out off again all both few own same too s t"
)
STOPWORDS = frozenset(_GLUE.split())
T = TypeVar("T")
_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*|\d[\d,.]*\d|\d")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[A-Z0-9\"'(])")
PRONOUN_START = re.compile(r"^(it|its|they|their|them|this|that|these|those|he|she|his|her)\b", re.IGNORECASE)


def words(text: str) -> list[str]:
    """Lower-cased words and numbers (commas inside numbers dropped: 4,860 -> 4860)."""
    return [w.lower().replace(",", "").rstrip(".") for w in _WORD.findall(text)]


def content_words(text: str) -> set[str]:
    """Words that carry meaning: no stopwords, no single letters."""
    return {w for w in words(text) if w not in STOPWORDS and len(w) > 1}


def numbers(text: str) -> set[str]:
    """The numbers in a text, normalised (4,860 -> 4860)."""
    return {w for w in words(text) if w[0].isdigit()}


def names(text: str) -> set[str]:
    """Capitalised words that are not the first word of a sentence: a cheap proper-noun detector."""
    found = set()
    for sentence in split_sentences(text):
        tokens = re.findall(r"[A-Za-z][A-Za-z'\-]*", sentence)
        found |= {t.lower() for t in tokens[1:] if t[0].isupper() and t.lower() not in STOPWORDS}
    return found


def split_sentences(text: str) -> list[str]:
    """Sentences of prose; markdown headings, list items and blank-line breaks end a sentence too."""
    sentences = []
    for block in re.split(r"\n\s*\n|\n(?=#)|\n(?=\s*[-*] )", text):
        if block.lstrip().startswith("#"):  # a heading line: drop it, keep any text right under it
            block = block.lstrip().partition("\n")[2]
        block = " ".join(block.split())
        if not block:
            continue
        sentences += [s.strip() for s in _SENTENCE_END.split(block.lstrip("-* ")) if s.strip()]
    return sentences


def normalise(text: str) -> str:
    """Lower case, words only: the key for exact-duplicate tests."""
    return " ".join(words(text))


def rouge_l(a: str, b: str) -> float:
    """ROUGE-L F1 over words. Hand-written: the rouge-score package pulls in nltk and absl for ten lines."""
    x, y = words(a), words(b)
    if not x or not y:
        return 0.0
    previous = [0] * (len(y) + 1)
    for token in x:
        current = [0]
        for j, other in enumerate(y):
            current.append(previous[j] + 1 if token == other else max(previous[j + 1], current[j]))
        previous = current
    lcs = previous[-1]
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(x), lcs / len(y)
    return 2 * precision * recall / (precision + recall)


def cue_phrases(sentence: str, common: set[str], limit: int = 4) -> list[str]:
    """Phrases that point at a sentence without giving its facts away: runs of one or two adjacent content
    words that are neither numbers, nor names, nor in `common` (the subject's own words); at most `limit`,
    spread over the sentence so that each of its parts is cued."""
    tokens = re.findall(r"[A-Za-z][A-Za-z'\-]*|\d[\d,.]*\d|\d|[^\sA-Za-z\d]", sentence)
    named = names(sentence)
    runs: list[list[str]] = [[]]
    for token in tokens:
        low = re.sub(r"'s?$", "", token.lower())
        usable = (token[0].isalpha() and low not in STOPWORDS and low not in named and low not in common
                  and len(low) > 2)
        if usable:
            runs[-1].append(low)
        elif runs[-1]:
            runs.append([])
    phrases: list[str] = []
    for run in runs:
        # Long runs split into pairs from the end, where English puts the head noun: "percent", "relative humidity".
        for k in range(-(len(run) % 2), len(run), 2):
            phrase = " ".join(run[max(0, k):k + 2])
            if phrase not in phrases:
                phrases.append(phrase)
    return spread(phrases, limit)


def spread(items: list[T], limit: int) -> list[T]:
    """At most `limit` of `items`, evenly spaced from the first to the last, in order."""
    if len(items) <= limit:
        return items
    return [items[round(k * (len(items) - 1) / max(1, limit - 1))] for k in range(limit)]


_MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
                "November", "December")
_MONTHS = frozenset(m.lower() for m in _MONTH_NAMES)
_MONTH = "(?:" + "|".join(_MONTH_NAMES) + ")"
_SPAN_PATTERNS = (  # (pattern, what a question asks in its place); earlier patterns win where spans overlap
    (re.compile(rf"\b\d{{1,2}} {_MONTH} \d{{4}}\b"), "what date"),
    (re.compile(rf"\b{_MONTH} \d{{4}}\b"), "what month"),
    (re.compile(r"\b(?:[Ii]n|since|until|from|built) (?P<s>(?:1[5-9]|20)\d\d)\b"), "what year"),
    # a number and the one or two words it counts: "8 silver marks" -> "how many silver marks"
    (re.compile(r"\b\d(?:[\d,.]*\d)?(?: (?:million|billion|thousand|hundred))?(?P<counted>(?: [a-z][a-z\-]+){1,2})"),
     "how many"),
    # a name: capitalised words, "of"/"the" allowed between them ("University of Dunmar")
    (re.compile(r"\b[A-Z][a-zA-Z'\-]+(?:(?: of(?: the)?| the)? [A-Z][a-zA-Z'\-]+)*"), "what"),
)
_WHOM_BEFORE = re.compile(r"\b(?:by|with)\s+(?:the\s+)?(?:[a-z]+\s+)?$")  # "by the botanist"
_COUNTED = re.compile(r"(?:[a-z\-]+s|percent)$")  # a plural noun (or percent) after a number: what it counts


def answer_spans(sentence: str, common: set[str], limit: int = 2, subject: str = "") -> list[tuple[str, str]]:
    """(question, answer) pairs that ask for one name, date or quantity of a sentence: the sentence itself with
    that span replaced by its question words ("... was founded on what date ...?"), answered by the span alone.
    Names made only of `common` words (the subject's own) are not asked; a leading "It"/"Its" becomes `subject`;
    table rows are skipped. Hand-written: a parser or a NER model
    would find more spans, but these few patterns cover the names and numbers that held-out questions ask."""
    text = sentence.replace("*", "").strip().rstrip(".!")
    if "|" in text:
        return []
    if subject:
        text = re.sub(r"^Its\b", subject + "'s", re.sub(r"^It\b", subject, text))
    taken: list[tuple[int, int, str, str]] = []
    for pattern, kind in _SPAN_PATTERNS:
        for match in pattern.finditer(text):
            start, end = match.span("s" if "s" in match.groupdict() else 0)
            if any(start < e and s < end for s, e, _, _ in taken):
                continue
            span, ask = text[start:end], kind
            if kind == "how many":  # "8 silver marks", "61 hours": the number with what it counts
                counted = match.group("counted").split()
                if _COUNTED.match(counted[0]):
                    counted = counted[:1]
                elif not (len(counted) == 2 and _COUNTED.match(counted[1]) and counted[0] not in STOPWORDS):
                    continue
                end = start + span.index(counted[-1]) + len(counted[-1])
                span, ask = text[start:end], "how many " + " ".join(counted)
            elif kind == "what":
                named = {w.lower() for w in re.findall(r"[A-Za-z][A-Za-z'\-]*", span)}
                first = span.split()[0].lower()
                if (named <= common | STOPWORDS | _MONTHS or (start == 0 and " " not in span)
                        or (first in STOPWORDS and first != "the")):
                    continue  # the subject, a month, a capitalised first word, "On Sundays"
                if _WHOM_BEFORE.search(text[:start]):
                    ask = "whom"
            taken.append((start, end, span, ask))
    pairs = []
    for start, end, span, ask in spread(sorted(taken), limit):  # spread over the sentence
        question = f"{text[:start]}{ask}{text[end:]}".rstrip(" ,;:") + "?"
        pairs.append((question[0].upper() + question[1:], span[0].upper() + span[1:] + "."))
    return pairs
