"""`seedlab tao run`."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def tao() -> None:
    """Tune a model from unlabeled prompts (TAO): spend compute while tuning, not while serving."""


@tao.command("run")
@click.option("--prompts", type=click.Path(exists=True, path_type=Path),
              help="Unlabeled prompts: JSONL with \"prompt\" or \"messages\" (default: the shipped example, JSON "
              "answers with fields a and b).")
@click.option("--from-log", is_flag=True, help="Add the prompts `seedlab model serve` logged.")
@click.option("--scorer", "scorers", multiple=True, metavar="SPEC[=WEIGHT]",
              help="Repeatable: judge (the judge's 1-3 rating), json, python, sql, schema:FILE, or module:function "
              "(your Python function of prompt and response, returning a number). Default: judge.")
@click.option("--samples", type=click.IntRange(2), help="Candidates per prompt and round (default: tao.samples).")
@click.option("--rounds", type=click.IntRange(1), help="Rounds of candidates, scores and tuning (default: tao.rounds).")
@click.option("--method", type=click.Choice(["dpo", "rft"]), help="dpo: best against worst; rft: fine-tune on the "
              "best responses (default: tao.method).")
@click.option("--model", help="The model to tune (default: model.default).")
@click.option("--judge", "judge_ref", help="Judge for the judge scorer and the report (default: eval.judge, else "
              "sdg.teacher).")
@click.option("--resume", help="Continue a killed run (its id under the tao folder, or its path).")
def run_cmd(prompts: Path | None, from_log: bool, scorers: tuple[str, ...], samples: int | None, rounds: int | None,
            method: str | None, model: str | None, judge_ref: str | None, resume: str | None) -> None:
    """For each prompt, sample candidates from the current policy with varied strategies (plain, careful,
    step-by-step, several temperatures), score them, and tune a LoRA adapter toward the best (DPO against the
    worst, reference = the same model with the adapter off; or RFT). A held-out share of the prompts measures
    the start and every round: score, mean response length, and the judge's verdict on tuned vs start."""
    from seedlab.cli._progress import leaf_bars
    from seedlab.config import load_settings
    from seedlab.tao import TaoOptions, render_report, run_tao

    settings = load_settings()
    options = TaoOptions(prompts=prompts, from_log=from_log, scorers=scorers, samples=samples, rounds=rounds,
                         method=method, model=model, judge=judge_ref, resume=resume)
    with leaf_bars() as progress:
        result = run_tao(settings, options, click.echo, progress)
    click.echo(f"report: {result.run_dir / 'report.json'}, chart: {result.run_dir / 'chart.png'}")
    if result.adapter:
        click.echo(f"adapter: {result.adapter}; next: seedlab model convert {result.adapter}, or seedlab model chat "
                   f"--adapter {result.adapter}")
    click.echo(render_report(result))
