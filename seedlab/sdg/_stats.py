"""Per-block counts (in, kept, dropped by reason), dedupe, and the table printed at the end of a run."""

from __future__ import annotations

from typing import Any

from seedlab.text import normalise, rouge_l

BLOCK_ORDER = ["contexts", "questions", "question_judge", "answers", "pair_judge", "standalone", "relevancy",
               "faithfulness", "dedupe"]
NEAR_DUPLICATE = 0.85  # ROUGE-L F1 of two user turns at or above this counts as the same sample


def block_stats(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{block: {"in": n, "kept": n, "dropped": {reason: n}}} from candidate records."""
    blocks: dict[str, dict[str, Any]] = {}

    def block(name: str) -> dict[str, Any]:
        return blocks.setdefault(name, {"in": 0, "kept": 0, "dropped": {}})

    for record in records:
        for name in record["passed"]:
            block(name)["in"] += 1
            block(name)["kept"] += 1
        if record["drop"]:
            name, reason = record["drop"]
            block(name)["in"] += 1
            block(name)["dropped"][reason] = block(name)["dropped"].get(reason, 0) + 1
    order = {name: i for i, name in enumerate(BLOCK_ORDER)}
    return dict(sorted(blocks.items(), key=lambda item: order.get(item[0], len(order))))


def dedupe(samples: list[dict[str, Any]], seen_texts: list[str]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Drop samples whose user turn repeats a seed or an earlier sample, exactly or nearly (ROUGE-L)."""
    exact = {normalise(t) for t in seen_texts}
    prior = list(seen_texts)
    kept: list[dict[str, Any]] = []
    dropped: dict[str, int] = {}
    for sample in samples:
        text = sample["messages"][0]["content"]
        key = normalise(text)
        reason = None
        if key in exact:
            reason = "exact_duplicate"
        elif any(rouge_l(text, other) >= NEAR_DUPLICATE for other in prior):
            reason = "near_duplicate"
        if reason:
            dropped[reason] = dropped.get(reason, 0) + 1
            continue
        exact.add(key)
        prior.append(text)
        kept.append(sample)
    return kept, {"in": len(samples), "kept": len(kept), "dropped": dropped}


def main_drop_reason(blocks: dict[str, dict[str, Any]]) -> str:
    """'block: reason (n)' for the most frequent drop, or 'no candidates' when nothing was generated."""
    best = max(((n, f"{name}: {reason}") for name, b in blocks.items() for reason, n in b["dropped"].items()),
               default=None)
    return f"{best[1]} ({best[0]})" if best else "no candidates were generated"


def render_table(stats: dict[str, Any]) -> Any:
    """A rich Table of every leaf's blocks."""
    from rich.table import Table

    table = Table(title="seedlab data generate", show_lines=False)
    for column in ("leaf", "block", "in", "kept", "dropped (reason: n)"):
        table.add_column(column, justify="right" if column in ("in", "kept") else "left")
    for leaf, info in stats["leaves"].items():
        first = True
        for name, b in info["blocks"].items():
            reasons = ", ".join(f"{r}: {n}" for r, n in sorted(b["dropped"].items(), key=lambda x: -x[1]))
            table.add_row(leaf if first else "", name, str(b["in"]), str(b["kept"]), reasons)
            first = False
        label = "reused" if info.get("reused") else "samples"
        table.add_row("" if not first else leaf, f"= {label}", "", str(info["samples"]), "", end_section=True)
    return table
