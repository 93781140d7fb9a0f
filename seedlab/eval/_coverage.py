"""Held-out questions against the training data: was the fact each one asks in the data a model trained on, how
many samples stated it, and does the question itself appear word for word in the data (a leak that inflates the
score). A miss then reads as "never asked" (no sample stated the fact) or "asked but not learned"."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seedlab.text import words

LEARNED, NOT_LEARNED, NEVER_ASKED = "learned", "asked but not learned", "never asked"


@dataclass(frozen=True)
class TrainingText:
    """Each training sample's user turns and assistant turns as lower-cased words joined by single spaces."""

    files: tuple[str, ...]
    asked: tuple[str, ...]  # per sample: its user turns
    said: tuple[str, ...]  # per sample: its assistant turns

    @classmethod
    def read(cls, files: list[Path]) -> TrainingText:
        """Every readable {"messages": [...]} line of the files; other lines are skipped (training skips them too)."""
        asked: list[str] = []
        said: list[str] = []
        for path in files:
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    messages = json.loads(line).get("messages")
                except (ValueError, AttributeError, RecursionError):
                    continue
                if not isinstance(messages, list):
                    continue
                turns = [t for t in messages if isinstance(t, dict) and isinstance(t.get("content"), str)]
                # each turn's words padded by spaces: joined turns never match across a boundary
                asked.append("".join(_flat(t["content"]) for t in turns if t.get("role") == "user"))
                said.append("".join(_flat(t["content"]) for t in turns if t.get("role") == "assistant"))
        return cls(tuple(str(f) for f in files), tuple(asked), tuple(said))

    @property
    def samples(self) -> int:
        return len(self.said)


def _flat(text: str) -> str:
    return " " + " ".join(words(text)) + " "


def coverage(question: str, facts: list[str], text: TrainingText) -> dict[str, Any]:
    """How many samples' answers state every one of the question's key facts, and whether the question appears
    word for word in a user turn."""
    wanted = [_flat(f) for f in facts if words(f)]
    covered = sum(1 for said in text.said if wanted and all(f in said for f in wanted))
    asked = _flat(question)
    return {"covered": covered, "verbatim": bool(words(question)) and any(asked in user for user in text.asked)}


def diagnose(records: list[dict[str, Any]], text: TrainingText) -> dict[str, Any] | None:
    """Mark each held-out knowledge record with its coverage and outcome (in place); the summary: counts per
    outcome, the leaked questions, and the uplift without them."""
    held = [r for r in records if r.get("held_out")]
    if not held:
        return None
    for record in held:
        found = coverage(record["question"], record["key_facts"], text)
        found["outcome"] = (LEARNED if record["candidate"]["key_facts"] >= 1.0
                            else NOT_LEARNED if found["covered"] else NEVER_ASKED)
        record["training"] = found
    counts = {o: sum(1 for r in held if r["training"]["outcome"] == o) for o in (LEARNED, NOT_LEARNED, NEVER_ASKED)}
    leaked = [r["question"] for r in held if r["training"]["verbatim"]]
    clean = [r for r in held if not r["training"]["verbatim"]]
    without = None
    if leaked and clean:
        base = 100 * sum(r["base"]["key_facts"] for r in clean) / len(clean)
        trained = 100 * sum(r["candidate"]["key_facts"] for r in clean) / len(clean)
        without = {"base": round(base, 1), "candidate": round(trained, 1), "points": round(trained - base, 1),
                   "questions": len(clean)}
    return {"files": list(text.files), "samples": text.samples, "questions": len(held), "outcomes": counts,
            "verbatim": leaked, "uplift_without_verbatim": without}


def render(records: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    """Per held-out question: samples that state its fact, base and trained key-fact points, outcome; then totals
    and a warning for each question found word for word in the training data."""
    lines = [f"held-out questions against the training data ({summary['samples']} samples in "
             f"{', '.join(Path(f).name for f in summary['files'])}):",
             f"  {'samples':>7}  {'base':>5}  {'trained':>7}  {'outcome':21}  question"]
    for r in records:
        if "training" in r:
            question = r["question"] if len(r["question"]) <= 60 else r["question"][:57] + "..."
            lines.append(f"  {r['training']['covered']:7d}  {100 * r['base']['key_facts']:5.1f}  "
                         f"{100 * r['candidate']['key_facts']:7.1f}  {r['training']['outcome']:21}  {question}")
    lines.append("  " + ", ".join(f"{n} {o}" for o, n in summary["outcomes"].items())
                 + " (samples: training answers that state every key fact of the question)")
    for question in summary["verbatim"]:
        lines.append(f"warning: a held-out question appears word for word in the training data: {question!r}")
    without = summary["uplift_without_verbatim"]
    if without:
        lines.append(f"uplift without those questions: {without['points']:+.1f} points (base {without['base']:.1f} -> "
                     f"trained {without['candidate']:.1f}) on {without['questions']} held-out questions")
    return "\n".join(lines)
