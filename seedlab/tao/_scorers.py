"""TAO's scorers: rules and verifiers that turn (prompt, response) into a number, and their weighted sum.

A scorer that raises, or returns something that is not a number, is recorded as failed for that response and
left out of its combined score; it never stops the run."""

from __future__ import annotations

import ast
import importlib
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seedlab.errors import SeedlabError

ScoreFn = Callable[[str, str], Any]  # (prompt, response) -> a number
_FENCE = re.compile(r"```[a-zA-Z]*\n?(.*?)```", re.DOTALL)


@dataclass(frozen=True)
class Scorer:
    name: str
    fn: ScoreFn
    weight: float = 1.0


def json_objects(text: str) -> list[Any]:
    """Every JSON value that starts at a "{" or "[" of the text (the whole text first, when it parses)."""
    decoder = json.JSONDecoder()
    found = []
    for match in re.finditer(r"[\[{]", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        found.append(value)
    return found


def valid_json(_prompt: str, response: str) -> float:
    """1 when the whole response (a code fence around it allowed) is JSON, 0.5 when it holds JSON, else 0."""
    body = _unfenced(response)
    try:
        json.loads(body)
        return 1.0
    except ValueError:
        return 0.5 if json_objects(response) else 0.0


def schema_scorer(schema_file: Path) -> ScoreFn:
    """1 when the response is JSON that validates against the schema, 0.5 when it holds such a value, else 0."""
    import jsonschema

    try:
        schema = json.loads(schema_file.read_text(encoding="utf-8"))
        validator = jsonschema.Draft202012Validator(schema)
    except (OSError, ValueError, jsonschema.SchemaError) as exc:
        raise SeedlabError(f"{schema_file}: not a usable JSON schema ({exc})") from exc

    def score(_prompt: str, response: str) -> float:
        try:
            whole = json.loads(_unfenced(response))
            if validator.is_valid(whole):
                return 1.0
        except ValueError:
            pass
        return 0.5 if any(validator.is_valid(v) for v in json_objects(response)) else 0.0

    return score


def python_parses(_prompt: str, response: str) -> float:
    """1 when the response's code (its first fenced block, else all of it) parses as Python, else 0."""
    blocks = _FENCE.findall(response)
    try:
        ast.parse(blocks[0] if blocks else response)
        return 1.0
    except (SyntaxError, ValueError):
        return 0.0


def sql_parses(_prompt: str, response: str) -> float:
    """1 when the response's SQL (its first fenced block, else all of it) parses, else 0."""
    import sqlglot
    from sqlglot.errors import ParseError, TokenError

    blocks = _FENCE.findall(response)
    text = (blocks[0] if blocks else response).strip()
    if not text:
        return 0.0
    try:
        statements = sqlglot.parse(text)
    except (ParseError, TokenError):
        return 0.0
    return 1.0 if statements and all(s is not None for s in statements) else 0.0


def _unfenced(text: str) -> str:
    stripped = text.strip()
    whole = re.fullmatch(r"```[a-zA-Z]*\n?(.*?)```", stripped, re.DOTALL)
    return whole.group(1).strip() if whole else stripped


BUILTIN: dict[str, ScoreFn] = {"json": valid_json, "python": python_parses, "sql": sql_parses}


def load_scorer(spec: str) -> Scorer:
    """`NAME[=WEIGHT]`: a built-in verifier (json, python, sql), `schema:FILE` (JSON schema), or
    `module:function` (a Python function taking the prompt and the response and returning a number)."""
    name, weight = spec, 1.0
    if "=" in spec:
        name, _, raw = spec.rpartition("=")
        try:
            weight = float(raw)
        except ValueError as exc:
            raise SeedlabError(f"--scorer {spec}: the weight after '=' must be a number") from exc
    if name in BUILTIN:
        return Scorer(name, BUILTIN[name], weight)
    if name.startswith("schema:"):
        return Scorer(name, schema_scorer(Path(name.removeprefix("schema:"))), weight)
    module_name, _, function = name.partition(":")
    if not module_name or not function:
        raise SeedlabError(f"--scorer {spec}: give json, python, sql, schema:FILE or module:function")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SeedlabError(f"--scorer {spec}: cannot import {module_name} ({exc}); is it on PYTHONPATH?") from exc
    fn = getattr(module, function, None)
    if not callable(fn):
        raise SeedlabError(f"--scorer {spec}: {module_name} has no function {function}")
    return Scorer(name, fn, weight)


@dataclass(frozen=True)
class Scored:
    """One response's scores: each scorer's number (None: it failed) and their weighted mean."""

    scores: dict[str, float | None]
    total: float | None
    errors: dict[str, str]


def score_response(scorers: Sequence[Scorer], prompt: str, response: str) -> Scored:
    """Every scorer on one response; the total weighs the scorers that gave a finite number."""
    scores: dict[str, float | None] = {}
    errors: dict[str, str] = {}
    for scorer in scorers:
        try:
            value = scorer.fn(prompt, response)
            if not isinstance(value, int | float) or not math.isfinite(value):  # bools count as 0 and 1
                raise ValueError(f"returned {value!r}, not a finite number")
            scores[scorer.name] = float(value)
        except Exception as exc:  # a user's scorer may raise anything; it is recorded, never fatal
            scores[scorer.name] = None
            errors[scorer.name] = f"{type(exc).__name__}: {exc}"
    weights = sum(s.weight for s in scorers if scores[s.name] is not None)
    total = (sum(s.weight * (scores[s.name] or 0.0) for s in scorers if scores[s.name] is not None) / weights
             if weights else None)
    return Scored(scores, total, errors)
