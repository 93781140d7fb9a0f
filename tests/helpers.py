"""Small builders shared by the tests: valid leaves and real git repositories in temp folders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import git
import yaml

ACTOR = git.Actor("tester", "tester@localhost")


def skill_leaf(n: int = 5, task: str = "Say hello.") -> str:
    seeds = [{"question": f"Question {i}?", "answer": f"Answer {i}."} for i in range(n)]
    data = {"version": 3, "created_by": "tester", "task_description": task, "seed_examples": seeds}
    return yaml.safe_dump(data, sort_keys=False)


def knowledge_leaf(repo: str, commit: str, patterns: list[str] | None = None) -> str:
    seeds: list[dict[str, Any]] = [
        {"context": f"Context {i}.", "questions_and_answers": [
            {"question": f"Q{i}.{j}?", "answer": f"A{i}.{j}."} for j in range(3)]}
        for i in range(5)
    ]
    data = {"version": 3, "created_by": "tester", "domain": "Testing", "document_outline": "A test document.",
            "seed_examples": seeds, "document": {"repo": repo, "commit": commit, "patterns": patterns or ["*.md"]}}
    return yaml.safe_dump(data, sort_keys=False)


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def commit_all(repo: git.Repo, message: str = "change") -> str:
    repo.git.add("--all")
    return repo.index.commit(message, author=ACTOR, committer=ACTOR).hexsha


def new_repo(path: Path, files: dict[str, str]) -> git.Repo:
    repo = git.Repo.init(path, initial_branch="main")
    for rel, text in files.items():
        write(path, rel, text)
    commit_all(repo, "initial")
    return repo
