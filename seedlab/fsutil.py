"""Small file-system helpers shared by every stage."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any


def write_text_atomic(path: Path, text: str) -> None:
    """Write text so readers see the old file or the whole new one, never half (write, then rename)."""
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    # A temp file of its own per writer: two threads writing one path (a shared cache entry) never mix bytes.
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with open(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the files seedlab writes are ordinary ones
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk keeps the old file, and no half-written copy takes its space
        raise


# Errors of the place written to, not of seedlab: the CLI names the file and says what to do in one line.
WRITE_ERRORS = {errno.ENOSPC: "no space left", errno.EDQUOT: "disk quota exceeded",
                errno.EROFS: "read-only file system", errno.EACCES: "permission denied", errno.EPERM: "not permitted"}


FULL_DISK_BYTES = 1 << 20  # a write that failed with less free than this under its folder failed for want of space


def disk_full_error(folder: Path) -> OSError | None:
    """ENOSPC naming `folder` when a write there just failed for want of space, else None. torch, safetensors and
    llama.cpp report a full disk as errors of their own (or a bare return code); this turns it back into what it
    is, so the CLI names the place in one line. Call it before deleting the partial file, which holds the space."""
    import shutil

    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return None
    return OSError(errno.ENOSPC, "No space left on device", str(folder)) if free < FULL_DISK_BYTES else None


def write_error_message(exc: OSError) -> str | None:
    """One line for a write that failed because of where it writes (full disk, read-only, no permission)."""
    if exc.errno not in WRITE_ERRORS:
        return None
    where = f" at {exc.filename}" if exc.filename else ""
    return (f"{WRITE_ERRORS[exc.errno]}{where}: free space or fix the permissions, then run the same command "
            "again (finished work is kept and resumes)")


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON object from a file, or {} when the file is missing, unreadable or holds something else."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # RecursionError: JSON nested deeper than Python's stack
        return {}
    return data if isinstance(data, dict) else {}


def new_run_dir(root: Path) -> Path:
    """A new folder under `root` named by the UTC time (YYYYmmdd-HHMMSS, then -2, -3... within one second)."""
    from datetime import UTC, datetime

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    root.mkdir(parents=True, exist_ok=True)
    for suffix in range(1, 1000):
        run_dir = root / (stamp if suffix == 1 else f"{stamp}-{suffix}")
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:
            continue
    raise FileExistsError(f"{root}: too many runs started in one second")


def read_jsonl_lines(path: Path, what: str) -> list[tuple[int, Any]]:
    """(line number, parsed value) for each non-blank line of a JSONL file a user wrote; an unreadable file or
    a line that is not JSON raises SeedlabError naming the file and line."""
    from seedlab.errors import SeedlabError

    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SeedlabError(f"{path}: cannot read the {what} file ({exc})") from exc
    values = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            values.append((number, json.loads(line)))
        except ValueError as exc:
            raise SeedlabError(f"{path}:{number}: not a JSON object ({exc.args[0]})") from exc
        except RecursionError as exc:
            raise SeedlabError(f"{path}:{number}: JSON nested too deeply to read") from exc
    return values


def read_jsonl_rows(path: Path, needs: tuple[str, ...], what: str) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSONL file whose objects must hold non-empty strings
    under `needs`; the first bad line raises SeedlabError naming the file and line (input a user wrote)."""
    from seedlab.errors import SeedlabError

    rows = []
    for number, row in read_jsonl_lines(path, what):
        if not isinstance(row, dict) or not all(isinstance(row.get(k), str) and row[k].strip() for k in needs):
            names = ", ".join(f'"{k}"' for k in needs[:-1]) + f' and "{needs[-1]}"' if len(needs) > 1 else needs[0]
            raise SeedlabError(f"{path}:{number}: needs {names} strings")
        rows.append((number, row))
    if not rows:
        raise SeedlabError(f"{path}: no {what} in the file")
    return rows
