"""Two releases of the example taxonomy, as a maintainer makes them: build 1 from the whole tree; then a commit
adds a knowledge leaf (a new invented document) and a skill leaf, and build 2 continues build 1.

Prints each build's time, the teacher requests per leaf (build 2 should call the teacher for the two new leaves
only), the held-out key-fact scores of both knowledge leaves (base, build 1, build 2), the regression figures,
and whether each release verifies. Run: .venv/bin/python bench/build_releases.py [--home DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from seedlab.build import BuildOptions, build, verify_release
from seedlab.config import Home, load_settings
from seedlab.workspace import add_example_release, init_workspace

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="a new folder for the builds (default: a temporary one)")
    args = parser.parse_args()
    home = Home.under(args.home or Path(tempfile.mkdtemp(prefix="seedlab-builds-")))
    init_workspace(load_settings(home=home))
    settings = load_settings(home=home)
    results = []
    for number in (1, 2):
        if number == 2:
            add_example_release(settings)
        previous = results[-1][0].build_dir.name if results else None
        start = time.perf_counter()
        result = build(settings, BuildOptions(previous=previous), print)
        results.append((result, time.perf_counter() - start))
    print(f"\nhome: {home.data}")
    for number, (result, seconds) in enumerate(results, 1):
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
               for n, (r, s) in enumerate(results, 1)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
