"""The contributor page's form as data: form -> qna.yaml text, qna.yaml -> form, and problems -> form fields."""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from seedlab.errors import SeedlabError
from seedlab.taxonomy import Problem, validate_paths, work_tree

KINDS = ("freeform", "grounded", "knowledge")
# Where each kind's leaves live in InstructLab's tree (the validator picks the schema by the top folder).
TOP_FOLDER = {"freeform": "compositional_skills", "grounded": "compositional_skills", "knowledge": "knowledge"}
WRAP = 100  # folded text is wrapped here, inside the validator's 120-character line limit
_FIELD = re.compile(r"^((?:[a-z_]+|\[\d+\])(?:\.[a-z_]+|\[\d+\])*): ")


class FormError(SeedlabError):
    """A form that cannot be turned into a seed file at all (not one the validator merely flags)."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field  # the form field it concerns, when one does


@dataclass(frozen=True)
class FieldProblem:
    """One validator finding, attached to the form field it concerns ('' for the file as a whole)."""

    field: str
    level: str
    message: str
    line: int


def leaf_folder(path: str, kind: str) -> str:
    """A taxonomy folder for a leaf, checked: relative, inside the kind's top folder, no '..' or odd names."""
    text = path.strip().strip("/")
    parts = PurePosixPath(text).parts if text else ()
    if not parts or any(p in ("", ".", "..") or not re.fullmatch(r"[A-Za-z0-9_.-]+", p) for p in parts):
        raise FormError(f"taxonomy path {path!r}: use folder names of letters, digits, '_', '-' and '.', "
                        "separated by '/', with no '..'", "path")
    if parts[0] != TOP_FOLDER[kind]:
        raise FormError(f"taxonomy path {path!r}: a {kind} leaf goes under {TOP_FOLDER[kind]}/", "path")
    if parts[-1] in ("qna.yaml", "qna.yml"):
        parts = parts[:-1]
    if len(parts) < 2:
        raise FormError(f"taxonomy path {path!r}: name a folder under {TOP_FOLDER[kind]}/ for the leaf", "path")
    return "/".join(parts)


def form_to_data(form: dict[str, Any]) -> dict[str, Any]:
    """The qna.yaml mapping a form describes; every key is written, empty or not, so the validator names it."""
    kind = form.get("kind")
    if kind not in KINDS:
        raise FormError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    seeds = [_mapping(s, "each seed example") for s in _list(form.get("seed_examples"), "seed_examples")]
    data: dict[str, Any] = {"version": 3, "created_by": _text(form.get("created_by"))}
    if kind == "knowledge":
        document = _mapping(form.get("document") or {}, "document")
        data["domain"] = _text(form.get("domain"))
        data["document_outline"] = _text(form.get("document_outline"))
        data["seed_examples"] = [
            {"context": _text(s.get("context")),
             "questions_and_answers": [
                 {"question": _text(qa.get("question")), "answer": _text(qa.get("answer"))}
                 for qa in (_mapping(q, "each question and answer")
                            for q in _list(s.get("questions_and_answers"), "questions_and_answers"))]}
            for s in seeds]
        data["document"] = {"repo": _text(document.get("repo")), "commit": _text(document.get("commit")),
                            "patterns": [_text(p) for p in _list(document.get("patterns"), "document.patterns")]}
        return data
    data["task_description"] = _text(form.get("task_description"))
    data["seed_examples"] = [
        ({"context": _text(s.get("context"))} if kind == "grounded" else {})
        | {"question": _text(s.get("question")), "answer": _text(s.get("answer"))}
        for s in seeds]
    return data


