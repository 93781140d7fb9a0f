"""Run folders of long jobs (`model train`, `judge train`, `tao run`): open a new one or the one to resume, with
the options it was started with, and mark it finished. Each holds a run.json: id, times, status and options."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from seedlab.errors import SeedlabError
from seedlab.fsutil import new_run_dir, read_json_object, write_text_atomic

Options = TypeVar("Options")
LOCK_FILE = ".lock"  # in a run folder: the flock a running job holds, and who holds it (JSON)
_held: dict[Path, int] = {}  # run folder -> the open lock file of a run this process works on
Progress = Callable[[str, int, int], None]  # (stage or leaf, done, total): what a long job shows a progress bar


def no_progress(_stage: str, _done: int, _total: int) -> None:
    """A Progress that shows nothing."""


def open_run(root: Path, resume: str | None, options: Options, what: str) -> tuple[Path, dict[str, Any], Options]:
    """(folder, run.json, options) of a long job: the run `resume` names (an id under `root`, or a path) with the
    options it was started with, or a new run recording `options` (a dataclass)."""
    from seedlab.config import dataclass_from_json
    from seedlab.errors import ConfigError

    if resume:
        run_dir = Path(resume) if Path(resume).is_dir() else root / resume
        info = read_json_object(run_dir / "run.json")
        if not info:
            raise SeedlabError(f"no {what} run {resume!r} in {root}; its folder name is printed at start")
        try:
            saved = dataclass_from_json(type(options), info.get("options", {}), run_dir / "run.json")
        except ConfigError as exc:
            raise SeedlabError(f"{exc}; this run was started by another seedlab version: start a new one") from exc
        lock_run(run_dir, what)
        return run_dir, info, saved
    run_dir = new_run_dir(root)
    lock_run(run_dir, what)
    info = {"id": run_dir.name, "created": datetime.now(UTC).isoformat(timespec="seconds"), "status": "running",
            "options": _to_json(dataclasses.asdict(options))}  # type: ignore[call-overload]
    write_text_atomic(run_dir / "run.json", json.dumps(info, indent=2))
    return run_dir, info, options


def _to_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_json(v) for v in value]
    return str(value) if isinstance(value, Path) else value


def finish_run(run_dir: Path, info: dict[str, Any], **results: Any) -> None:
    """Mark a run finished in its run.json, with what it produced, and let go of its lock."""
    info.update(status="finished", finished=datetime.now(UTC).isoformat(timespec="seconds"), **results)
    write_text_atomic(run_dir / "run.json", json.dumps(info, indent=2))
    release_run(run_dir)


class RunBusy(SeedlabError):
    """Another process is working on this run."""


def lock_run(run_dir: Path, what: str) -> None:
    """Hold the run's lock until finish_run or the end of this process; another process on the same run stops
    with a message naming the holder (pid, command, since when). The kernel drops an flock when its process dies,
    so a killed job never leaves a stale lock. Within one process the lock is re-entrant (a resume after an error)."""
    key = run_dir.resolve()
    if key in _held:
        return
    try:
        import fcntl
    except ImportError:  # Windows: no flock; runs are not locked there
        return
    fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise RunBusy(f"{what} run {run_dir.name} is in use by pid {holder.get('pid', '?')} "
                      f"(`{holder.get('command', '?')}`, since {holder.get('since', '?')}): wait for it to end or stop "
                      "it, then run the command again") from None
    command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else what
    record = {"pid": os.getpid(), "command": command, "since": datetime.now(UTC).isoformat(timespec="seconds")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(record).encode(), 0)
    _held[key] = fd


def release_run(run_dir: Path) -> None:
    """Let go of a run's lock if this process holds it."""
    fd = _held.pop(run_dir.resolve(), None)
    if fd is not None:
        os.close(fd)  # closing the last descriptor releases the flock


def _holder(fd: int) -> dict[str, Any]:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def run_status(run_dir: Path) -> str | None:
    """"running" or "finished" from a run folder's run.json; None when it has none."""
    return read_json_object(run_dir / "run.json").get("status")
