"""Run folders of long jobs (`model train`, `judge train`, `tao run`): open a new one or the one to resume, with
the options it was started with, and mark it finished. Each holds a run.json: id, times, status and options."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from seedlab.errors import SeedlabError
from seedlab.fsutil import new_run_dir, read_json_object, write_text_atomic

Options = TypeVar("Options")
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
        return run_dir, info, saved
    run_dir = new_run_dir(root)
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
    """Mark a run finished in its run.json, with what it produced."""
    info.update(status="finished", finished=datetime.now(UTC).isoformat(timespec="seconds"), **results)
    write_text_atomic(run_dir / "run.json", json.dumps(info, indent=2))


def run_status(run_dir: Path) -> str | None:
    """"running" or "finished" from a run folder's run.json; None when it has none."""
    return read_json_object(run_dir / "run.json").get("status")
