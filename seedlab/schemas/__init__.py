"""JSON Schema files for qna.yaml (versions 1-3, InstructLab-compatible) and seedlab's own formats."""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

SCHEMA_VERSIONS = (1, 2, 3)


@functools.cache
def load_schema(name: str) -> dict[str, Any]:
    """One schema file by its path inside this package, e.g. 'v3/knowledge.json'."""
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
