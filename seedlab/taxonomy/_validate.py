"""Validate one qna.yaml the way InstructLab's checker does, plus the checks a schema cannot express."""

from __future__ import annotations

import functools
import re
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from seedlab.schemas import SCHEMA_VERSIONS, load_schema
from seedlab.taxonomy._yaml import Parsed, Problem, key_node, node_at, read_yaml

TOP_FOLDERS = {"compositional_skills": "skills", "foundational_skills": "skills", "knowledge": "knowledge"}
SCHEMA_FILE = {"skills": "compositional_skills.json", "knowledge": "knowledge.json"}
# InstructLab's documented limits; exceeding them is a warning, as in its own checker.
MAX_CONTEXT_WORDS = 500
MAX_QNA_WORDS = 250
MAX_LINE_CHARS = 120
# InstructLab lints with yamllint's relaxed preset, line-length off; duplicate keys and syntax errors
# we report ourselves (with the first key's line), so yamllint's copies are dropped.
YAMLLINT_CONFIG = "{extends: relaxed, rules: {line-length: disable, key-duplicates: disable}}"


def validate_file(path: Path, display: str | None = None, kind: str | None = None) -> list[Problem]:
    """All problems of one qna.yaml, sorted by position; kind is 'skills' or 'knowledge' (None: infer)."""
    display = display if display is not None else str(path)
    if path.name not in ("qna.yaml", "qna.yml"):
        return [Problem(display, 1, 1, "error", f"a taxonomy file must be named qna.yaml, not {path.name!r}")]
    problems = []
    if path.name == "qna.yml":
        message = "rename qna.yml to qna.yaml; InstructLab only reads qna.yaml"
        problems.append(Problem(display, 1, 1, "warning", message))
    parsed, found = read_yaml(path, display)
    problems += found
    if parsed is not None:
        problems += _check_document(parsed, display, kind or kind_for_path(path, parsed.data))
    return sorted(problems, key=lambda p: (p.line, p.column))


def kind_for_path(path: Path, data: Any = None) -> str:
    """Schema kind from the nearest ancestor top folder, else from the content."""
    for part in reversed(path.absolute().parts[:-1]):
        if part in TOP_FOLDERS:
            return TOP_FOLDERS[part]
    return "knowledge" if isinstance(data, dict) and "document" in data else "skills"


def file_version(data: dict[str, Any]) -> int:
    """The schema version a document declares; files without the key are version 1."""
    value = data.get("version", 1)
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return 1  # the schema then reports the wrong type


def _check_document(parsed: Parsed, display: str, kind: str) -> list[Problem]:
    data, root = parsed.data, parsed.root
    if data is None or data == "":
        return [Problem(display, 1, 1, "warning", "the file is empty")]
    assert root is not None
    if not isinstance(data, dict):
        return [_at(display, root, "error", "the top level must be a mapping of keys (created_by, seed_examples, ...)")]
    version = file_version(data)
    if version not in SCHEMA_VERSIONS:
        node = node_at(root, ["version"])
        return [_at(display, node, "error", f"unsupported version {version}; seedlab reads versions 1 to 3")]
    problems = _yamllint(parsed.text, display) if version > 1 else []  # InstructLab lints v2+ only
    schema = load_schema(f"v{version}/{SCHEMA_FILE[kind]}")
    if schema.get("deprecated"):
        node = node_at(root, ["version"])
        return problems + [_at(display, node, "error", schema["description"])]
    problems += _schema_problems(data, root, display, schema)
    problems += _extra_checks(data, root, display, parsed.text)
    return problems


@functools.cache
def _validator(schema_name: str) -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(load_schema(schema_name))


def _schema_problems(data: dict[str, Any], root: yaml.Node, display: str, schema: dict[str, Any]) -> list[Problem]:
    validator = _validator(schema["$id"].split(":", 1)[1])
    problems = []
    try:
        errors = list(validator.iter_errors(data))
    except RecursionError:  # jsonschema compares and prints values recursively; YAML allows 1000 levels
        return [Problem(display, 1, 1, "error", "YAML nested too deeply to validate")]
    for error in errors:
        path = list(error.absolute_path)
        node = node_at(root, path)
        where = _dotted(path)
        if error.validator == "unevaluatedProperties" and isinstance(error.instance, dict):
            known = set(error.schema.get("properties", {}))
            for key in error.instance:
                if key not in known:
                    at = key_node(node, str(key)) or node
                    problems.append(_at(display, at, "error", f"{_dotted(path + [key])}: unknown key {key!r}"))
            continue
        problems.append(_at(display, node, "error", f"{where}: {_describe(error)}"))
    return problems


