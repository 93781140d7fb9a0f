"""`seedlab init`: the config, an example taxonomy repository and its local knowledge-document repository."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from seedlab.config import Config, Settings, write_config
from seedlab.errors import SeedlabError
from seedlab.fsutil import write_text_atomic

EXAMPLE_DOCS = "halvane-seed-library"
# Fixed identity and dates make the example commits identical on every machine.
_ACTOR = ("seedlab", "seedlab@localhost")
_DATE = "1767225600 +0000"  # 2026-01-01 in git's raw date format


@dataclass
class InitResult:
    """What `init` created and what it found already there and left alone."""

    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def init_workspace(settings: Settings, force: bool = False) -> InitResult:
    """Create the config, the example taxonomy and its document repository; keep what exists unless forced."""
    result = InitResult()
    config_file = settings.home.config_file
    if config_file.exists() and not force:
        result.kept.append(f"config {config_file}")
    else:
        write_config(config_file, settings.config if config_file.exists() else Config())
        result.created.append(f"config {config_file}")

    docs = settings.docs_path / EXAMPLE_DOCS
    for path in (docs, settings.taxonomy_path):
        if path.exists() and any(path.iterdir()) and not _is_repo(path):
            raise SeedlabError(f"{path} holds files but no git history; move it away or set another path in the config")
    if _is_repo(docs) and not force:
        result.kept.append(f"knowledge documents {docs}")
        commit = _head(docs)
    else:
        commit = _write_repo(docs, shipped("docs", EXAMPLE_DOCS), {}, "Example knowledge documents")
        result.created.append(f"knowledge documents {docs} @ {commit[:8]}")

    taxonomy = settings.taxonomy_path
    if _is_repo(taxonomy) and not force:
        result.kept.append(f"taxonomy {taxonomy}")
    else:
        values = {"{{DOCS_REPO}}": str(docs), "{{DOCS_COMMIT}}": commit}
        head = _write_repo(taxonomy, shipped("taxonomy"), values, "Example taxonomy from seedlab init")
        result.created.append(f"taxonomy {taxonomy} @ {head[:8]}")
    return result


def add_example_release(settings: Settings) -> tuple[str, str]:
    """The example's second release: a new document committed to the example document repository, then a new
    knowledge leaf on it and a new skill leaf committed to the taxonomy; returns (docs commit, taxonomy commit)."""
    import git

    docs, taxonomy = settings.docs_path / EXAMPLE_DOCS, settings.taxonomy_path
    if not (_is_repo(docs) and _is_repo(taxonomy)):
        raise SeedlabError("the example taxonomy is not set up; run `seedlab init` first")
    example = shipped("release2")
    _copy_tree(example / "docs", docs, {})
    commit = _commit_all(git.Repo(docs), "A second example document")
    _copy_tree(example / "taxonomy", taxonomy, {"{{DOCS_REPO}}": str(docs), "{{DOCS_COMMIT}}": commit})
    return commit, _commit_all(git.Repo(taxonomy), "A second release: one knowledge leaf and one skill leaf")


def shipped(*parts: str) -> Path:
    """A file or folder of the examples seedlab ships (examples/judge/instructions.jsonl, say)."""
    return Path(str(resources.files("seedlab").joinpath("examples", *parts)))


def _copy_tree(source: Path, target: Path, values: dict[str, str]) -> None:
    for item in source.iterdir():
        if item.name == "__pycache__":
            continue
        if item.is_dir():
            _copy_tree(item, target / item.name, values)
            continue
        text = item.read_text(encoding="utf-8")
        for key, value in values.items():
            text = text.replace(key, value)
        write_text_atomic(target / item.name, text)


def _write_repo(path: Path, source: Path, values: dict[str, str], message: str) -> str:
    """Copy the example files into a git repository at `path` and commit them; return HEAD.

    A new repository is built beside its place and renamed into it, so an interrupted init leaves
    nothing half made; an existing one (with --force) gets the examples as a new commit.
    """
    import git

    if _is_repo(path):
        _copy_tree(source, path, values)
        return _commit_all(git.Repo(path), message)
    staging = path.with_name(f".{path.name}.init")
    shutil.rmtree(staging, ignore_errors=True)
    repo = git.Repo.init(staging, initial_branch="main")
    _copy_tree(source, staging, values)
    head = _commit_all(repo, message)
    if path.exists():
        path.rmdir()  # init_workspace only lets an empty folder reach here
    staging.rename(path)
    return head


def _commit_all(repo: Any, message: str) -> str:
    import git

    repo.git.add("--all")
    if repo.head.is_valid() and not repo.index.diff("HEAD"):
        return str(repo.head.commit.hexsha)
    actor = git.Actor(*_ACTOR)
    commit = repo.index.commit(message, author=actor, committer=actor, author_date=_DATE, commit_date=_DATE)
    return str(commit.hexsha)


def _is_repo(path: Path) -> bool:
    """A git repository with at least one commit."""
    import git

    try:
        return bool(git.Repo(path).head.is_valid())
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return False


def _head(path: Path) -> str:
    import git

    repo: Any = git.Repo(path)
    return str(repo.head.commit.hexsha)
