"""SDG over two `seedlab model serve` processes on loopback, one killed mid-run: the pool hands its requests to
the other and the run finishes with every unit and sample exactly once."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from test_integration_sdg import FREEFORM, _only

from seedlab.backends import make_backend
from seedlab.config import load_settings
from seedlab.sdg import GenerateOptions, generate

pytestmark = pytest.mark.integration


def _serve(home: Path) -> tuple[subprocess.Popen[str], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    env = {**os.environ, "SEEDLAB_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "seedlab", "model", "serve", "--port", str(port), "--no-log-prompts"]
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return server, f"http://127.0.0.1:{port}/v1"


def _wait(server: subprocess.Popen[str], url: str) -> None:
    deadline = time.monotonic() + 60
    while True:  # the model loads: poll with a deadline
        try:
            if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert server.poll() is None and time.monotonic() < deadline, "server did not start"
        time.sleep(0.1)


def test_two_endpoints_one_killed_mid_run_every_sample_once(seedlab_home: Path) -> None:
    _only(FREEFORM, seedlab_home)
    settings = load_settings()
    (first, url_a), (second, url_b) = _serve(seedlab_home), _serve(seedlab_home)
    try:
        _wait(first, url_a)
        _wait(second, url_b)
        teacher = make_backend(settings, None, [url_a, url_b])
        seen: list[int] = []

        def progress(_leaf: str, done: int, total: int) -> None:
            seen.append(done)
            if done == 2 and second.poll() is None:
                second.kill()  # gone mid-run, with requests of later units in flight or still to come

        options = GenerateOptions(taxonomy_base="empty", scale=2, pipeline="simple", workers=4)
        result = generate(settings, options, teacher=teacher, progress=progress)
        down = list(teacher.down)  # type: ignore[attr-defined]
        teacher.close()
    finally:
        for server in (first, second):
            server.kill()
            server.communicate(timeout=30)
    assert second.returncode is not None and first.returncode is not None
    assert len(down) == 1 and url_b.split("//")[1] in down[0]  # the killed server was left out, once
    folder = next((result.run_dir / "leaves").iterdir())
    units = [json.loads(line)["unit"] for line in (folder / "journal.jsonl").read_text().splitlines()]
    assert len(units) == len(set(units)) >= 3 and max(seen) > 2  # units ran after the kill, each once
    samples = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
    generated = [s for s in samples if s["metadata"].get("id")]
    assert generated and len({s["metadata"]["id"] for s in generated}) == len(generated)
    assert result.stats["leaves"][f"{FREEFORM}/qna.yaml"]["samples"] == len(generated)
