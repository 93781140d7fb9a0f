"""A full disk or a read-only place: one clear line, finished work intact, and a resume once space is back.

The tests mount a small tmpfs inside the test (root can; CI runs as root), so the kernel itself says ENOSPC."""

from __future__ import annotations

import errno
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import good_responder

from seedlab.backends import FakeBackend
from seedlab.cli import cli
from seedlab.config import Settings, load_settings
from seedlab.fsutil import write_text_atomic
from seedlab.sdg import GenerateOptions, generate
from seedlab.workspace import init_workspace


def mount(point: Path, options: str) -> None:
    point.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()}); root can, as in CI")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    point = tmp_path / "disk"
    mount(point, "size=400k")
    yield point
    subprocess.run(["umount", "-l", str(point)], check=False)


def grow(point: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=8m", str(point)], check=True)


def settings_on(datasets: Path | None = None) -> Settings:
    init_workspace(load_settings())
    settings = load_settings()
    settings.config.eval.judge = None
    if datasets is not None:
        settings.config.paths.datasets = str(datasets)
    return settings


def messages(run: Path) -> list[list[dict[str, str]]]:
    return [json.loads(line)["messages"] for name in ("knowledge.jsonl", "skills.jsonl")
            for line in (run / name).read_text().splitlines()]


def test_generate_on_a_full_disk_keeps_its_journal_and_resumes(small_disk: Path, seedlab_home: Path,
                                                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_on(small_disk / "datasets")
    with pytest.raises(OSError) as failed:
        generate(settings, GenerateOptions(taxonomy_base="empty"), teacher=FakeBackend(good_responder))
    assert failed.value.errno == errno.ENOSPC
    (run,) = list((small_disk / "datasets").iterdir())
    assert not list(run.rglob(".*.tmp"))  # no half-written copy left taking the space
    journals = list(run.rglob("journal.jsonl"))
    whole = [line for j in journals for line in j.read_text().splitlines()[:-1]]
    assert journals and all(json.loads(line)["unit"] for line in whole)  # every line but a torn tail is whole
    grow(small_disk)
    resumed = generate(settings, GenerateOptions(taxonomy_base="empty"), teacher=FakeBackend(good_responder))
    assert resumed.run_dir == run
    monkeypatch.setenv("SEEDLAB_HOME", str(tmp_path / "unbroken"))
    unbroken = generate(settings_on(), GenerateOptions(taxonomy_base="empty"), teacher=FakeBackend(good_responder))
    assert messages(resumed.run_dir) == messages(unbroken.run_dir)  # the same samples as a run never stopped


def test_an_atomic_write_that_fails_keeps_the_old_file(small_disk: Path) -> None:
    target = small_disk / "state.json"
    write_text_atomic(target, "old")
    with pytest.raises(OSError) as failed:
        write_text_atomic(target, "x" * 600_000)
    assert failed.value.errno == errno.ENOSPC
    assert target.read_text() == "old" and [p.name for p in small_disk.iterdir()] == ["state.json"]


def test_a_read_only_home_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "readonly"
    mount(home, "size=64k,ro")
    try:
        monkeypatch.setenv("SEEDLAB_HOME", str(home))
        result = CliRunner().invoke(cli, ["init"])
    finally:
        subprocess.run(["umount", "-l", str(home)], check=False)
    assert result.exit_code == 1
    assert result.output.strip().startswith("error: read-only file system at ")
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_training_on_a_full_disk_keeps_its_last_checkpoint_and_resumes(tmp_path: Path, seedlab_home: Path) -> None:
    from test_train import assert_same_losses, tiny_loader, unbroken_run

    from seedlab.train import TrainOptions, train

    settings, options, unbroken = unbroken_run(tmp_path)
    disk = tmp_path / "disk"
    mount(disk, "size=600k")  # room for two of the tiny model's ~240 KB checkpoints, not a third
    try:
        settings.config.paths.checkpoints = str(disk)
        with pytest.raises(OSError) as failed:
            train(settings, options, lambda _: None, tiny_loader)
        assert failed.value.errno == errno.ENOSPC  # torch's own error for it is named as what it is
        (run,) = list(disk.iterdir())
        phase = run / "phase-knowledge"
        assert [p.name for p in sorted(phase.glob("*step-*"))] == ["step-000005", "step-000010"]
        grow(disk)
        resumed = train(settings, TrainOptions(resume=run.name), lambda _: None, tiny_loader)
        assert resumed.run_dir == run
        assert_same_losses(resumed, unbroken)
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.mark.integration
def test_model_conversions_on_a_full_disk_say_so_and_leave_no_partial_file(tmp_path: Path) -> None:
    """llama.cpp's quantizer answers a full disk with a bare return code, and the GGUF writer with its own error:
    both come out as ENOSPC naming the folder (the CLI's one line), and the half-written file gives back its space."""
    from seedlab.backends import DEFAULT_MODEL, llama_file, resolve_model
    from seedlab.train import requantize

    settings = settings_on()
    disk = tmp_path / "disk"
    mount(disk, "size=8m")  # the default model's Q8_0 copy is ~145 MB
    try:
        ref = resolve_model(DEFAULT_MODEL, settings.models_path)
        with pytest.raises(OSError) as quantizer:
            llama_file(ref, disk, "q8_0")
        with pytest.raises(OSError) as writer:
            requantize(settings, DEFAULT_MODEL, disk / "compared.gguf")
        for failed in (quantizer, writer):
            assert failed.value.errno == errno.ENOSPC and failed.value.filename.startswith(str(disk))
        assert not [p for p in disk.rglob("*") if p.is_file() and p.suffix in (".partial", ".gguf")]
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
