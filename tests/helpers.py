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


def serve_process(home: Path, *extra: str) -> tuple[Any, str]:
    """`seedlab model serve` in a process of its own on a free loopback port, and its /v1 URL; wait_until_up."""
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    env = {**os.environ, "SEEDLAB_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "seedlab", "model", "serve", "--port", str(port), *extra]
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return server, f"http://127.0.0.1:{port}/v1"


def wait_until_up(server: Any, url: str, seconds: float = 60) -> None:
    """Poll the server's /models until it answers (the model loads first), failing if it exits or takes too long."""
    import time

    import httpx

    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert server.poll() is None and time.monotonic() < deadline, "server did not start"
        time.sleep(0.1)
