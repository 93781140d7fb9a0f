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


class ServerThread:
    """Runs an ASGI app with uvicorn on a free loopback port in a background thread."""

    def __init__(self, app: Any) -> None:
        import threading

        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        import time

        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
