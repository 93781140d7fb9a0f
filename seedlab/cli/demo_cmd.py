"""`seedlab demo`."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--home", type=click.Path(file_okay=False, path_type=Path),
              help="Scratch SEEDLAB_HOME for the demo (default: a new temporary folder).")
def demo(home: Path | None) -> None:
    """Run the whole workflow on the bundled examples in a scratch home: init, taxonomy diff, data generate,
    model train, model evaluate (base vs trained, held-out questions) and one chat answer, each stage timed."""
    from seedlab.cli._progress import leaf_bars, step_bars
    from seedlab.demo import run_demo

    run_demo(home, click.echo, leaf_bars, step_bars)
