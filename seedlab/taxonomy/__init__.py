"""Taxonomy: find, validate and diff qna.yaml leaves, and turn a valid leaf into seed records."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from seedlab.taxonomy._diff import DiffResult, changed_leaves, find_leaves
from seedlab.taxonomy._leaf import (
    Document,
    KnowledgeLeaf,
    KnowledgeSeed,
    Leaf,
    QnA,
    SkillLeaf,
    SkillSeed,
    git_blob_id,
    load_leaf,
    read_documents,
)
from seedlab.taxonomy._report import FORMATS, format_problem
from seedlab.taxonomy._validate import validate_file
from seedlab.taxonomy._yaml import Problem

__all__ = [
    "FORMATS", "DiffResult", "Document", "FileReport", "KnowledgeLeaf", "KnowledgeSeed", "Leaf", "Problem",
    "QnA", "SkillLeaf", "SkillSeed", "changed_leaves", "find_leaves", "format_problem", "git_blob_id",
    "load_leaf", "read_documents", "validate_file", "validate_paths",
]


@dataclass(frozen=True)
class FileReport:
    """The problems of one validated file, under the name it was given by."""

    path: str
    problems: list[Problem]

    @property
    def errors(self) -> int:
        return sum(p.level == "error" for p in self.problems)

    @property
    def warnings(self) -> int:
        return sum(p.level == "warning" for p in self.problems)


def validate_paths(paths: list[str]) -> list[FileReport]:
    """Validate files as given and every qna.yaml/qna.yml under the given folders."""
    reports = []
    for given in paths:
        root = Path(given)
        files = [(root, given)] if not root.is_dir() else [
            (f, str(Path(given) / f.relative_to(root))) for f in find_leaves(root)
        ]
        reports += [FileReport(display, validate_file(f, display)) for f, display in files]
    return reports
