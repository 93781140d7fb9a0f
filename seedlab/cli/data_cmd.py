"""`seedlab data generate|list|show`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from seedlab.sdg import LeafPlan, Rates


@click.group()
def data() -> None:
    """Generate training data from the taxonomy, and inspect earlier runs."""


@data.command()
@click.option("--taxonomy-base", help="Git ref to diff against, or 'empty' for every leaf (default: config).")
@click.option("--scale", type=click.IntRange(1), help="New samples aimed for per seed example (default: config).")
@click.option("--pipeline", type=click.Choice(["full", "simple"]), help="full judges every sample; simple does not.")
@click.option("--workers", type=click.IntRange(1),
              help="Units of work in flight (default: the endpoint's concurrency; 1 in-process).")
@click.option("--teacher", help="Teacher model reference (default: sdg.teacher), or the endpoint's model name.")
@click.option("--endpoint-url", "endpoint_urls", multiple=True,
              help="An OpenAI-compatible server to use as the teacher; repeat it to spread requests over several.")
@click.option("--max-minutes", type=click.FloatRange(min=0, min_open=True),
              help="A time budget: knowledge leaves' facts are capped, evenly over their documents, so the planned "
                   "work fits (the plan says what is left out).")
@click.option("--max-facts", type=click.IntRange(1), help="At most this many facts of each knowledge leaf, taken "
              "evenly over its documents.")
@click.option("--quiet", "-q", is_flag=True, help="No plan or progress bars, only the final line.")
def generate(taxonomy_base: str | None, scale: int | None, pipeline: str | None, workers: int | None,
             teacher: str | None, endpoint_urls: tuple[str, ...], max_minutes: float | None, max_facts: int | None,
             quiet: bool) -> None:
    """Expand the new or changed leaves into training data; rerunning the same command resumes it.

    Before the first request it prints the planned work per leaf (facts or seed examples, teacher requests and
    minutes, from the rates of this home's last run, else defaults measured on a 2-core CPU)."""
    from rich.console import Console

    from seedlab.cli._progress import leaf_bars
    from seedlab.config import load_settings
    from seedlab.sdg import GenerateOptions, generate, render_table

    options = GenerateOptions(taxonomy_base=taxonomy_base, scale=scale, pipeline=pipeline, workers=workers,
                              teacher=teacher, endpoint_urls=endpoint_urls, max_minutes=max_minutes,
                              max_facts=max_facts)
    with leaf_bars(disable=quiet) as progress:

        def on_plan(plans: list[LeafPlan], rates: Rates) -> None:
            print_plan(plans, rates)
            progress.set_plan(plans)  # the run's bar counts down the plan's minutes

        result = generate(load_settings(), options, progress=progress, on_plan=None if quiet else on_plan)
    if not quiet:
        Console().print(render_table(result.stats))
    for leaf, reason in result.empty_leaves:
        click.echo(f"warning: {leaf} produced no samples; most dropped at {reason}", err=True)
    files = result.stats["files"]
    click.echo(f"{result.run_dir}: knowledge.jsonl {files['knowledge.jsonl']} samples, skills.jsonl "
               f"{files['skills.jsonl']} ({files['replayed_knowledge']} replayed knowledge); "
               f"next: seedlab model train --data {result.run_dir.name}")


def print_plan(plans: list[LeafPlan], rates: Rates) -> None:
    """The planned work of a generate run, one line per leaf, and what a budget leaves out."""
    click.echo(f"plan ({rates.source}: {rates.seconds_per_request:.2f} s per teacher request, "
               f"{rates.requests_per_fact:.1f} requests per fact, {rates.requests_per_seed:.1f} per seed example):")
    for p in plans:
        what = f"{p.fact_cap or p.units} facts" if p.kind == "knowledge" else f"{p.units} seeds"
        cost = "reused, no requests" if p.reused else f"{p.requests:5} requests  ~{p.seconds / 60:4.1f} min"
        cut = f"  ({p.left_out} of {p.units} facts left out)" if p.left_out else ""
        click.echo(f"  {what:>10}  {cost}  {p.path}{cut}")
    total = sum(p.seconds for p in plans)
    click.echo(f"  total: {sum(p.requests for p in plans)} requests, ~{total / 60:.1f} min")


@data.command("list")
def list_runs() -> None:
    """The generation runs: date, status, leaves and sample counts."""
    from seedlab.config import load_settings
    from seedlab.sdg import run_summary

    root = load_settings().datasets_path
    runs = sorted(p.parent for p in root.glob("*/run.json"))
    if not runs:
        click.echo(f"no runs in {root}; create one with `seedlab data generate`")
        return
    click.echo(f"{'run':18} {'status':9} {'leaves':>6} {'knowledge':>9} {'skills':>7}  created")
    for run in runs:
        info = run_summary(run)
        files = info["stats"].get("files", {})
        click.echo(f"{run.name:18} {info.get('status', '?'):9} {len(info.get('leaves', [])):>6} "
                   f"{files.get('knowledge.jsonl', '-'):>9} {files.get('skills.jsonl', '-'):>7}  {info.get('created')}")


@data.command()
@click.argument("run")
@click.option("--samples", "count", default=3, show_default=True, help="Samples to print from each file.")
def show(run: str, count: int) -> None:
    """The drop table of a run and a few of its samples."""
    from rich.console import Console

    from seedlab.config import load_settings
    from seedlab.errors import SeedlabError
    from seedlab.sdg import render_table, run_summary

    folder = Path(run) if Path(run).is_dir() else load_settings().datasets_path / run
    info = run_summary(folder)
    if not info.get("stats"):
        raise SeedlabError(f"{run}: no finished run there; `seedlab data list` shows the runs")
    Console().print(render_table(info["stats"]))
    judge = (info.get("options") or {}).get("judge")
    teacher = (info.get("teacher") or {}).get("model", "?")
    rated_by = (f"{judge.get('kind', 'generative')} judge {judge.get('model') or judge.get('folder')}" if judge
                else f"the teacher {teacher} as a generative judge")
    click.echo(f"skill samples rated by: {rated_by}" if info.get("options", {}).get("pipeline") == "full"
               else "skill samples rated by: no judge (simple pipeline)")
    for name in ("knowledge.jsonl", "skills.jsonl"):
        lines = (folder / name).read_text(encoding="utf-8").splitlines()[:count]
        click.echo(f"--- {name}")
        for line in lines:
            sample = json.loads(line)
            turns = " | ".join(f"{m['role']}: {m['content'][:160]!r}" for m in sample["messages"])
            click.echo(f"{turns}\n    metadata: {json.dumps(sample['metadata'])[:300]}")
