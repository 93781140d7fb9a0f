"""`seedlab demo`: the whole workflow on the bundled examples, in a scratch home, stage by stage."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seedlab.config import Settings
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
    from seedlab.eval import render_coverage, render_table, uplift_line

    demo = _Demo(DemoResult(_scratch_home(home)), echo)
    echo(f"seedlab demo in {demo.result.home}")
    settings = demo.init()
    leaves = demo.diff(settings)
    data_run = demo.generate(settings, leaves, leaf_bars or _no_bars)
    adapter = demo.train(settings, data_run, step_bars or _no_bars)
    report = demo.evaluate(settings, adapter)
    demo.chat(settings, adapter)

    echo("")
    echo(f"{'stage':16} {'seconds':>8}")
    for name, seconds in demo.result.times:
        echo(f"{name:16} {seconds:8.1f}")
    echo(f"{'total':16} {sum(s for _, s in demo.result.times):8.1f}")
    echo("")
    echo(render_table(report.rows))
    if report.coverage:
        echo(render_coverage(report.answers, report.coverage))
    echo(f"chart: {report.chart}")
    echo(f"demo home: {demo.result.home} (SEEDLAB_HOME={demo.result.home} seedlab model chat --adapter {adapter})")
    if report.uplift:
        echo(uplift_line(report.uplift))
    return demo.result


class _Demo:
    """The demo's stages, each timed into the result."""

    def __init__(self, result: DemoResult, echo: Callable[[str], None]) -> None:
        self.result, self.echo = result, echo

    @contextlib.contextmanager
    def stage(self, name: str, what: str) -> Iterator[None]:
        self.echo(f"\n== {name}: {what}")
        start = time.perf_counter()
        yield
        self.result.times.append((name, time.perf_counter() - start))

    def init(self) -> Settings:
        from seedlab.config import Home, load_settings
        from seedlab.workspace import init_workspace

        with self.stage("init", "a taxonomy with example leaves and a knowledge document repository"):
            home = Home.under(self.result.home)
            for line in init_workspace(load_settings(home=home)).created:
                self.echo(f"  created {line}")
            return load_settings(home=home)  # the config init wrote

    def diff(self, settings: Settings) -> list[str]:
        from seedlab.taxonomy import changed_leaves, validate_file

        with self.stage("taxonomy diff", "every leaf against an empty base, validated"):
            diff = changed_leaves(settings.taxonomy_path, "empty")
            for rel in diff.files:
                errors = [p for p in validate_file(settings.taxonomy_path / rel, rel) if p.level == "error"]
                self.echo(f"  {'invalid' if errors else 'valid':8} {rel}")
                if errors:
                    raise SeedlabError(f"example taxonomy is invalid: {rel}:{errors[0].line}: {errors[0].message}")
            return diff.files

    def generate(self, settings: Settings, leaves: list[str], bars: Bars) -> Path:
        from seedlab.sdg import GenerateOptions, generate

        what = f"{len(leaves)} leaves with the default teacher (minutes)"
        with self.stage("data generate", what), bars() as progress:
            data = generate(settings, GenerateOptions(taxonomy_base="empty", scale=DEMO_SCALE), progress=progress)
        for leaf, info in data.stats["leaves"].items():
            self.echo(f"  {info['samples']:4d} generated samples  {leaf}")
        return data.run_dir

    def train(self, settings: Settings, data_run: Path, bars: Bars) -> Path:
        from seedlab.train import TrainOptions, train

        with self.stage("model train", "knowledge phase, then skills with replay (minutes)"), bars() as progress:
            trained = train(settings, TrainOptions(data=str(data_run)), lambda line: self.echo(f"  {line}"),
                            progress=progress)
        return trained.adapter

    def evaluate(self, settings: Settings, adapter: Path) -> Any:
        from seedlab.eval import EvaluateOptions, evaluate

        with self.stage("model evaluate", "base vs trained on the seed and held-out questions"):
            questions = settings.taxonomy_path / EXAMPLE_LEAF / "heldout.jsonl"
            options = EvaluateOptions(candidate=str(adapter), taxonomy_base="empty", questions=questions)
            report = evaluate(settings, options, lambda line: self.echo(f"  {line}"))
        self.result.uplift, self.result.chart = report.uplift, report.chart
        return report

    def chat(self, settings: Settings, adapter: Path) -> None:
        from seedlab.backends import make_backend
        from seedlab.chat import ask

        with self.stage("model chat", f"the trained model answers: {DEMO_QUESTION}"):
            backend = make_backend(settings, adapter=adapter)
            try:
                self.echo(f"  {ask(backend, [], DEMO_QUESTION, 96, 0.0, lambda _piece: None)}")
            finally:
                backend.close()


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
