"""Validate 2,000 qna.yaml files; print the time, files/s and the ratio to a plain yaml.safe_load baseline.

Target (issue: foundation): under 10 s for 2,000 files on a 2-core machine.
Run: .venv/bin/python bench/validate_throughput.py [--files N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from importlib import resources
from pathlib import Path

import yaml

from seedlab.taxonomy import validate_paths

LEAVES = [
    "compositional_skills/writing/rewriting/formal_tone/qna.yaml",
    "compositional_skills/extraction/meetings/action_items/qna.yaml",
    "knowledge/community/seed_libraries/halvane/qna.yaml",
]


def build_tree(root: Path, count: int) -> list[Path]:
    """A taxonomy of `count` leaves: the three examples, each copy made unique by its created_by."""
    examples = resources.files("seedlab").joinpath("examples", "taxonomy")
    texts = [examples.joinpath(leaf).read_text(encoding="utf-8") for leaf in LEAVES]
    paths = []
    for i in range(count):
        leaf = LEAVES[i % len(LEAVES)]
        path = root / Path(leaf).parent / f"copy{i:05d}" / "qna.yaml"
        path.parent.mkdir(parents=True)
        path.write_text(texts[i % len(texts)].replace("seedlab-examples", f"user{i}"), encoding="utf-8")
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = build_tree(root, args.files)
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        start = time.perf_counter()
        for path in paths:
            yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
        baseline = time.perf_counter() - start
        start = time.perf_counter()
        reports = validate_paths([str(root)])
        seconds = time.perf_counter() - start
    errors = sum(r.errors for r in reports)
    print(f"{'files':>6} {'baseline s':>11} {'seedlab s':>10} {'files/s':>8} {'ratio':>6} {'target':>7}")
    print(f"{len(reports):>6} {baseline:>11.2f} {seconds:>10.2f} {len(reports) / seconds:>8.0f} "
          f"{seconds / baseline:>5.1f}x {'<10 s':>7}")
    print(f"baseline: yaml.load with the C safe loader, same files; validation found {errors} errors")
    verdict = "meets" if seconds < 10 * args.files / 2000 else "MISSES"
    print(f"{verdict} the target of 10 s per 2,000 files")


if __name__ == "__main__":
    main()
