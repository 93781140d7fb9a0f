"""`seedlab init`."""

from __future__ import annotations

import click


@click.command()
@click.option("--force", is_flag=True, help="Overwrite the config and the example files if they exist.")
def init(force: bool) -> None:
    """Create the config, an example taxonomy repository and its knowledge documents."""
    from seedlab.config import load_settings
    from seedlab.workspace import init_workspace

    settings = load_settings()
    result = init_workspace(settings, force=force)
    for line in result.created:
        click.echo(f"created  {line}")
    for line in result.kept:
        click.echo(f"kept     {line}")
    if not result.created:
        click.echo(f"Nothing changed: seedlab is already set up in {settings.home.data} (--force overwrites).")
    click.echo("Next: seedlab taxonomy diff --taxonomy-base empty")
