"""Which qna.yaml files are new or changed against a git base (or every one, against 'empty')."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seedlab.errors import TaxonomyError

LEAF_NAMES = ("qna.yaml", "qna.yml")


@dataclass(frozen=True)
class DiffResult:
    """The leaves a diff found: taxonomy-relative POSIX paths, and a description of the base used."""

    root: Path
    base: str
    files: list[str]


def find_leaves(folder: Path) -> list[Path]:
    """Every qna.yaml (and misnamed qna.yml) under a folder, skipping .git, in a stable order."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d != ".git")
        found += [Path(dirpath) / name for name in sorted(filenames) if name in LEAF_NAMES]
    return found


def changed_leaves(taxonomy: Path, base: str = "auto") -> DiffResult:
    """New and changed leaves (untracked included, deleted skipped) since the merge base with `base`."""
    if not taxonomy.is_dir():
        raise TaxonomyError(f"{taxonomy}: no such taxonomy folder; run `seedlab init` or pass --taxonomy-path")
    if base == "empty":
        return DiffResult(taxonomy, "empty", _all_leaves(taxonomy))

    import git  # heavy import, only for diffs against a real base

    try:
        repo = git.Repo(taxonomy, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
        message = "is not in a git repository; run `git init` there or use --taxonomy-base empty"
        raise TaxonomyError(f"{taxonomy} {message}") from exc
    work = Path(repo.working_tree_dir or taxonomy).resolve()
    prefix = taxonomy.resolve().relative_to(work)
    if not repo.head.is_valid():  # no commit yet: everything is new
        return DiffResult(taxonomy, "no commits yet", _all_leaves(taxonomy))
    base_commit, label = _resolve_base(repo, base)
    merge_bases = repo.merge_base(base_commit, repo.head.commit)
    if not merge_bases:
        raise TaxonomyError(f"{label} has no common history with HEAD in {work}; pick another --taxonomy-base")
    merge_base = merge_bases[0]
    changed = repo.git.diff("--name-only", "--no-renames", "--diff-filter=d", "-z", merge_base.hexsha).split("\0")
    untracked = repo.untracked_files
    files = []
    for name in sorted(set(changed) | set(untracked)):
        path = Path(name)
        if not name or path.name not in LEAF_NAMES or not (work / path).is_file():
            continue
        if path.parts[: len(prefix.parts)] == prefix.parts:
            files.append(path.relative_to(prefix).as_posix())
    return DiffResult(taxonomy, f"{label} (merge base {merge_base.hexsha[:8]})", files)


def _all_leaves(taxonomy: Path) -> list[str]:
    return [p.relative_to(taxonomy).as_posix() for p in find_leaves(taxonomy)]


def _resolve_base(repo: Any, base: str) -> tuple[Any, str]:
    import git

    if base == "auto":
        if "origin/main" in {ref.name for ref in repo.refs}:
            return repo.commit("origin/main"), "origin/main"
        first = repo.git.rev_list("--max-parents=0", "HEAD").split()[-1]
        return repo.commit(first), f"first commit {first[:8]}"
    try:
        return repo.commit(base), base
    except (git.BadName, ValueError) as exc:
        raise TaxonomyError(
            f"unknown git ref {base!r} in {repo.working_tree_dir}; give a branch, tag or commit, or 'empty'"
        ) from exc
