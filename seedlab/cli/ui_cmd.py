"""`seedlab ui`: the contributor page."""

from __future__ import annotations

import click


@click.command("ui")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback lets other machines reach the page.")
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True, help="Port to listen on.")
def ui(host: str, port: int) -> None:
    """Open a local page to write a seed file: a form checked as you type by `taxonomy validate`, the YAML it
    writes, a preview of the samples the teacher makes from it, and a commit on a new branch (never pushed).

    The address printed carries a token; requests without it are refused."""
    from seedlab.config import load_settings
    from seedlab.ui import run_ui

    run_ui(load_settings(), host, port, click.echo)