def data_to_form(data: Any, path: str) -> dict[str, Any]:
    """A loaded qna.yaml as the form shows it (its content, not its comments or layout)."""
    if not isinstance(data, dict):
        raise FormError(f"{path}: the file is not a mapping of keys; fix it with `seedlab taxonomy validate`")
    listed = data.get("seed_examples")
    seeds = [s for s in listed if isinstance(s, dict)] if isinstance(listed, list) else []
    top = PurePosixPath(path).parts[0] if path else ""
    form: dict[str, Any] = {"path": str(PurePosixPath(path).parent) if path.endswith((".yaml", ".yml")) else path,
                            "created_by": _plain(data.get("created_by"))}
    if top == "knowledge" or "document" in data:
        given = data.get("document")
        document: dict[str, Any] = given if isinstance(given, dict) else {}
        form |= {"kind": "knowledge", "domain": _plain(data.get("domain")),
                 "document_outline": _plain(data.get("document_outline")),
                 "document": {"repo": _plain(document.get("repo")), "commit": _plain(document.get("commit")),
                              "patterns": [_plain(p) for p in _items(document.get("patterns"))]},
                 "seed_examples": [{"context": _plain(s.get("context")),
                                    "questions_and_answers": [
                                        {"question": _plain(qa.get("question")), "answer": _plain(qa.get("answer"))}
                                        for qa in _items(s.get("questions_and_answers")) if isinstance(qa, dict)]}
                                   for s in seeds]}
        return form
    grounded = any("context" in s for s in seeds)
    form |= {"kind": "grounded" if grounded else "freeform", "task_description": _plain(data.get("task_description")),
             "seed_examples": [({"context": _plain(s.get("context"))} if grounded else {})
                               | {"question": _plain(s.get("question")), "answer": _plain(s.get("answer"))}
                               for s in seeds]}
    return form


def to_yaml(data: dict[str, Any]) -> str:
    """qna.yaml text in the taxonomy's usual layout: indented lists, long and multi-line text folded at WRAP."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=WRAP, default_flow_style=False)


def check_form(form: dict[str, Any], documents_cache: Path | None = None,
               taxonomy: Path | None = None) -> tuple[str, str, list[FieldProblem]]:
    """(taxonomy folder, YAML text, problems by field) for a form, through the validator `taxonomy validate` runs
    (schema, lint, limits and, for knowledge, reading the documents), on the text written to a scratch tree."""
    kind = form.get("kind")
    if kind not in KINDS:
        raise FormError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    folder = leaf_folder(str(form.get("path") or ""), kind)
    data = form_to_data(form)
    text = to_yaml(data)
    with tempfile.TemporaryDirectory(prefix="seedlab-ui-") as scratch:
        file = write_scratch(Path(scratch), folder, data, text, taxonomy)
        (report,) = validate_paths([str(file)], documents_cache)
    return folder, text, [_field_problem(p) for p in report.problems]


def write_scratch(scratch: Path, folder: str, data: dict[str, Any], text: str, taxonomy: Path | None) -> Path:
    """The leaf written under a scratch tree as it would be in the taxonomy: a relative document repository is
    made absolute against the taxonomy's git work tree, where `taxonomy validate` would look for it."""
    repo = (data.get("document") or {}).get("repo") or ""
    if taxonomy is not None and repo and "://" not in repo and ":" not in repo.split("/")[0] \
            and not Path(repo).expanduser().is_absolute():
        data = {**data, "document": {**data["document"], "repo": str(work_tree(taxonomy) / repo)}}
        text = to_yaml(data)
    file = scratch / folder / "qna.yaml"
    file.parent.mkdir(parents=True)
    file.write_text(text, encoding="utf-8")
    return file


def _field_problem(problem: Problem) -> FieldProblem:
    match = _FIELD.match(problem.message)
    field = match.group(1) if match and match.group(1) != "top level" else ""
    return FieldProblem(field, problem.level, problem.message, problem.line)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise FormError(f"form values must be text, got {type(value).__name__}")
    return value.replace("\r\n", "\n")  # browsers send CRLF from text areas; the content is kept as typed


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise FormError(f"{what} must be a list, got {type(value).__name__}")
    return value


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FormError(f"{what} must be an object, got {type(value).__name__}")
    return value


def _items(value: Any) -> list[Any]:
    """A loaded file's list, or nothing when the file holds something else there (the validator names it)."""
    return value if isinstance(value, list) else []


def _plain(value: Any) -> str:
    return "" if value is None else str(value)


class _Dumper(yaml.SafeDumper):
    """Lists indented under their key (as InstructLab's examples are); long or multi-line strings folded."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> Any:
        return super().increase_indent(flow, False)


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # Lines that fit keep their breaks as a literal block; longer text is folded, which PyYAML writes so that the
    # text reads back exactly, within the line limit.
    lines = value.split("\n")
    style = ("|" if len(lines) > 1 and max(map(len, lines)) <= WRAP - 10 else ">" if len(lines) > 1 or len(value) > 80
             else None)
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_text)
