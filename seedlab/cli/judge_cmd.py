"""`seedlab judge train` and `judge evaluate`."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def judge() -> None:
    """Train and measure the judge that SDG, evaluation and TAO use."""


@judge.command("train")
@click.option("--instructions", type=click.Path(exists=True, path_type=Path),
              help="Unlabeled instructions: JSONL with \"prompt\" (or \"messages\", as in the serve prompt log), "
              "or a taxonomy folder whose seed questions are used (default: the shipped examples).")
@click.option("--iterations", type=click.IntRange(1), help="Rounds of verdict sampling and training (default: "
              "judge.iterations).")
@click.option("--samples", type=click.IntRange(2), help="Verdicts sampled per pair and round, half in each order "
              "(default: judge.samples).")
@click.option("--judge", "judge_ref", help="The starting judge model, a registry name or .gguf (default: eval.judge, "
              "else sdg.teacher).")
@click.option("--teacher", help="The model that writes modified instructions and responses (default: sdg.teacher).")
@click.option("--heldout", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Labelled pairs (prompt, chosen, rejected) that score every round (default: the shipped ones).")
@click.option("--kind", type=click.Choice(["reward", "generative"]), help="reward: a scalar reward model trained "
              "with the Bradley-Terry loss; generative: verdict traces (default: judge.kind).")
@click.option("--resume", help="Continue a killed run (its id under the judges folder, or its path).")
def train_cmd(instructions: Path | None, iterations: int | None, samples: int | None, judge_ref: str | None,
              teacher: str | None, heldout: Path | None, kind: str | None, resume: str | None) -> None:
    """Train the judge without labels (self-taught evaluator). For each instruction the teacher writes a modified
    instruction and answers both, so the answer to the original is known to be better.

    --kind reward (default): a reward model (the model with a scalar head and LoRA) learns to score the better
    answer higher, from these pairs and from corrupted copies of the good answers; it is written as a judge
    folder that `eval.judge` can name. --kind generative: the judge samples verdicts in both orders, the traces
    that pick the better answer train a LoRA adapter in rounds, and the best round is written as judge.gguf."""
    from seedlab.cli._progress import leaf_bars
    from seedlab.config import load_settings
    from seedlab.judge import JudgeTrainOptions, chance_line, render_rounds, train_judge

    settings = load_settings()
    options = JudgeTrainOptions(instructions=instructions, iterations=iterations, samples=samples, judge=judge_ref,
                                teacher=teacher, heldout=heldout, resume=resume, kind=kind)
    with leaf_bars() as progress:
        result = train_judge(settings, options, click.echo, progress)
    if result.kind == "reward":
        row = result.rounds[0]
        click.echo(f"report: {result.run_dir / 'report.json'}; judge: {result.judge} (set eval.judge to it)")
        click.echo(f"quality pairs: {chance_line(row['quality']['accuracy'], row['quality']['pairs'], 1)}")
        click.echo(f"held-out: {chance_line(row['accuracy'], row['pairs'], 1)}")
        click.echo(f"reward judge accuracy: held-out {100 * row['accuracy']:.1f}% ({row['pairs']} pairs), quality "
                   f"{100 * row['quality']['accuracy']:.1f}% ({row['quality']['pairs']} pairs); position-consistent "
                   f"100% by construction")
        return
    click.echo(render_rounds(result.rounds, result.best))
    click.echo(f"report: {result.run_dir / 'report.json'}, chart: {result.run_dir / 'chart.png'}")
    first, chosen = result.rounds[0], next(r for r in result.rounds if r["round"] == result.best)
    click.echo(f"judge: {result.judge} (round {result.best}); use it with `seedlab judge evaluate --judge "
               f"{result.judge} --pairs F`, or set eval.judge to it so SDG, model evaluate and TAO judge with it")
    click.echo(f"selected round: {chance_line(chosen['accuracy'], chosen['pairs'])}")
    click.echo(f"held-out accuracy: starting judge {100 * first['accuracy']:.1f}% -> selected "
               f"{100 * chosen['accuracy']:.1f}% (position-consistent {100 * first['consistent']:.1f}% -> "
               f"{100 * chosen['consistent']:.1f}%; {first['pairs']} pairs)")


@judge.command("evaluate")
@click.option("--judge", "judge_ref", help="Any judge: a generative model (registry name, .gguf such as `judge "
              "train`'s judge.gguf, or an adapter folder, merged into a GGUF first), a reward model folder from "
              "`judge train --kind reward`, or likelihood:MODEL (default: eval.judge, else sdg.teacher).")
@click.option("--pairs", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="Labelled pairs, JSONL: prompt, chosen, rejected.")
def evaluate_cmd(judge_ref: str | None, pairs: Path) -> None:
    """Accuracy on labelled pairs, each asked in both orders; also the share of position-consistent pairs and
    of unparseable verdicts."""
    from seedlab.config import load_settings
    from seedlab.judge import chance_line, evaluate_judge, load_pairs, score_line
    from seedlab.judge.judging import open_judge

    settings = load_settings()
    loaded = load_pairs(pairs)
    judge = open_judge(settings, judge_ref, click.echo)
    try:
        asked = "each in both orders" if judge.kind == "generative" else "each answer scored once"
        click.echo(f"judge {judge.model_id} ({judge.kind}): {len(loaded)} pairs, {asked}")
        score = evaluate_judge(judge, loaded)
    finally:
        judge.close()
    if judge.kind != "generative":
        click.echo(f"a {judge.kind} judge compares two scores, so it cannot prefer a position: position-consistent "
                   f"is 100% by construction")
    click.echo(chance_line(score.accuracy, score.pairs, 2 if judge.kind == "generative" else 1))
    click.echo(score_line(score))


@judge.command("list")
def list_cmd() -> None:
    """The judges trained in this home, with their held-out accuracy, newest first."""
    from seedlab.config import load_settings
    from seedlab.judge import trained_judges

    rows = trained_judges(load_settings())
    if not rows:
        click.echo("no trained judges yet; `seedlab judge train` makes one (likelihood:MODEL needs no training)")
    for row in rows:
        quality = f"{100 * row['quality']:5.1f}%" if row.get("quality") is not None else "    -"
        click.echo(f"{row['kind']:10} held-out {100 * row['accuracy']:5.1f}%  quality {quality}  {row['judge']}")
