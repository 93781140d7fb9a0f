"""Print problems as text (path:line:col: level: message), JSON lines, or GitHub annotations."""

from __future__ import annotations

import json
from dataclasses import asdict

from seedlab.taxonomy._yaml import Problem

FORMATS = ("text", "json", "github")


def format_problem(problem: Problem, fmt: str) -> str:
    """One problem as one line in the chosen format."""
    if fmt == "json":
        return json.dumps(asdict(problem), ensure_ascii=False)
    if fmt == "github":
        # GitHub workflow commands need %, CR and LF escaped in the message and property values.
        def esc(text: str, prop: bool = False) -> str:
            text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
            return text.replace(":", "%3A").replace(",", "%2C") if prop else text

        where = f"file={esc(problem.path, True)},line={problem.line},col={problem.column}"
        return f"::{problem.level} {where}::{esc(problem.message)}"
    return f"{problem.path}:{problem.line}:{problem.column}: {problem.level}: {problem.message}"
