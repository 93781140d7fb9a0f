"""Split knowledge documents into overlapping chunks by the teacher's tokens, and into facts (sentences)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from seedlab.text import PRONOUN_START, split_sentences

TokenCounter = Callable[[str], int]


@dataclass(frozen=True)
class Fact:
    """One sentence of a document, with the chunk it was first seen in (its context for checks)."""

    text: str
    chunk: str
    chunk_index: int
    path: str
    standalone: str  # the sentence, led by the one before it when it opens with a pronoun
    section: tuple[str, ...] = ()  # the headings above the sentence, outermost first
    subject: str = ""  # what the fact is about, for questions: see fact_subject


def approximate_tokens(text: str) -> int:
    """A fallback token count for backends without a tokenizer: about 1.3 tokens per word."""
    return max(1, round(len(text.split()) * 1.3))


def chunk_document(text: str, count_tokens: TokenCounter, max_tokens: int = 256, overlap: int = 48) -> list[str]:
    """Whole sentences packed into chunks of at most `max_tokens`; each chunk repeats about `overlap`
    tokens of sentences from the end of the one before (a sentence longer than a chunk stands alone)."""
    sentences = split_sentences(text)
    sizes = [count_tokens(s) for s in sentences]
    chunks: list[str] = []
    start = 0
    while start < len(sentences):
        end, total = start, 0
        while end < len(sentences) and (end == start or total + sizes[end] <= max_tokens):
            total += sizes[end]
            end += 1
        chunks.append(" ".join(sentences[start:end]))
        if end >= len(sentences):
            break
        back, kept = end, 0  # step back over whole sentences worth up to `overlap` tokens
        while back - 1 > start and kept + sizes[back - 1] <= overlap:
            back -= 1
            kept += sizes[back]
        start = back
    return chunks


def document_facts(path: str, text: str, count_tokens: TokenCounter, max_tokens: int = 256,
                   overlap: int = 48) -> tuple[list[str], list[Fact]]:
    """The chunks of one document and its facts, each fact listed once, with the first chunk holding it and the
    headings of the section it stands in."""
    chunks = chunk_document(text, count_tokens, max_tokens, overlap)
    headings = sentence_sections(text)
    seen: set[str] = set()
    facts = []
    for index, chunk in enumerate(chunks):
        sentences = split_sentences(chunk)
        for k, sentence in enumerate(sentences):
            if sentence not in seen and len(sentence.split()) >= 5:
                seen.add(sentence)
                lead = sentences[k - 1] + " " if k > 0 and PRONOUN_START.match(sentence) else ""
                facts.append(Fact(sentence, chunk, index, path, lead + sentence, headings.get(sentence, ())))
    return chunks, facts


_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def sentence_sections(text: str) -> dict[str, tuple[str, ...]]:
    """Each sentence of a Markdown text mapped to the headings above it (outermost first; first occurrence)."""
    stack: list[tuple[int, str]] = []
    body: list[str] = []
    out: dict[str, tuple[str, ...]] = {}

    def flush() -> None:
        for sentence in split_sentences("\n".join(body)):
            out.setdefault(sentence, tuple(h for _, h in stack))
        body.clear()

    for line in text.splitlines():
        match = _HEADING.match(line.strip())
        if match:
            flush()
            level = len(match.group(1))
            stack = [(lvl, h) for lvl, h in stack if lvl < level] + [(level, match.group(2))]
        else:
            body.append(line)
    flush()
    return out


def fact_subject(section: tuple[str, ...], names: set[str], fallback: str) -> str:
    """The innermost heading above a fact that names something (one of its words is a name the documents
    capitalise mid-sentence: "Kestrin Mill", not "Lending"), else `fallback` (the leaf's title): in a long
    document a fact is about its section's subject, not only the whole document's."""
    for heading in reversed(section):
        if any(word.lower() in names for word in re.findall(r"[A-Za-z][A-Za-z'\-]*", heading)):
            return heading
    return fallback


def document_title(text: str, fallback: str) -> str:
    """The first markdown heading, else the fallback (the leaf's domain)."""
    match = re.search(r"^#\s+(.+)$", text, flags=re.MULTILINE)
    return match.group(1).strip() if match else fallback
