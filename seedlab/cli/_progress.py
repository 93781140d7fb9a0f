"""Progress bars on stderr for the long commands: one bar per SDG leaf, one per training phase."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any


@contextlib.contextmanager
def _bars(*extra: Any, disable: bool = False) -> Iterator[Any]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), *extra)
    with Progress(*columns, console=Console(stderr=True), disable=disable) as bars:
        yield bars


class LeafBars:
    """`progress(leaf, done, total)` with a bar per leaf and, once `set_plan` gives the generate plan, one bar
    for the whole run whose time left is the plan's: each leaf's planned seconds times its share not yet done."""

    def __init__(self, bars: Any) -> None:
        self.bars = bars
        self.tasks: dict[str, Any] = {}
        self.planned: dict[str, float] = {}
        self.left: dict[str, float] = {}
        self.plan_task: Any = None

    def set_plan(self, plans: list[Any]) -> None:
        self.planned = {p.path: p.seconds for p in plans}
        self.left = dict.fromkeys(self.planned, 1.0)
        total = max(1, round(sum(self.planned.values())))
        self.plan_task = self.bars.add_task(self._describe(), total=total, loss="")

    def __call__(self, leaf: str, done: int, total: int) -> None:
        if leaf not in self.tasks:
            self.tasks[leaf] = self.bars.add_task(leaf, total=total, loss="")
        self.bars.update(self.tasks[leaf], completed=done, total=total)
        if self.plan_task is not None and leaf in self.left:
            self.left[leaf] = 1 - done / total if total else 0.0
            spent = sum(self.planned[k] * (1 - v) for k, v in self.left.items())
            self.bars.update(self.plan_task, completed=round(spent), description=self._describe())

    def remaining_seconds(self) -> float:
        return sum(self.planned[k] * v for k, v in self.left.items())

    def _describe(self) -> str:
        return f"plan: ~{self.remaining_seconds() / 60:.1f} min left"


def _step_updater(bars: Any) -> Callable[[dict[str, Any]], None]:
    tasks: dict[str, Any] = {}

    def update(row: dict[str, Any]) -> None:
        if row["phase"] not in tasks:
            tasks[row["phase"]] = bars.add_task(f"phase {row['phase']}", total=row["steps"], loss="loss -")
        bars.update(tasks[row["phase"]], completed=row["step"], total=row["steps"], loss=f"loss {row['loss']:.3f}")

    return update


@contextlib.contextmanager
def leaf_bars(disable: bool = False) -> Iterator[LeafBars]:
    """`progress(leaf, done, total)` for `seedlab.sdg.generate`."""
    with _bars(disable=disable) as bars:
        yield LeafBars(bars)


@contextlib.contextmanager
def step_bars() -> Iterator[Callable[[dict[str, Any]], None]]:
    """`progress(row)` for `seedlab.train.train`, fed with each step's metrics row."""
    from rich.progress import TextColumn

    with _bars(TextColumn("{task.fields[loss]}")) as bars:
        yield _step_updater(bars)


@contextlib.contextmanager
def build_bars(disable: bool = False) -> Iterator[tuple[LeafBars, Callable[[dict[str, Any]], None]]]:
    """Both kinds in one display (one live display at a time): leaves of `seedlab build`'s SDG, then phases."""
    from rich.progress import TextColumn

    with _bars(TextColumn("{task.fields[loss]}"), disable=disable) as bars:
        yield LeafBars(bars), _step_updater(bars)
