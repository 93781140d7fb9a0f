"""`seedlab judge evaluate`."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def judge() -> None:
    """Measure the judge that SDG, evaluation and TAO use."""


@judge.command("evaluate")
@click.option("--judge", "judge_ref", help="Judge model, or an adapter folder from `model train` on the default "
              "model (default: eval.judge, else sdg.teacher).")
@click.option("--pairs", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="Labelled pairs, JSONL: prompt, chosen, rejected.")
def evaluate_cmd(judge_ref: str | None, pairs: Path) -> None:
    """Accuracy on labelled pairs, each asked in both orders; also the share of position-consistent pairs and
    of unparseable verdicts."""
    from seedlab.backends import make_backend
    from seedlab.config import load_settings
    from seedlab.judge import evaluate_judge, load_pairs, score_line

    settings = load_settings()
    loaded = load_pairs(pairs)
    ref = judge_ref or settings.config.eval.judge or settings.config.sdg.teacher
    adapter = Path(ref) if (Path(ref) / "adapter_config.json").is_file() else None
    backend = make_backend(settings, None if adapter else ref, adapter=adapter)
    try:
        click.echo(f"judge {backend.model_id}: {len(loaded)} pairs, each in both orders")
        score = evaluate_judge(backend, loaded)
    finally:
        backend.close()
    click.echo(score_line(score))
