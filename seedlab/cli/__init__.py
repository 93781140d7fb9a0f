"""The `seedlab` command: click groups only; each command calls one core function and prints."""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

import click

from seedlab import __version__
from seedlab.errors import SeedlabError


class SeedlabGroup(click.Group):
    """A click group that turns SeedlabError into one line on stderr and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SeedlabError as exc:
            if ctx.find_root().meta.get("seedlab.debug") or os.environ.get("SEEDLAB_DEBUG"):
                raise
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        except OSError as exc:  # only a full disk, a read-only place or a permission: anything else is a bug
            from seedlab.fsutil import write_error_message

            message = write_error_message(exc)
            if message is None or ctx.find_root().meta.get("seedlab.debug") or os.environ.get("SEEDLAB_DEBUG"):
                raise
            click.echo(f"error: {message}", err=True)
            sys.exit(1)


@click.group(cls=SeedlabGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="seedlab")
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Teach a language model new knowledge and skills from a handful of examples.

    Files live under $SEEDLAB_HOME when it is set, else in the XDG config, data and cache folders.
    """
    ctx.meta["seedlab.debug"] = debug


def _register() -> None:
    from seedlab.cli import (
        build_cmd,
        config_cmd,
        data_cmd,
        demo_cmd,
        init_cmd,
        judge_cmd,
        model_cmd,
        tao_cmd,
        taxonomy_cmd,
        ui_cmd,
    )

    cli.add_command(init_cmd.init)
    cli.add_command(config_cmd.config)
    cli.add_command(taxonomy_cmd.taxonomy)
    cli.add_command(data_cmd.data)
    cli.add_command(model_cmd.model)
    cli.add_command(judge_cmd.judge)
    cli.add_command(tao_cmd.tao)
    cli.add_command(demo_cmd.demo)
    cli.add_command(build_cmd.build)
    cli.add_command(ui_cmd.ui)


_register()


def quiet_libraries() -> None:
    """seedlab prints its own progress: no per-file loading bars or deprecation chatter from the libraries."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(transformers|peft)\b")


def main() -> None:
    """Console-script entry point."""
    quiet_libraries()
    cli(prog_name="seedlab")
