"""Progress bars on stderr for the long commands: one bar per SDG leaf, one per training phase."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from seedlab.runs import Progress


@contextlib.contextmanager
def _bars(*extra: Any, disable: bool = False) -> Iterator[Any]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), *extra)
    with Progress(*columns, console=Console(stderr=True), disable=disable) as bars:
        yield bars


def _leaf_updater(bars: Any) -> Progress:
    tasks: dict[str, Any] = {}

    def update(leaf: str, done: int, total: int) -> None:
        if leaf not in tasks:
            tasks[leaf] = bars.add_task(leaf, total=total, loss="")
        bars.update(tasks[leaf], completed=done, total=total)

    return update


def _step_updater(bars: Any) -> Callable[[dict[str, Any]], None]:
    tasks: dict[str, Any] = {}

    def update(row: dict[str, Any]) -> None:
        if row["phase"] not in tasks:
            tasks[row["phase"]] = bars.add_task(f"phase {row['phase']}", total=row["steps"], loss="loss -")
        bars.update(tasks[row["phase"]], completed=row["step"], total=row["steps"], loss=f"loss {row['loss']:.3f}")

    return update


@contextlib.contextmanager
def leaf_bars(disable: bool = False) -> Iterator[Progress]:
    """`progress(leaf, done, total)` for `seedlab.sdg.generate`."""
    with _bars(disable=disable) as bars:
        yield _leaf_updater(bars)


@contextlib.contextmanager
def step_bars() -> Iterator[Callable[[dict[str, Any]], None]]:
    """`progress(row)` for `seedlab.train.train`, fed with each step's metrics row."""
    from rich.progress import TextColumn

    with _bars(TextColumn("{task.fields[loss]}")) as bars:
        yield _step_updater(bars)


@contextlib.contextmanager
def build_bars(disable: bool = False) -> Iterator[tuple[Progress, Callable[[dict[str, Any]], None]]]:
    """Both kinds in one display (one live display at a time): leaves of `seedlab build`'s SDG, then phases."""
    from rich.progress import TextColumn

    with _bars(TextColumn("{task.fields[loss]}"), disable=disable) as bars:
        yield _leaf_updater(bars), _step_updater(bars)
