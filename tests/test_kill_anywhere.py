"""SIGKILL each long command at random points (a seeded draw of teacher requests or training steps), resume it,
and compare with an unbroken run: the same samples, rounds and losses (within float noise), no unit done twice.

Each run is a process of its own (tests/kill_harness.py) on the fake teacher, stand-in judges and policies and a
tiny trainer model, so the kill is real: no cleanup, no `finally`."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

HARNESS = Path(__file__).parent / "kill_harness.py"
KILLS = 3  # kill attempts per command; the README's reliability table quotes the kills survived


def run(command: str, home: Path, kill_after: int = 0) -> tuple[int, dict[str, Any]]:
    out = home.parent / f"{home.name}-{command}.json"
    out.unlink(missing_ok=True)
    env = {**os.environ, "KILL_AFTER": str(kill_after), "PYTHONHASHSEED": "0"}
    done = subprocess.run([sys.executable, str(HARNESS), command, str(home), str(out)], env=env,
                          capture_output=True, text=True, timeout=900)
    if done.returncode not in (0, -9):
        raise AssertionError(f"{command} failed:\n{done.stderr[-3000:]}")
    return done.returncode, json.loads(out.read_text()) if done.returncode == 0 else {}


def same(a: Any, b: Any, where: str = "") -> None:
    """Equal, with floats (losses, scores) equal within float noise."""
    if isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-4, abs=1e-6), where
    elif isinstance(a, dict) and isinstance(b, dict):
        assert set(a) == set(b), where
        for key in a:
            same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), where
        for k, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{where}[{k}]")
    else:
        assert a == b, where


@pytest.mark.slow
@pytest.mark.parametrize("command", ["generate", "train", "evaluate", "judge", "tao", "build"])
def test_killed_anywhere_it_resumes_to_the_unbroken_result(tmp_path: Path, command: str) -> None:
    code, unbroken = run(command, tmp_path / "unbroken")
    assert code == 0 and unbroken["calls"] > 3
    rng = random.Random(command)  # the same kill points on every run of the suite
    home, kills, result = tmp_path / "broken", 0, None
    for _ in range(KILLS):
        code, finished = run(command, home, rng.randint(1, max(1, unbroken["calls"] // 3)))
        if code == 0:  # this process finished before its kill point
            result = finished
            break
        kills += 1
    if result is None:
        code, result = run(command, home)
        assert code == 0
    print(f"{command}: {kills} kills survived")
    assert kills >= 2, f"only {kills} kills landed"
    same(result["result"], unbroken["result"], command)
    for journal in home.rglob("journal.jsonl"):  # generate: every finished unit is in its journal once
        units = [json.loads(line)["unit"] for line in journal.read_text().splitlines()]
        assert len(units) == len(set(units)), journal
    for metrics in home.rglob("metrics.jsonl"):  # training: no step was logged, so trained, twice
        steps = [(r["phase"], r["step"]) for r in map(json.loads, metrics.read_text().splitlines())]
        assert len(steps) == len(set(steps)), metrics
