"""What the contributor page reads from and writes to git: the taxonomy tree, uploads into the document repository,
and a leaf committed on a new branch. Nothing here pushes, and nothing writes outside the two repositories."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seedlab.errors import SeedlabError
from seedlab.fsutil import write_text_atomic
from seedlab.taxonomy import convert_document, document_format, find_leaves, validate_paths

MAX_UPLOAD = 20 << 20  # bytes; a knowledge document of tens of pages is a few MiB even as PDF
_BRANCH = re.compile(r"^(?!.*\.\.)(?!.*//)(?!.*@\{)[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")
_UPLOAD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$")


class RepoError(SeedlabError):
    """A request the page cannot carry out in a repository; nothing was written."""


@dataclass(frozen=True)
class Committed:
    """A leaf committed on a new branch, with what `taxonomy diff` says of the branch."""

    branch: str
    commit: str
    file: str
    verdict: str
    problems: list[str]
    push: str


def tree(taxonomy: Path) -> dict[str, Any]:
    """The taxonomy's leaves (qna.yaml paths) and folders, relative to its root, for the page's pickers."""
    root = taxonomy.resolve()
    leaves = sorted(p.relative_to(root).as_posix() for p in find_leaves(root))
    folders = sorted({p.relative_to(root).as_posix() for p in root.rglob("*")
                      if p.is_dir() and ".git" not in p.relative_to(root).parts})
    return {"taxonomy": str(root), "branch": _branch_name(root), "leaves": leaves, "folders": folders}


def leaf_file(taxonomy: Path, rel: str) -> Path:
    """The qna.yaml a page request names, refused when it lies outside the taxonomy or is not a seed file."""
    root = taxonomy.resolve()
    path = (root / rel).resolve()
    if not path.is_relative_to(root) or path.name not in ("qna.yaml", "qna.yml") or ".git" in path.parts:
        raise RepoError(f"{rel!r} is not a qna.yaml inside the taxonomy {root}")
    return path


def documents(docs: Path) -> list[dict[str, str]]:
    """Every file seedlab can read at HEAD of each git repository under the documents folder, with the commit to
    pin: [{"repo", "commit", "path"}]."""
    import git

    found = []
    for folder in sorted(p for p in docs.iterdir() if p.is_dir()) if docs.is_dir() else []:
        try:
            head = git.Repo(folder).head.commit
        except (git.InvalidGitRepositoryError, git.NoSuchPathError, ValueError):
            continue  # not a repository, or one without a commit yet
        blobs: Any = head.tree.traverse()
        found += [{"repo": str(folder.resolve()), "commit": head.hexsha, "path": str(b.path)}
                  for b in blobs if b.type == "blob" and document_format(str(b.path))]
    return found


UPLOADS = "uploads"  # the document repository, under the documents folder, that uploads are committed to


def upload(docs: Path, name: str, data: bytes) -> dict[str, Any]:
    """Commit an uploaded document to the `uploads` repository under the documents folder; (repo, commit, pattern)
    for the form.

    Checked before anything is written: a plain file name, a format seedlab reads, the size, and that it converts
    (a non-UTF-8 text file, a corrupt or scanned PDF is refused with the converter's own message)."""
    import git

    if not _UPLOAD_NAME.fullmatch(name) or ".." in name:
        raise RepoError(f"upload name {name!r}: use a plain file name (letters, digits, spaces, '.', '_', '-')")
    if document_format(name) is None:
        raise RepoError(f"{name}: not a document format seedlab reads (Markdown, text, PDF, HTML or DOCX)")
    if len(data) > MAX_UPLOAD:
        raise RepoError(f"{name} is {len(data) / (1 << 20):.1f} MiB; the limit is {MAX_UPLOAD >> 20} MiB")
    convert_document(name, data)  # raises a clear error for what the pipeline could not read
    folder = docs / UPLOADS
    if folder.is_symlink() or (folder / name).is_symlink():
        raise RepoError(f"{folder / name} is a symbolic link; the page writes only real files in {docs}")
    folder.mkdir(parents=True, exist_ok=True)
    repo = git.Repo(folder) if (folder / ".git").exists() else git.Repo.init(folder, initial_branch="main")
    target = folder / name
    if target.exists() and target.read_bytes() != data:
        raise RepoError(f"{name} already exists in {folder} with other content; rename the file")
    target.write_bytes(data)
    repo.index.add([name])
    if repo.head.is_valid() and not repo.index.diff("HEAD"):
        commit = repo.head.commit.hexsha  # the same file was committed before
    else:
        commit = repo.index.commit(f"Add {name}", **_actor(repo)).hexsha
    return {"repo": str(folder.resolve()), "commit": commit, "pattern": name}


def commit_leaf(taxonomy: Path, folder: str, text: str, branch: str, message: str, author: str,
                documents_cache: Path | None = None) -> Committed:
    """Write `folder`/qna.yaml on a new branch made from the current HEAD and commit only that file; if any step
    fails, the branch, the checkout and the file are put back as they were."""
    import git

    if not _BRANCH.fullmatch(branch) or branch.endswith((".", "/", ".lock")):
        raise RepoError(f"branch name {branch!r}: use letters, digits, '.', '_', '-' and '/'")
    if not message.strip():
        raise RepoError("write a commit message")
    repo = _taxonomy_repo(taxonomy)
    if branch in repo.heads:
        raise RepoError(f"branch {branch!r} already exists; pick a new name (the page never changes a branch)")
    root = Path(repo.working_tree_dir or taxonomy).resolve()
    file = leaf_file(taxonomy, f"{folder}/qna.yaml")
    rel = file.relative_to(root).as_posix()
    _check_target(repo, root, file, rel, text)
    base, was = repo.head.commit.hexsha, (None if repo.head.is_detached else repo.active_branch.name)
    before = file.read_bytes() if file.exists() else None
    missing = [d for d in [file.parent, *file.parent.parents] if d.is_relative_to(root) and not d.exists()]
    actor = _actor(repo, author)
    env = {"GIT_AUTHOR_NAME": actor["author"].name, "GIT_AUTHOR_EMAIL": actor["author"].email,
           "GIT_COMMITTER_NAME": actor["committer"].name, "GIT_COMMITTER_EMAIL": actor["committer"].email}
    try:
        repo.git.switch("-c", branch)  # carries the user's uncommitted changes along; every branch stays as it is
        file.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(file, text)
        repo.git.add("--", rel)
        with repo.git.custom_environment(**env):
            repo.git.commit("-m", message.strip(), "--", rel)  # only this file, whatever else is staged
    except (git.GitCommandError, OSError) as exc:
        _roll_back(repo, file, rel, before, was or base, branch)
        for made in missing:  # the folders made for the leaf, innermost first
            with contextlib.suppress(OSError):
                made.rmdir()
        detail = (getattr(exc, "stderr", None) or str(exc)).strip().splitlines() or [""]
        raise RepoError(f"the commit failed ({detail[-1]}); nothing was changed") from exc
    return _committed(repo, root, branch, rel, base, documents_cache)


def _taxonomy_repo(taxonomy: Path) -> Any:
    import git

    try:
        return git.Repo(taxonomy, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
        raise RepoError(f"the taxonomy {taxonomy} is not in a git repository; `git init` it first") from exc


def _check_target(repo: Any, root: Path, file: Path, rel: str, text: str) -> None:
    """Refuse before anything changes: no commit to branch from, a file where a folder must go, uncommitted edits
    to the leaf (they would be overwritten), or content already committed."""
    if not repo.head.is_valid():
        raise RepoError(f"the taxonomy {root} has no commit yet; commit something first")
    for parent in [file.parent, *file.parent.parents]:
        if parent == root:
            break
        if parent.exists() and not parent.is_dir():
            raise RepoError(f"{parent.relative_to(root)} is a file, not a folder: pick another place in the tree")
    if file.exists() and repo.git.status("--porcelain", "--", rel).strip():
        raise RepoError(f"{rel} has uncommitted edits: commit or stash them first, so the page does not overwrite them")
    try:
        unchanged = repo.head.commit.tree[rel].data_stream.read() == text.encode("utf-8")
    except KeyError:
        unchanged = False
    if unchanged:
        raise RepoError(f"{rel} is already committed with this content: change the form first")


def _roll_back(repo: Any, file: Path, rel: str, before: bytes | None, was: str, branch: str) -> None:
    """Put the checkout, the new branch and the leaf's file back as they were before a failed commit."""
    import git

    with contextlib.suppress(git.GitCommandError):  # nothing staged yet
        repo.git.reset("-q", "--", rel)
    if before is None:
        file.unlink(missing_ok=True)
    else:
        file.write_bytes(before)
    if not repo.head.is_detached and repo.active_branch.name == branch:
        repo.git.switch("-q", was) if was in repo.heads else repo.git.switch("-q", "--detach", was)
    if branch in repo.heads:
        repo.git.branch("-D", branch)


def _committed(repo: Any, root: Path, branch: str, rel: str, base: str, cache: Path | None) -> Committed:
    """What `taxonomy diff` says of the new branch's commits against where it started, and the command to push."""
    changed = [f for f in repo.git.diff("--name-only", base, "HEAD").splitlines()
               if f.endswith(("/qna.yaml", "/qna.yml"))]
    reports = validate_paths([str(root / f) for f in changed], cache)
    errors = sum(r.errors for r in reports)
    warnings = sum(r.warnings for r in reports)
    problems = [f"{p.path}:{p.line}:{p.column}: {p.level}: {p.message}" for r in reports for p in r.problems]
    verdict = (f"{len(changed)} changed leaf{'s' if len(changed) != 1 else ''} against {base[:8]}: "
               + ("valid" if not errors else f"{errors} error{'s' if errors != 1 else ''}")
               + (f", {warnings} warning{'s' if warnings != 1 else ''}" if warnings else ""))
    remote = repo.remotes[0].name if repo.remotes else "<remote>"
    return Committed(branch, repo.head.commit.hexsha, rel, verdict, problems, f"git -C {root} push {remote} {branch}")


def _branch_name(root: Path) -> str:
    import git

    try:
        repo = git.Repo(root)
        return "" if repo.head.is_detached else repo.active_branch.name
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, TypeError):
        return ""


def _actor(repo: Any, fallback: str = "seedlab") -> dict[str, Any]:
    """The repository's configured identity, else the contributor's name with a no-reply address."""
    import git

    reader = repo.config_reader()
    name = reader.get_value("user", "name", "") or fallback or "seedlab"
    handle = re.sub(r"[^A-Za-z0-9._-]", "", str(name)) or "seedlab"
    email = reader.get_value("user", "email", "") or f"{handle}@users.noreply.github.com"
    actor = git.Actor(str(name), str(email))
    return {"author": actor, "committer": actor}
