"""Samples -> tokens: the model's chat template, loss masks, and batches bucketed by length."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seedlab.errors import SeedlabError

IGNORE = -100  # label of tokens the loss skips


@dataclass
class Example:
    """One tokenised sample: ids, labels (IGNORE where no loss), and where it came from."""

    input_ids: list[int]
    labels: list[int]
    source: str


@dataclass
class DataReport:
    """What loading a file kept and dropped, with line numbers for the bad lines."""

    path: str
    kept: int = 0
    invalid: list[tuple[int, str]] = field(default_factory=list)  # (line number, why)
    too_long: int = 0


def load_samples(path: Path) -> tuple[list[dict[str, Any]], DataReport]:
    """Valid {"messages": [...], "metadata": {...}} lines of a JSONL file; bad lines are counted, not fatal."""
    if not path.is_file():
        raise SeedlabError(f"{path}: no such dataset file; give a `seedlab data generate` run or a .jsonl file")
    report = DataReport(str(path))
    samples = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SeedlabError(f"{path}: cannot read the dataset ({exc}); training data is UTF-8 JSONL") from exc
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            sample = json.loads(line)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than Python's stack
            report.invalid.append((number, "not JSON"))
            continue
        problem = _sample_problem(sample)
        if problem:
            report.invalid.append((number, problem))
            continue
        samples.append(sample)
    report.kept = len(samples)
    if not samples:
        first = f", first at line {report.invalid[0][0]}: {report.invalid[0][1]}" if report.invalid else ""
        raise SeedlabError(f"{path}: no valid samples ({len(report.invalid)} invalid lines{first})")
    return samples, report


def _sample_problem(sample: Any) -> str | None:
    if not isinstance(sample, dict) or not isinstance(sample.get("messages"), list) or not sample["messages"]:
        return "no messages list"
    for message in sample["messages"]:
        if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant"):
            return "a message without a system/user/assistant role"
        if not isinstance(message.get("content"), str):
            return "a message whose content is not text"
    if not any(m["role"] == "assistant" for m in sample["messages"]):
        return "no assistant message"
    return None


def encode(sample: dict[str, Any], tokenizer: Any) -> Example:
    """Token ids with labels on assistant turns only, or on every token when metadata.unmask is true."""
    messages = sample["messages"]
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = encoded["input_ids"]
    metadata = sample.get("metadata") or {}
    if metadata.get("unmask"):
        return Example(ids, list(ids), str(metadata.get("source", "")))
    # Character spans of each assistant turn (its content and end-of-turn marker), from rendered prefixes.
    spans = []
    for i, message in enumerate(messages):
        if message["role"] == "assistant":
            start = len(tokenizer.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True))
            end = len(tokenizer.apply_chat_template(messages[: i + 1], tokenize=False))
            spans.append((start, end))
    labels = [token if any(s <= begin < e for s, e in spans) else IGNORE
              for token, (begin, _) in zip(ids, encoded["offset_mapping"], strict=True)]
    return Example(ids, labels, str(metadata.get("source", "")))


def tokenize(samples: list[dict[str, Any]], tokenizer: Any, max_length: int, report: DataReport) -> list[Example]:
    """Encode every sample; those over `max_length` tokens are dropped and counted in the report."""
    examples = []
    for sample in samples:
        example = encode(sample, tokenizer)
        if len(example.input_ids) > max_length:
            report.too_long += 1
            continue
        if any(label != IGNORE for label in example.labels):
            examples.append(example)
    return examples


MAX_PADDING = 0.10  # a batch closes before padding would pass this share of its tokens


def length_batches(examples: list[Example], tokens_per_batch: int) -> list[list[int]]:
    """Indices grouped so each batch pads to its longest member within `tokens_per_batch` and wastes at most
    MAX_PADDING of its tokens on padding (sorted by length); the caller shuffles the order per epoch."""
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].input_ids))
    batches: list[list[int]] = []
    current: list[int] = []
    real = 0
    for index in order:
        longest = len(examples[index].input_ids)  # sorted: the newest member is the longest
        size = longest * (len(current) + 1)
        if current and (size > tokens_per_batch or 1 - (real + longest) / size > MAX_PADDING):
            batches.append(current)
            current, real = [], 0
        current.append(index)
        real += longest
    if current:
        batches.append(current)
    return batches


def padding_share(examples: list[Example], batches: list[list[int]]) -> float:
    """Padding tokens as a share of all tokens the batches hold."""
    real = sum(len(examples[i].input_ids) for batch in batches for i in batch)
    total = sum(max(len(examples[i].input_ids) for i in batch) * len(batch) for batch in batches)
    return 1 - real / total if total else 0.0


def epoch_order(batches: int, seed: int, epoch: int) -> list[int]:
    """The batch order of one epoch: shuffled, and the same for the same seed and epoch."""
    order = list(range(batches))
    random.Random(seed * 1000 + epoch).shuffle(order)
    return order


def collate(examples: list[Example], indices: list[int], pad_id: int) -> dict[str, Any]:
    """Right-padded tensors of one batch."""
    import torch

    longest = max(len(examples[i].input_ids) for i in indices)
    ids, labels, mask = [], [], []
    for i in indices:
        example = examples[i]
        pad = longest - len(example.input_ids)
        ids.append(example.input_ids + [pad_id] * pad)
        labels.append(example.labels + [IGNORE] * pad)
        mask.append([1] * len(example.input_ids) + [0] * pad)
    return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels), "attention_mask": torch.tensor(mask)}


def replay_mix(samples: list[dict[str, Any]], replay: list[dict[str, Any]], ratio: float,
               seed: int) -> list[dict[str, Any]]:
    """`samples` plus replay samples making up `ratio` of the result (drawn without repeats while they last)."""
    if not 0 <= ratio < 1:
        raise SeedlabError(f"--replay-ratio {ratio}: give a share from 0 up to (not including) 1")
    wanted = round(ratio / (1 - ratio) * len(samples))
    rng = random.Random(seed)
    drawn: list[dict[str, Any]] = []
    while replay and len(drawn) < wanted:
        drawn += rng.sample(replay, min(len(replay), wanted - len(drawn)))
    return samples + [{**s, "metadata": {**s.get("metadata", {}), "replay": True}} for s in drawn]
