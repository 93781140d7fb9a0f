"""Two releases of the example taxonomy, as a maintainer makes them: build 1 from the whole tree; then a commit
adds a knowledge leaf (a new invented document) and a skill leaf, and build 2 continues build 1.

Prints each build's time, the teacher requests per leaf (build 2 should call the teacher for the two new leaves
only), the held-out key-fact scores of both knowledge leaves (base, build 1, build 2), the regression figures,
and whether each release verifies.

Each leaf's ten held-out questions make one question ten points, and two builds differed by 10-20 points on them
by chance; so the benchmark commits the reworded questions of bench/documents/ beside them: 31 for the first leaf
before build 1, 30 for the new leaf before build 2 (41 and 40 in all; --leaf-heldout-only keeps the tens). They only
measure: checkpoints are chosen on seed questions. --set KEY=VALUE changes config.yaml (dotted keys, YAML values)
before the builds. --previous ID with --home runs only build 2 again on that home's build 1 (the second release
is committed once), so designs of build 2 compare on the same build 1 and the same SDG samples.
Run: .venv/bin/python bench/build_releases.py [--home DIR] [--set build.start=previous] [--previous ID]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from seedlab.build import BuildOptions, build, verify_release
from seedlab.config import Home, load_settings
from seedlab.workspace import add_example_release, init_workspace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from knowledge_learning import heldout_file, with_overrides  # noqa: E402  (sibling bench script)

HALVANE = "knowledge/community/seed_libraries/halvane/qna.yaml"
MARROWICK = "knowledge/community/harbour_clocks/marrowick/qna.yaml"


def heldout(state: dict[str, Any], leaf: str, which: str = "chosen") -> float | None:
    """A leaf's held-out key-fact score in points: the base model's, or the release's (last phase, chosen)."""
    if which == "base":
        scores = state["base"]["scores"]["leaves"].get(leaf, {})
    else:
        last = [p for k, p in state.items() if k.startswith("phase-") and not p.get("skipped")][-1]
        scores = last["candidates"][last["chosen_index"]]["scores"]["leaves"].get(leaf, {})
    return None if "heldout" not in scores else round(100 * scores["heldout"], 1)


def parse_set(item: str) -> tuple[str, Any]:
    key, sep, value = item.partition("=")
    if not sep or "." not in key:
        raise SystemExit(f"--set {item!r}: give SECTION.KEY=VALUE, e.g. build.start=previous")
    return key, yaml.safe_load(value)


def more_heldout(settings: Any, leaf: str, name: str) -> None:
    """The reworded questions of bench/documents/NAME/ added to a leaf's held-out file and committed (once)."""
    import git

    target = settings.taxonomy_path / leaf.replace("qna.yaml", "heldout.jsonl")
    extra = heldout_file(name).read_text(encoding="utf-8")
    if extra.splitlines()[0] in target.read_text(encoding="utf-8"):
        return
    target.write_text(target.read_text(encoding="utf-8") + extra, encoding="utf-8")
    repo = git.Repo(settings.taxonomy_path)
    repo.index.add([str(target.relative_to(settings.taxonomy_path))])
    repo.index.commit(f"bench: {len(extra.splitlines())} more held-out questions for {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="a new folder for the builds (default: a temporary one)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a config.yaml change before the builds, e.g. build.start=previous (repeatable)")
    parser.add_argument("--previous", help="with --home: run build 2 only, continuing this build id of that home")
    parser.add_argument("--leaf-heldout-only", action="store_true",
                        help="score the first leaf on its own ten held-out questions only")
    args = parser.parse_args()
    if args.previous and not args.home:
        parser.error("--previous needs the --home that holds that build")
    home = Home.under(args.home or Path(tempfile.mkdtemp(prefix="seedlab-builds-")))
    if not args.previous:
        init_workspace(load_settings(home=home))
        if not args.leaf_heldout_only:
            more_heldout(load_settings(home=home), HALVANE, "halvane")
    settings = with_overrides(load_settings(home=home), dict(parse_set(item) for item in args.set))
    numbers = (2,) if args.previous else (1, 2)
    results = []
    for number in numbers:
        if number == 2 and not (settings.taxonomy_path / MARROWICK).is_file():
            add_example_release(settings)
        if number == 2 and not args.leaf_heldout_only:
            more_heldout(settings, MARROWICK, "marrowick")
        previous = results[-1][0].build_dir.name if results else args.previous
        start = time.perf_counter()
        result = build(settings, BuildOptions(previous=previous), print)
        results.append((result, time.perf_counter() - start))
    print(f"\nhome: {home.data}; config changes: {args.set or 'none'}")
    for number, (result, seconds) in zip(numbers, results, strict=True):
        state = result.report
        calls = {leaf.split("/")[-2]: info["teacher_requests"] for leaf, info in state["generate"]["leaves"].items()}
        regression = state["regression"]
        print(f"build {number} ({result.build_dir.name}): {seconds / 60:.1f} min; teacher requests per leaf {calls}")
        for leaf in (HALVANE, MARROWICK):
            print(f"  {leaf.split('/')[-2]:10} held-out key facts: base {heldout(state, leaf, 'base')}, "
                  f"this build {heldout(state, leaf)}")
        print(f"  regression: accuracy {regression['accuracy']}, nll increase {regression['nll_increase']}, "
              f"regressed {regression['regressed']}; verify: {verify_release(result.release) or 'ok'}")
    summary = {f"build{n}": {"minutes": round(s / 60, 1), "state": r.report["data"]["counts"]}
               for n, (r, s) in zip(numbers, results, strict=True)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
