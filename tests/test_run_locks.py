"""One run, one process: a second process on the same run stops with the holder named; a killed holder frees it;
different runs proceed side by side."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from seedlab.cli import cli
from seedlab.runs import LOCK_FILE, RunBusy, finish_run, lock_run, open_run, release_run
from seedlab.tao import TaoOptions

HOLD = """
import sys
from pathlib import Path
from seedlab.runs import lock_run
lock_run(Path(sys.argv[1]), "tao")
print("held", flush=True)
sys.stdin.read()  # hold until the test closes stdin or kills this process
"""


def holder(run_dir: Path) -> subprocess.Popen[str]:
    """Another process holding the run's lock (it says "held" once it does)."""
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir), "tao", "run", "--rounds", "2"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    return process


def test_a_second_process_on_the_same_run_is_told_who_holds_it(tmp_path: Path) -> None:
    run_dir, info, _ = open_run(tmp_path, None, TaoOptions(), "tao")
    finish_run(run_dir, info)  # this process lets go; another takes the run
    other = holder(run_dir)
    try:
        busy = rf"tao run {run_dir.name} is in use by pid {other.pid} \(`-c .* tao run --rounds 2`, since 20"
        with pytest.raises(RunBusy, match=busy):
            open_run(tmp_path, run_dir.name, TaoOptions(), "tao")
        assert json.loads((run_dir / LOCK_FILE).read_text())["pid"] == other.pid
    finally:
        other.kill()
        other.wait()
    _, _, options = open_run(tmp_path, run_dir.name, TaoOptions(), "tao")  # SIGKILL left no stale lock
    assert options == TaoOptions()
    assert json.loads((run_dir / LOCK_FILE).read_text())["pid"] == os.getpid()


def test_a_holder_that_ends_normally_frees_the_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    other = holder(run_dir)
    with pytest.raises(RunBusy):
        lock_run(run_dir, "tao")
    other.send_signal(signal.SIGTERM)
    other.wait()
    lock_run(run_dir, "tao")


def test_different_runs_proceed_side_by_side(tmp_path: Path) -> None:
    first = tmp_path / "a"
    second = tmp_path / "b"
    first.mkdir()
    second.mkdir()
    other = holder(first)
    try:
        lock_run(second, "tao")  # another run of the same home is not blocked
        lock_run(second, "tao")  # and this process may resume its own run again (re-entrant)
    finally:
        other.kill()
        other.wait()


def test_the_cli_prints_one_line_naming_the_holder(seedlab_home: Path) -> None:
    from seedlab.config import load_settings
    from seedlab.train import TrainOptions

    settings = load_settings()
    run_dir, info, _ = open_run(settings.checkpoints_path, None, TrainOptions(), "training")
    finish_run(run_dir, info)
    other = holder(run_dir)
    try:
        result = CliRunner().invoke(cli, ["model", "train", "--resume", run_dir.name])
    finally:
        other.kill()
        other.wait()
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [result.output.strip()]
    assert f"in use by pid {other.pid}" in result.output and "Traceback" not in result.output


def test_a_second_data_generate_of_the_same_run_stops(seedlab_home: Path) -> None:
    from helpers import good_responder

    from seedlab.backends import FakeBackend, Request
    from seedlab.config import load_settings
    from seedlab.sdg import GenerateOptions, generate
    from seedlab.workspace import init_workspace

    init_workspace(load_settings())
    settings = load_settings()
    settings.config.eval.judge = None

    def dying(_request: Request, _index: int) -> str:
        raise RuntimeError("the teacher died")

    with pytest.raises(RuntimeError):
        generate(settings, GenerateOptions(taxonomy_base="empty"), teacher=FakeBackend(dying))
    (run,) = list(settings.datasets_path.iterdir())
    release_run(run)  # as if this process had died, and another had taken the run over
    other = holder(run)
    try:
        with pytest.raises(RunBusy, match=rf"data generate run {run.name} is in use by pid {other.pid}"):
            generate(settings, GenerateOptions(taxonomy_base="empty"), teacher=FakeBackend(good_responder))
    finally:
        other.kill()
        other.wait()
    result = generate(settings, GenerateOptions(taxonomy_base="empty"), teacher=FakeBackend(good_responder))
    assert result.run_dir == run and result.stats["files"]["knowledge.jsonl"] > 0
