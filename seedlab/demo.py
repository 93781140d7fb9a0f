"""`seedlab demo`: the whole workflow on the bundled examples, in a scratch home, stage by stage."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seedlab.errors import SeedlabError

MARKER = ".seedlab-demo"
EXAMPLE_LEAF = "knowledge/community/seed_libraries/halvane"  # its heldout.jsonl holds the held-out questions
DEMO_QUESTION = "What is the rarest holding of the Halvane Seed Library?"
DEMO_SCALE = 1  # generated samples aimed for per seed example: every pipeline runs, and the demo stays short
Bars = Callable[[], contextlib.AbstractContextManager[Any]]


@contextlib.contextmanager
def _no_bars() -> Iterator[None]:
    yield None


@dataclass
class DemoResult:
    home: Path
    times: list[tuple[str, float]] = field(default_factory=list)
    uplift: dict[str, Any] | None = None
    chart: Path | None = None


def run_demo(home: Path | None, echo: Callable[[str], None], leaf_bars: Bars | None = None,
             step_bars: Bars | None = None) -> DemoResult:
    """init -> taxonomy diff -> data generate -> model train -> model evaluate -> one chat answer, timed.

    `leaf_bars` and `step_bars` open progress displays for data generate and model train."""
    from seedlab.backends import make_backend
    from seedlab.chat import ask
    from seedlab.config import load_settings
    from seedlab.eval import EvaluateOptions, evaluate, render_table, uplift_line
    from seedlab.sdg import GenerateOptions, generate
    from seedlab.taxonomy import changed_leaves, validate_file
    from seedlab.train import TrainOptions, train
    from seedlab.workspace import init_workspace

    result = DemoResult(_scratch_home(home))
    os.environ["SEEDLAB_HOME"] = str(result.home)
    echo(f"seedlab demo in {result.home}")

    def stage(name: str, what: str) -> Callable[[], None]:
        echo(f"\n== {name}: {what}")
        start = time.perf_counter()
        return lambda: result.times.append((name, time.perf_counter() - start))

    done = stage("init", "a taxonomy with example leaves and a knowledge document repository")
    settings = load_settings()
    for line in init_workspace(settings).created:
        echo(f"  created {line}")
    done()

    done = stage("taxonomy diff", "every leaf against an empty base, validated")
    diff = changed_leaves(settings.taxonomy_path, "empty")
    for rel in diff.files:
        errors = [p for p in validate_file(settings.taxonomy_path / rel, rel) if p.level == "error"]
        echo(f"  {'invalid' if errors else 'valid':8} {rel}")
        if errors:
            raise SeedlabError(f"example taxonomy is invalid: {rel}:{errors[0].line}: {errors[0].message}")
    done()

    done = stage("data generate", f"{len(diff.files)} leaves with the default teacher (minutes)")
    with (leaf_bars or _no_bars)() as progress:
        data = generate(settings, GenerateOptions(taxonomy_base="empty", scale=DEMO_SCALE), progress=progress)
    for leaf, info in data.stats["leaves"].items():
        echo(f"  {info['samples']:4d} generated samples  {leaf}")
    done()

    done = stage("model train", "knowledge phase, then skills with replay (minutes)")
    with (step_bars or _no_bars)() as progress:
        trained = train(settings, TrainOptions(data=str(data.run_dir)), lambda line: echo(f"  {line}"),
                        progress=progress)
    done()

    done = stage("model evaluate", "base vs trained on the seed and held-out questions")
    questions = settings.taxonomy_path / EXAMPLE_LEAF / "heldout.jsonl"
    report = evaluate(settings, EvaluateOptions(str(trained.adapter), taxonomy_base="empty", questions=questions),
                      lambda line: echo(f"  {line}"))
    result.uplift, result.chart = report.uplift, report.chart
    done()

    done = stage("model chat", f"the trained model answers: {DEMO_QUESTION}")
    backend = make_backend(settings, adapter=trained.adapter)
    try:
        echo(f"  {ask(backend, [], DEMO_QUESTION, 96, 0.0, lambda _piece: None)}")
    finally:
        backend.close()
    done()

    echo("")
    echo(f"{'stage':16} {'seconds':>8}")
    for name, seconds in result.times:
        echo(f"{name:16} {seconds:8.1f}")
    echo(f"{'total':16} {sum(s for _, s in result.times):8.1f}")
    echo("")
    echo(render_table(report.rows))
    echo(f"chart: {report.chart}")
    echo(f"demo home: {result.home} (SEEDLAB_HOME={result.home} seedlab model chat --adapter {trained.adapter})")
    if result.uplift:
        echo(uplift_line(result.uplift))
    return result


def _scratch_home(home: Path | None) -> Path:
    if home is None:
        home = Path(tempfile.mkdtemp(prefix="seedlab-demo-"))
    elif home.exists() and any(home.iterdir()):
        if not (home / MARKER).exists():
            raise SeedlabError(f"{home} is not empty and was not made by `seedlab demo`; pick an empty folder")
        shutil.rmtree(home)  # a previous demo's scratch home: start clean
    home.mkdir(parents=True, exist_ok=True)
    (home / MARKER).write_text("scratch home of `seedlab demo`; safe to delete\n", encoding="utf-8")
    return home.absolute()