def _describe(error: Any) -> str:
    value = error.validator_value
    if error.validator == "required":
        # jsonschema yields one error per missing key, each naming its key first in the message
        missing = [k for k in value if k not in error.instance and str(error.message).startswith(repr(k))]
        return f"missing required key {missing[0]!r}" if missing else str(error.message)
    if error.validator == "minItems":
        return f"has {len(error.instance)} items; at least {value} are needed"
    if error.validator == "uniqueItems":
        return "has duplicate entries; every entry must be unique"
    if error.validator == "minLength":
        return "must not be empty"
    if error.validator == "type":
        article = "an" if value in ("integer", "object", "array") else "a"
        return f"must be {article} {value}, got {_yaml_type(error.instance)}"
    if error.validator == "const":
        return f"must be {value!r}, got {error.instance!r}"
    return str(error.message)[:200]


def _yaml_type(value: Any) -> str:
    names = {dict: "mapping", list: "list", str: "string", bool: "boolean", int: "integer", float: "number"}
    return "nothing (null)" if value is None else names.get(type(value), type(value).__name__)


def _dotted(path: list[Any]) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text or "top level"


def _at(display: str, node: yaml.Node, level: str, message: str) -> Problem:
    return Problem(display, node.start_mark.line + 1, node.start_mark.column + 1, level, message)


@functools.cache
def _yamllint_config() -> Any:
    from yamllint.config import YamlLintConfig

    return YamlLintConfig(YAMLLINT_CONFIG)


def _yamllint(text: str, display: str) -> list[Problem]:
    from yamllint import linter

    if text and re.match(r"^#\s*yamllint disable-file\s*$", text.splitlines()[0]):
        return []  # the directive yamllint's own run() honours
    try:
        # linter.run() would first re-parse the whole file in pure Python to find syntax errors,
        # which our C parser has already ruled out; that pass was ~40 % of validation time.
        found = list(linter.get_cosmetic_problems(text, _yamllint_config(), None))
    except RecursionError:
        return [Problem(display, 1, 1, "error", "YAML nested too deeply to lint")]
    return [Problem(display, p.line, p.column, p.level, f"{p.desc} ({p.rule})") for p in found]


def _extra_checks(data: dict[str, Any], root: yaml.Node, display: str, text: str) -> list[Problem]:
    problems = []
    document = data.get("document")
    if isinstance(document, dict):
        patterns = document.get("patterns")
        for i, pattern in enumerate(patterns if isinstance(patterns, list) else []):
            if isinstance(pattern, str) and not is_safe_pattern(pattern):
                node = node_at(root, ["document", "patterns", i])
                message = f"document.patterns[{i}]: {pattern!r} leaves the repository; use a path relative to its root"
                problems.append(_at(display, node, "error", message))
        if not (document.get("repo") and document.get("commit")):
            node = key_node(root, "document") or root
            message = "document: set repo and commit; seedlab reads the documents from that repository at that commit"
            problems.append(_at(display, node, "warning", message))
    seeds = data.get("seed_examples")
    for i, seed in enumerate(seeds if isinstance(seeds, list) else []):
        if not isinstance(seed, dict):
            continue
        problems += _word_limits(seed, root, display, ["seed_examples", i])
    for number, line in enumerate(text.splitlines(), start=1):
        if len(line) > MAX_LINE_CHARS:
            message = f"line is {len(line)} characters; keep lines within {MAX_LINE_CHARS} (wrap the text in a | block)"
            problems.append(Problem(display, number, MAX_LINE_CHARS + 1, "warning", message))
    return problems


def _word_limits(seed: dict[str, Any], root: yaml.Node, display: str, path: list[Any]) -> list[Problem]:
    problems = []
    context = seed.get("context")
    if isinstance(context, str) and len(context.split()) > MAX_CONTEXT_WORDS:
        words = len(context.split())
        message = f"{_dotted(path + ['context'])}: {words} words; keep a context within {MAX_CONTEXT_WORDS}"
        problems.append(_at(display, node_at(root, path + ["context"]), "warning", message))
    pairs = seed.get("questions_and_answers")
    qnas = [(path, seed)] + [(path + ["questions_and_answers", j], qa)
                             for j, qa in enumerate(pairs if isinstance(pairs, list) else [])
                             if isinstance(qa, dict)]
    for where, qa in qnas:
        question, answer = qa.get("question"), qa.get("answer")
        if isinstance(question, str) and isinstance(answer, str):
            words = len(question.split()) + len(answer.split())
            if words > MAX_QNA_WORDS:
                message = f"{_dotted(where)}: question and answer hold {words} words; keep them within {MAX_QNA_WORDS}"
                problems.append(_at(display, node_at(root, where), "warning", message))
    return problems


_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


def is_safe_pattern(pattern: str) -> bool:
    """A document pattern must stay inside its repository: relative, with no '..' part."""
    if pattern.startswith(("/", "\\", "~")) or _DRIVE.match(pattern):
        return False
    return ".." not in PurePosixPath(pattern.replace("\\", "/")).parts
