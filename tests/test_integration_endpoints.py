"""SDG over two `seedlab model serve` processes on loopback, one killed mid-run: the pool hands its requests to
the other and the run finishes with every unit and sample exactly once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import serve_process, wait_until_up
from test_integration_sdg import FREEFORM, _only

from seedlab.backends import make_backend
from seedlab.config import load_settings
from seedlab.sdg import GenerateOptions, generate

pytestmark = pytest.mark.integration


def test_two_endpoints_one_killed_mid_run_every_sample_once(seedlab_home: Path) -> None:
    _only(FREEFORM, seedlab_home)
    settings = load_settings()
    (first, url_a), (second, url_b) = (serve_process(seedlab_home, "--no-log-prompts") for _ in range(2))
    try:
        wait_until_up(first, url_a)
        wait_until_up(second, url_b)
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
