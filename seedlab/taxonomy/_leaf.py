"""Turn a valid leaf into typed seed records, with its documents read at the pinned commit."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seedlab.errors import TaxonomyError
from seedlab.fsutil import write_text_atomic
from seedlab.taxonomy._convert import CONVERTER_VERSION, convert_document
from seedlab.taxonomy._validate import is_safe_pattern, kind_for_path, validate_file
from seedlab.taxonomy._yaml import Problem, key_node, read_yaml


@dataclass(frozen=True)
class SkillSeed:
    """One seed example of a skill; `context` is set for grounded skills."""

    question: str
    answer: str
    context: str | None = None


@dataclass(frozen=True)
class QnA:
    """One question and its answer."""

    question: str
    answer: str


@dataclass(frozen=True)
class KnowledgeSeed:
    """An excerpt of a knowledge document with question/answer pairs about it."""

    context: str
    qna: tuple[QnA, ...]


@dataclass(frozen=True)
class Document:
    """One knowledge document file, read from its repository at the pinned commit."""

    path: str
    text: str


@dataclass(frozen=True)
class SkillLeaf:
    """A skill leaf: kind is 'freeform_skill' or 'grounded_skill' (seeds carry a context)."""

    path: str
    kind: str
    created_by: str
    task_description: str
    seeds: tuple[SkillSeed, ...]
    blob_id: str
    taxonomy_commit: str | None


@dataclass(frozen=True)
class KnowledgeLeaf:
    """A knowledge leaf with its seed excerpts and documents."""

    path: str
    created_by: str
    domain: str
    document_outline: str
    seeds: tuple[KnowledgeSeed, ...]
    document_repo: str
    document_commit: str
    documents: tuple[Document, ...]
    blob_id: str
    taxonomy_commit: str | None

    kind = "knowledge"


Leaf = SkillLeaf | KnowledgeLeaf


def load_leaf(taxonomy: Path, rel_path: str, clone_cache: Path | None = None) -> Leaf:
    """Validate and load one leaf; knowledge documents come from document.repo at document.commit."""
    path = (taxonomy / rel_path).resolve()
    if not path.is_relative_to(taxonomy.resolve()):
        raise TaxonomyError(f"{rel_path}: leaf path leaves the taxonomy at {taxonomy}")
    errors = [p for p in validate_file(path, rel_path) if p.level == "error"]
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise TaxonomyError(f"{first.path}:{first.line}:{first.column}: {first.message}{more}; "
                            "run `seedlab taxonomy validate` for all of them")
    parsed, _ = read_yaml(path, rel_path)
    assert parsed is not None and isinstance(parsed.data, dict)
    data: dict[str, Any] = parsed.data
    blob_id = git_blob_id(path.read_bytes())
    commit = _taxonomy_commit(taxonomy)
    if kind_for_path(path, data) == "knowledge":
        return _knowledge_leaf(data, rel_path, blob_id, commit, taxonomy, clone_cache)
    seeds = tuple(SkillSeed(s["question"], s["answer"], s.get("context")) for s in data["seed_examples"])
    kind = "grounded_skill" if any(s.context for s in seeds) else "freeform_skill"
    return SkillLeaf(rel_path, kind, data["created_by"], data.get("task_description", ""), seeds, blob_id, commit)


def _knowledge_leaf(data: dict[str, Any], rel_path: str, blob_id: str, commit: str | None,
                    taxonomy: Path, clone_cache: Path | None) -> KnowledgeLeaf:
    seeds = tuple(
        KnowledgeSeed(s["context"], tuple(QnA(qa["question"], qa["answer"]) for qa in s["questions_and_answers"]))
        for s in data["seed_examples"]
    )
    document = data["document"]
    repo_ref, doc_commit = document.get("repo"), document.get("commit")
    if not repo_ref or not doc_commit:
        raise TaxonomyError(f"{rel_path}: document needs repo and commit; seedlab reads documents from git")
    documents = read_documents(str(repo_ref), str(doc_commit), list(document["patterns"]), taxonomy, clone_cache)
    return KnowledgeLeaf(rel_path, data["created_by"], data["domain"], data["document_outline"], seeds,
                         str(repo_ref), str(doc_commit), documents, blob_id, commit)


def read_documents(repo_ref: str, commit: str, patterns: list[str], taxonomy: Path,
                   clone_cache: Path | None = None) -> tuple[Document, ...]:
    """The files matching `patterns` in repository `repo_ref` at `commit`, as readable text (see _convert)."""
    import git

    for pattern in patterns:
        if not is_safe_pattern(pattern):
            raise TaxonomyError(f"document pattern {pattern!r} leaves its repository; use a relative path")
    repo = _open_document_repo(repo_ref, commit, taxonomy, clone_cache)
    try:
        tree = repo.commit(commit).tree
    except (git.BadName, ValueError) as exc:
        raise TaxonomyError(f"commit {commit} is not in document repository {repo_ref}; fix document.commit") from exc
    matchers = [_glob_regex(p) for p in patterns]
    documents = []
    for item in tree.traverse():
        if item.type == "blob" and any(m.fullmatch(item.path) for m in matchers):
            where = f"{repo_ref}@{commit[:8]}:{item.path}"
            documents.append(Document(item.path, _converted(where, item, clone_cache)))
    if not documents:
        raise TaxonomyError(f"no file in {repo_ref}@{commit[:8]} matches {patterns}; fix document.patterns")
    return tuple(sorted(documents, key=lambda d: d.path))


def document_problems(path: Path, display: str, cache: Path | None = None) -> list[Problem]:
    """The error, if any, of reading a valid knowledge leaf's documents from a local repository (one Problem at
    the `document` key); skills, remote repositories and unfilled templates are not read."""
    parsed, _ = read_yaml(path, display)
    if parsed is None or not isinstance(parsed.data, dict) or kind_for_path(path, parsed.data) != "knowledge":
        return []
    document = parsed.data.get("document")
    if not isinstance(document, dict) or not document.get("repo") or not document.get("commit"):
        return []
    repo_ref = str(document["repo"])
    if "://" in repo_ref.removeprefix("file://") or ":" in repo_ref.split("/")[0] or "{{" in repo_ref:
        return []
    try:
        read_documents(repo_ref, str(document["commit"]), list(document["patterns"]), work_tree(path), cache)
    except TaxonomyError as exc:
        node = (key_node(parsed.root, "document") if parsed.root is not None else None)
        line, column = (node.start_mark.line + 1, node.start_mark.column + 1) if node is not None else (1, 1)
        return [Problem(display, line, column, "error", f"document: {exc}")]
    return []


def work_tree(path: Path) -> Path:
    """The git work tree holding `path` (a leaf file or a taxonomy folder), against which relative document
    repositories are resolved; the path's own folder when no work tree holds it."""
    resolved = path.resolve()
    for folder in [resolved, *resolved.parents]:
        if (folder / ".git").exists():
            return folder
    return resolved if resolved.is_dir() else resolved.parent


