"""The PNG charts of runs (training loss, evaluation, judge rounds, TAO rounds)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def chart(target: Path, size: tuple[float, float] = (6, 4)) -> Iterator[Any]:
    """The axes of a new figure, written to `target` as PNG when the block ends (write, then rename); nothing is
    written when the block raises."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and CI
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=size)
    try:
        yield axes
        figure.tight_layout()
        partial = target.with_name(f".{target.stem}.partial.png")
        figure.savefig(partial)
        partial.replace(target)
    finally:
        plt.close(figure)
