"""`seedlab build`, `build verify`, `build list`."""

from __future__ import annotations

from pathlib import Path

import click


@click.group(invoke_without_command=True)
@click.option("--previous", help="The release this one continues from (a build id from `seedlab build list`, or its "
              "folder): its samples are replayed (build.replay_share, default all) and its unchanged leaves cost no "
              "teacher call; training starts from the base model, or from its adapter with build.start: previous.")
@click.option("--resume", help="Finish a build that stopped (its id or folder).")
@click.option("--scale", type=click.IntRange(1), help="New samples aimed for per seed example (default: build.scale, "
              "else sdg.scale).")
@click.option("--teacher", help="Teacher model reference (default: sdg.teacher), or the endpoints' model name.")
@click.option("--endpoint-url", "endpoint_urls", multiple=True,
              help="An OpenAI-compatible teacher server; repeat it to spread the requests over several.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.pass_context
def build(ctx: click.Context, previous: str | None, resume: str | None, scale: int | None, teacher: str | None,
          endpoint_urls: tuple[str, ...], quiet: bool) -> None:
    """Build a release from the whole taxonomy: data for every leaf (unchanged leaves reuse earlier samples), the
    phases trained on new samples plus the earlier releases' replayed (all of them by default), the best checkpoint of
    each phase chosen on the leaves' questions, a regression check on general questions, and a release folder
    (model.gguf, adapter, data, MODEL_CARD.md, manifest.json). Settings: the config's `build` section."""
    if ctx.invoked_subcommand is not None:
        return
    from seedlab.build import BuildOptions
    from seedlab.build import build as run_build
    from seedlab.cli._progress import build_bars
    from seedlab.config import load_settings

    options = BuildOptions(previous=previous, resume=resume, scale=scale, teacher=teacher,
                           endpoint_urls=endpoint_urls)
    with build_bars(disable=quiet) as (leaves, steps):
        result = run_build(load_settings(), options, click.echo, leaves, steps)
    if result is None:
        return  # a torchrun rank other than 0: rank 0 reports
    regression = result.report["regression"]
    if regression["regressed"]:
        click.echo(f"warning: this build REGRESSED ({'; '.join(regression['reasons'])}); it is marked so in its "
                   "manifest and model card", err=True)
    click.echo(f"release: {result.release} (MODEL_CARD.md, model.gguf; next: seedlab model chat --model "
               f"{result.release / 'model.gguf'})")


@build.command("verify")
@click.argument("release", type=click.Path(exists=True, file_okay=False, path_type=Path))
def verify(release: Path) -> None:
    """Check every file of a release folder against the sha256 in its manifest.json."""
    from seedlab.build import verify_release
    from seedlab.errors import SeedlabError

    problems = verify_release(release)
    for line in problems:
        click.echo(f"{release}: {line}", err=True)
    if problems:
        raise SeedlabError(f"{release}: {len(problems)} files do not match the manifest")
    click.echo(f"{release}: every file matches manifest.json")


@build.command("list")
def list_builds() -> None:
    """The builds: id, status, taxonomy commit, the release each continues, and whether it regressed."""
    from seedlab.config import load_settings
    from seedlab.fsutil import read_json_object

    root = load_settings().builds_path
    runs = sorted(root.glob("*/run.json"))
    if not runs:
        click.echo(f"no builds in {root}; run `seedlab build`")
    for path in runs:
        info = read_json_object(path)
        flag = " REGRESSED" if info.get("regressed") else ""
        click.echo(f"{info.get('id', path.parent.name)}  {info.get('status', '?'):9} taxonomy "
                   f"{info.get('taxonomy', {}).get('commit', '?')[:12]}  continues {info.get('previous') or '-'}{flag}")
