"""Unlabeled prompts for `judge train` and `tao run`: a JSONL file (also `seedlab model serve`'s prompt log)
or the seed questions of a taxonomy folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seedlab.errors import SeedlabError


def load_prompts(source: Path) -> list[str]:
    """Distinct prompts in file order. A folder is read as a taxonomy (every leaf's seed questions); a file as
    JSONL whose lines hold `prompt` (a string) or `messages` (a chat; its last user turn is the prompt)."""
    prompts = _taxonomy_questions(source) if source.is_dir() else _jsonl_prompts(source)
    distinct = list(dict.fromkeys(p.strip() for p in prompts if p.strip()))
    if not distinct:
        raise SeedlabError(f"{source}: no prompts found; give JSONL lines with \"prompt\" or \"messages\"")
    return distinct


def rotated(path: Path, number: int) -> Path:
    """The name of a prompt log's `number`-th older file (the server rotates its log: prompts.jsonl.1 is newest)."""
    return path.with_name(f"{path.name}.{number}")


def _jsonl_prompts(path: Path) -> list[str]:
    from seedlab.fsutil import read_jsonl_lines

    prompts = []
    for number, row in read_jsonl_lines(path, "prompts"):
        prompt = _prompt_of(row)
        if prompt is None:
            raise SeedlabError(f"{path}:{number}: needs a \"prompt\" string or \"messages\" with a user turn")
        prompts.append(prompt)
    return prompts


def _prompt_of(row: Any) -> str | None:
    if not isinstance(row, dict):
        return None
    if isinstance(row.get("prompt"), str):
        return str(row["prompt"])
    messages = row.get("messages")
    if isinstance(messages, list):
        users = [m.get("content") for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        if users and isinstance(users[-1], str):
            return users[-1]
    return None


def _taxonomy_questions(folder: Path) -> list[str]:
    from seedlab.taxonomy import find_leaves, read_yaml

    questions: list[str] = []
    for leaf in find_leaves(folder):
        parsed, problems = read_yaml(leaf, str(leaf.relative_to(folder)))
        if parsed is None or not isinstance(parsed.data, dict):
            first = problems[0]
            raise SeedlabError(f"{first.path}:{first.line}: {first.message}; fix it or leave the leaf out")
        for seed in parsed.data.get("seed_examples") or []:
            if not isinstance(seed, dict):
                continue
            if isinstance(seed.get("question"), str):
                questions.append(seed["question"])
            for pair in seed.get("questions_and_answers") or []:
                if isinstance(pair, dict) and isinstance(pair.get("question"), str):
                    questions.append(pair["question"])
    return questions
