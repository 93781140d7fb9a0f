"""Prompt templates as versioned data files; a template turns few-shot examples into a backend Request."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from seedlab.backends import Message, Request
from seedlab.errors import SeedlabError

REQUIRED = ("skill_question", "context", "grounded_question", "answer", "question_judge", "pair_judge",
            "knowledge_question", "knowledge_answer")


@dataclass(frozen=True)
class Template:
    """One prompt: `completion` (header + examples + query) or `chat` (system, example turns, user)."""

    kind: str
    header: str = ""
    example: str = ""
    query: str = ""
    system: str = ""
    user: str = "{question}"
    stop: list[str] = field(default_factory=list)
    max_tokens: int = 128
    temperature: float = 0.7

    def completion(self, examples: list[dict[str, str]], target: dict[str, str], n: int, seed: int) -> Request:
        prompt = self.header.format(**target) + "".join(self.example.format(**e) for e in examples)
        return Request(prompt=prompt + self.query.format(**target), n=n, temperature=self.temperature,
                       max_tokens=self.max_tokens, stop=list(self.stop), seed=seed)

    def chat(self, examples: list[tuple[str, str]], target: dict[str, str], n: int, seed: int,
             json_schema: dict[str, Any] | None = None) -> Request:
        messages: list[Message] = [{"role": "system", "content": self.system.format(**target)}]
        for user, assistant in examples:
            messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
        messages.append({"role": "user", "content": self.user.format(**target)})
        return Request(messages=messages, n=n, temperature=self.temperature, max_tokens=self.max_tokens,
                       stop=list(self.stop), json_schema=json_schema, seed=seed)


@dataclass(frozen=True)
class TemplateSet:
    """A named, versioned set of templates."""

    name: str
    version: int
    templates: dict[str, Template]

    def __getitem__(self, key: str) -> Template:
        return self.templates[key]


def load_templates(name_or_path: str) -> TemplateSet:
    """A shipped set by name ('default'; 'auto' from older configs names it too) or a YAML file of the same shape."""
    name = "default" if name_or_path == "auto" else name_or_path
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        source, text = str(path), _read(path)
    else:
        packaged = resources.files("seedlab.sdg").joinpath("templates", f"{name}.yaml")
        if not packaged.is_file():
            raise SeedlabError(f"no template set {name!r}; give 'default' or a path to a .yaml file")
        source, text = f"templates/{name}.yaml", packaged.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise SeedlabError(f"{source}{where}: not valid YAML; see seedlab/sdg/templates/default.yaml") from exc
    from seedlab.config import dataclass_from_json

    try:
        templates = {}
        for key, spec in data["templates"].items():
            # Typed like the config: a number where text belongs is named here, not met mid-run.
            templates[key] = dataclass_from_json(Template, spec, Path(f"{source}: template {key!r}"))
        missing = [k for k in REQUIRED if k not in templates]
        if missing:
            raise SeedlabError(f"{source}: missing templates {missing}")
        return TemplateSet(str(data["name"]), int(data["version"]), templates)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise SeedlabError(f"{source}: not a template set ({exc}); see seedlab/sdg/templates/default.yaml") from exc


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SeedlabError(f"{path}: cannot read template set: {exc.strerror or exc}") from exc
