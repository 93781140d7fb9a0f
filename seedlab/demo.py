"""`seedlab demo`: the whole workflow on the bundled examples, in a scratch home, stage by stage."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from seedlab.errors import SeedlabError

MARKER = ".seedlab-demo"
# What follows the demo's stages; listed so the user sees where the run is heading.
NEXT_STAGES = [
    ("seedlab model train --data {run}", "tune a LoRA adapter: knowledge, then skills with replay (minutes)"),
    ("seedlab model evaluate", "not built yet: base vs trained model on held-out questions"),
]


DEMO_SCALE = 1  # samples aimed for per seed example: enough to show every pipeline in a few minutes


def run_demo(home: Path | None, echo: Callable[[str], None]) -> None:
    """Run init, taxonomy diff and data generate in a scratch SEEDLAB_HOME and report each stage's time."""
    from seedlab.config import load_settings
    from seedlab.sdg import GenerateOptions, generate
    from seedlab.taxonomy import changed_leaves, validate_file
    from seedlab.workspace import init_workspace

    home = _scratch_home(home)
    os.environ["SEEDLAB_HOME"] = str(home)
    echo(f"seedlab demo in {home}")
    times = []

    start = time.perf_counter()
    settings = load_settings()
    init = init_workspace(settings)
    times.append(("init", time.perf_counter() - start))
    for line in init.created:
        echo(f"  created {line}")

    start = time.perf_counter()
    diff = changed_leaves(settings.taxonomy_path, "empty")
    invalid = []
    for rel in diff.files:
        errors = [p for p in validate_file(settings.taxonomy_path / rel, rel) if p.level == "error"]
        echo(f"  {'invalid' if errors else 'valid':8} {rel}")
        invalid += errors
    times.append(("taxonomy diff", time.perf_counter() - start))
    if invalid:
        raise SeedlabError(f"example taxonomy is invalid: {invalid[0].path}:{invalid[0].line}: {invalid[0].message}")

    echo(f"data generate: {len(diff.files)} leaves at scale {DEMO_SCALE} with the default teacher (a few minutes)")
    start = time.perf_counter()
    result = generate(settings, GenerateOptions(taxonomy_base="empty", scale=DEMO_SCALE))
    times.append(("data generate", time.perf_counter() - start))
    for leaf, info in result.stats["leaves"].items():
        echo(f"  {info['samples']:4d} generated samples  {leaf}")
    files = result.stats["files"]
    echo(f"  {result.run_dir}: knowledge.jsonl {files['knowledge.jsonl']}, skills.jsonl {files['skills.jsonl']}")

    echo("")
    echo(f"{'stage':16} {'seconds':>8}")
    for name, seconds in times:
        echo(f"{name:16} {seconds:8.2f}")
    echo("")
    echo(f"Next, with SEEDLAB_HOME={home}:")
    for name, what in NEXT_STAGES:
        echo(f"  {name.format(run=result.run_dir.name):40} {what}")
    echo(f"{len(diff.files)} example leaves valid; demo home: {home}")


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
