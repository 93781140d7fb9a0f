"""Taxonomy: find, validate and diff qna.yaml leaves, and turn a valid leaf into seed records."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from seedlab.taxonomy._convert import convert_document, document_format, readable_text
from seedlab.taxonomy._diff import DiffResult, changed_leaves, find_leaves
from seedlab.taxonomy._leaf import (
    Document,
    KnowledgeLeaf,
    KnowledgeSeed,
    Leaf,
    QnA,
    SkillLeaf,
    SkillSeed,
    document_problems,
    git_blob_id,
    load_leaf,
    read_documents,
    work_tree,
)
from seedlab.taxonomy._report import FORMATS, format_problem
from seedlab.taxonomy._validate import validate_file
from seedlab.taxonomy._yaml import Problem, read_yaml

__all__ = [
    "FORMATS", "DiffResult", "Document", "FileReport", "KnowledgeLeaf", "KnowledgeSeed", "Leaf", "Problem",
    "QnA", "SkillLeaf", "SkillSeed", "changed_leaves", "convert_document", "document_format", "document_problems",
    "find_leaves", "format_problem", "git_blob_id", "readable_text",
    "load_leaf", "read_documents", "read_yaml", "validate_file", "validate_paths", "work_tree",
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


PARALLEL_FROM = 64  # below this many files, starting worker processes costs more than it saves


def validate_paths(paths: list[str], documents_cache: Path | None = None) -> list[FileReport]:
    """Validate files as given and every qna.yaml/qna.yml under the given folders, in that order. A valid
    knowledge leaf's documents in a local repository are read too (converted and cached in `documents_cache`),
    so a document seedlab cannot read is reported; remote repositories are not fetched to validate."""
    files: list[tuple[Path, str]] = []
    for given in paths:
        root = Path(given)
        files += [(root, given)] if not root.is_dir() else [
            (f, os.path.join(given, f.relative_to(root).as_posix())) for f in find_leaves(root)
        ]
    workers = os.cpu_count() or 1
    jobs = [(path, display, documents_cache) for path, display in files]
    if len(files) < PARALLEL_FROM or workers == 1:
        return [_report(job) for job in jobs]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_report, jobs, chunksize=max(1, len(files) // (workers * 8))))


def _report(job: tuple[Path, str, Path | None]) -> FileReport:
    path, display, cache = job
    problems = validate_file(path, display)
    if not any(p.level == "error" for p in problems):
        problems += document_problems(path, display, cache)
    return FileReport(display, problems)
