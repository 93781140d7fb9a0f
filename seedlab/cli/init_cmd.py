"""`seedlab init`."""

from __future__ import annotations

import click


@click.command()
@click.option("--force", is_flag=True, help="Overwrite the config and the example files if they exist.")
@click.option("--example-release", is_flag=True, help="Commit the example's second release into an initialised "
              "taxonomy: a new document, a knowledge leaf on it and a skill leaf (to try `seedlab build --previous`).")
def init(force: bool, example_release: bool) -> None:
    """Create the config, an example taxonomy repository and its knowledge documents."""
    from seedlab.config import load_settings
    from seedlab.workspace import add_example_release, init_workspace

    settings = load_settings()
    if example_release:
        docs, taxonomy = add_example_release(settings)
        click.echo(f"committed the second example release: documents @ {docs[:8]}, taxonomy @ {taxonomy[:8]}")
        return
    result = init_workspace(settings, force=force)
    for line in result.created:
        click.echo(f"created  {line}")
    for line in result.kept:
        click.echo(f"kept     {line}")
    if not result.created:
        click.echo(f"Nothing changed: seedlab is already set up in {settings.home.data} (--force overwrites).")
    click.echo("Next: seedlab taxonomy diff --taxonomy-base empty")
