"""SDG on the real default model: a knowledge leaf end to end, and a run killed with SIGKILL then resumed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import git
import pytest
from helpers import commit_all

from seedlab.config import load_settings
from seedlab.sdg import GenerateOptions, generate
from seedlab.workspace import init_workspace

pytestmark = pytest.mark.integration

KNOWLEDGE = "knowledge/community/seed_libraries/halvane"
FREEFORM = "compositional_skills/writing/rewriting/formal_tone"


def _only(leaf: str, home: Path) -> Path:
    """The example taxonomy reduced to one leaf (committed), so a test generates for that leaf alone."""
    init_workspace(load_settings())
    taxonomy = home / "taxonomy"
    repo = git.Repo(taxonomy)
    for other in (KNOWLEDGE, FREEFORM, "compositional_skills/extraction/meetings/action_items"):
        if other != leaf:
            shutil.rmtree(taxonomy / other)
    commit_all(repo, "keep one leaf")
    return taxonomy


def _lines(path: Path) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_knowledge_leaf_on_the_default_model(seedlab_home: Path) -> None:
    _only(KNOWLEDGE, seedlab_home)
    result = generate(load_settings(), GenerateOptions(taxonomy_base="empty", scale=1))
    samples = _lines(result.run_dir / "knowledge.jsonl")
    generated = [s for s in samples if s["metadata"]["source"] == "generated"]
    assert generated, result.stats
    for sample in samples:
        meta = sample["metadata"]
        assert [m["role"] for m in sample["messages"]] == ["user", "assistant"]
        assert meta["leaf"] == f"{KNOWLEDGE}/qna.yaml" and meta["unmask"] is False
        assert meta["teacher"]["model"] == "smollm2-135m-instruct" and len(meta["teacher"]["sha256"]) == 64
        assert meta["seed_blob"] and meta["taxonomy_commit"] and meta["templates"]["version"] >= 1
    for sample in generated:
        assert sample["metadata"]["checks"]["faithfulness"] is True
        assert sample["messages"][0]["content"].endswith("?")
    assert result.stats["teacher_tokens"] > 0


def test_killed_generation_resumes_without_duplicates_or_losses(seedlab_home: Path) -> None:
    _only(FREEFORM, seedlab_home)
    env = {**os.environ, "SEEDLAB_HOME": str(seedlab_home)}
    command = [sys.executable, "-m", "seedlab", "data", "generate", "--taxonomy-base", "empty", "--scale", "2",
               "--quiet"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journals = seedlab_home / "datasets"
    deadline = time.monotonic() + 300
    finished_before: list[dict] = []  # type: ignore[type-arg]
    while time.monotonic() < deadline and process.poll() is None:  # wait for two finished units, then kill
        found = list(journals.glob("*/leaves/*/journal.jsonl"))
        if found and len(found[0].read_text().splitlines()) >= 2:
            process.send_signal(signal.SIGKILL)
            process.wait()
            finished_before = _lines(found[0])
            break
        time.sleep(0.2)
    assert finished_before, "the run finished or stalled before it could be killed"
    run_dir = found[0].parents[2]
    assert json.loads((run_dir / "run.json").read_text())["status"] == "running"

    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert run_dir.name in rerun.stdout  # the same run, resumed
    journal = _lines(run_dir / "leaves" / "compositional_skills__writing__rewriting__formal_tone" / "journal.jsonl")
    units = [entry["unit"] for entry in journal]
    assert len(units) == len(set(units))  # no unit ran twice
    assert journal[: len(finished_before)] == finished_before  # finished work kept as it was
    samples = _lines(run_dir / "skills.jsonl")
    ids = [s["metadata"]["id"] for s in samples if s["metadata"]["source"] == "generated"]
    assert len(ids) == len(set(ids))
    kept_before = {r["id"] for entry in finished_before for r in entry["records"] if r["sample"]}
    final_candidates = {r["id"] for entry in journal for r in entry["records"] if r["sample"]}
    assert kept_before <= final_candidates  # nothing finished before the kill was lost
    for sample in samples:
        if sample["metadata"]["source"] == "generated":
            judge = sample["metadata"]["judge"]  # the default likelihood judge rated it
            assert judge["rating"] >= 2 and judge["kind"] == "likelihood" and judge["score"] >= 0.0  # its low cut
