"""`seedlab config init|show`."""

from __future__ import annotations

import click


@click.group()
def config() -> None:
    """Create or show the seedlab config."""


@config.command("init")
@click.option("--force", is_flag=True, help="Replace an existing config with the defaults.")
def config_init(force: bool) -> None:
    """Write a config file holding every default."""
    from seedlab.config import Config, Home, write_config

    path = Home.current().config_file
    if path.exists() and not force:
        click.echo(f"Nothing changed: {path} exists (--force replaces it with the defaults).")
        return
    write_config(path, Config())
    click.echo(f"wrote {path}")


@config.command("show")
def config_show() -> None:
    """Print the config in force and the paths it resolves to."""
    from seedlab.config import dump_config, load_settings

    settings = load_settings()
    source = settings.home.config_file if settings.home.config_file.exists() else "defaults (no config file)"
    click.echo(f"# from: {source}")
    click.echo(dump_config(settings.config), nl=False)
    click.echo("# resolved paths:")
    for name, path in settings.resolved_paths().items():
        click.echo(f"#   {name}: {path}")
