"""Small builders shared by the tests: valid leaves and real git repositories in temp folders."""

from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path
from typing import Any

import git
import yaml

from seedlab.backends import Request

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


_VOCAB = ["apple", "bridge", "candle", "desk", "engine", "forest", "garden", "harbor", "island", "jacket", "kettle",
          "ladder", "meadow", "needle", "orchard", "pillow", "quarry", "river", "saddle", "timber", "umbrella",
          "valley", "wagon", "yarn", "zipper", "anchor", "basket", "cabin", "dragon", "ember", "falcon", "glacier",
          "hammer", "igloo", "jungle", "kayak", "lantern", "marble", "nectar", "oyster", "pepper", "quilt", "rocket",
          "salmon", "tunnel", "velvet", "walnut", "yogurt", "zebra"]
_PEOPLE = ["Ana", "Ben", "Carla", "Dev", "Mia", "Tom", "Priya", "Lee", "Sam", "Jo", "Rafael", "Nina", "Omar", "Ruth",
           "Ivan", "Kira", "Lars", "Maya", "Noor", "Olga"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
_OPENERS = ("What is known about", "Describe the role of", "Which main part does")
_TOKEN = re.compile(r"[A-Za-z][A-Za-z'\-]*|\d[\d,.]*\d|\d")


def reworded(question: str) -> str:
    """The fake teacher's rewording: the question's words backwards, which no near-duplicate check mistakes for it."""
    return " ".join(reversed(question.rstrip("?").split())) + "?"


def good_responder(request: Request, index: int) -> str:
    """A teacher that writes valid output for every template, the same for the same request and sample index."""
    text = (request.prompt or json.dumps(request.messages)) + f"|{request.seed}|{index}"
    rng = random.Random(hashlib.sha256(text.encode()).hexdigest())
    if request.json_schema is not None:
        if "verdict" in request.json_schema["properties"]:
            return '{"verdict": 1}'
        return '{"rating": 3, "reason": "fine"}'
    if request.prompt is None:  # the chat answer template
        return "Certainly: " + " ".join(rng.sample(_VOCAB, 6)) + "."
    prompt = request.prompt
    if prompt.endswith("Request:"):  # skill and grounded questions
        return " Please rewrite the " + " ".join(rng.sample(_VOCAB, 8))
    if prompt.endswith("Text:\n"):  # new meeting notes for the grounded skill
        a, b = rng.sample(_PEOPLE, 2)
        w = rng.sample(_VOCAB, 5)
        return (f"Weekly sync about the {w[0]} project. {a} will order the {w[1]} by {rng.choice(_DAYS)}. "
                f"{b} will repair the {w[2]} and the {w[3]} before {rng.choice(_DAYS)}. The {w[4]} issue is closed.")
    if prompt.endswith("In other words:"):  # a knowledge question reworded: the first sample rewords, the rest repeat
        question = re.findall(r"^Question: (.*)$", prompt, flags=re.MULTILINE)[-1]
        return f" {reworded(question)}" if index == 0 else f" {question}"
    fact = re.findall(r"^Fact: (.*)$", prompt, flags=re.MULTILINE)[-1]
    if prompt.endswith("Answer:"):
        return " " + fact
    assert prompt.endswith("Question:"), prompt
    title = re.findall(r"^Write a question about (.*) that the fact answers\.", prompt, flags=re.MULTILINE)[0]
    # A question from the fact's own rare words (names, numbers, long words), so it points at that fact.
    tokens = _TOKEN.findall(fact)
    caps = [t for t in tokens[1:] if t[0].isupper()]
    picked = (caps if len(caps) > 1 else [title, *caps]) + [t for t in tokens if t[0].isdigit()][:2]
    picked += [t for t in tokens if t.islower() and len(t) > 5][:2]
    return f" {_OPENERS[index % len(_OPENERS)]} {' '.join(picked[:9])}?"