def _converted(where: str, blob: Any, cache: Path | None) -> str:
    """A document blob's readable text, converted once per blob and converter version (cached as a file)."""
    cached = cache / "converted" / f"v{CONVERTER_VERSION}-{blob.hexsha}.md" if cache else None
    if cached is not None and cached.is_file():
        return cached.read_text(encoding="utf-8")
    try:
        text = convert_document(blob.path, blob.data_stream.read())
    except TaxonomyError as exc:
        raise TaxonomyError(str(exc).replace(blob.path, where, 1)) from exc
    if cached is not None:
        write_text_atomic(cached, text)
    return text


def _open_document_repo(repo_ref: str, commit: str, taxonomy: Path, clone_cache: Path | None) -> Any:
    import git

    local = Path(repo_ref.removeprefix("file://")).expanduser()
    if "://" not in repo_ref.removeprefix("file://") and ":" not in repo_ref.split("/")[0]:
        local = local if local.is_absolute() else taxonomy / local
        try:
            return git.Repo(local)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
            raise TaxonomyError(f"document repository {repo_ref} is not a git repository; fix document.repo") from exc
    if clone_cache is None:
        raise TaxonomyError(f"document repository {repo_ref} is remote and no clone cache was given")
    target = clone_cache / hashlib.sha256(repo_ref.encode()).hexdigest()[:16]
    try:
        if not target.exists():
            return git.Repo.clone_from(repo_ref, target, no_checkout=True)
        repo = git.Repo(target)
        try:
            repo.commit(commit)
        except (git.BadName, ValueError):
            repo.remotes.origin.fetch()
        return repo
    except git.GitCommandError as exc:
        raise TaxonomyError(f"cannot fetch document repository {repo_ref}: {exc.stderr.strip() or exc}") from exc


def _glob_regex(pattern: str) -> re.Pattern[str]:
    # Hand-written: Python 3.11 has no PurePath.full_match, and fnmatch lets '*' cross '/'.
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def git_blob_id(content: bytes) -> str:
    """The id git gives this content as a blob (what `git hash-object` prints)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _taxonomy_commit(taxonomy: Path) -> str | None:
    import git

    try:
        repo = git.Repo(taxonomy, search_parent_directories=True)
        return repo.head.commit.hexsha if repo.head.is_valid() else None
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None
