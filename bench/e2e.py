"""The whole demo, timed: each stage's seconds and the knowledge uplift on the held-out questions, as one table.

Runs `seedlab demo` in a scratch home (default: a new temporary folder) with the default model on this machine.
Targets here: the whole run under 15 minutes, and an uplift of at least 30 points.
Run: .venv/bin/python bench/e2e.py [--home DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, help="scratch SEEDLAB_HOME (emptied first if a demo made it)")
    args = parser.parse_args()
    from seedlab.cli import quiet_libraries
    from seedlab.demo import run_demo

    quiet_libraries()

    result = run_demo(args.home, lambda line: print(line, file=sys.stderr, flush=True))  # the demo's own output
    total = sum(seconds for _, seconds in result.times)
    uplift = result.uplift or {}
    print(f"{'stage':16} {'seconds':>8} {'share':>6}")
    for name, seconds in result.times:
        print(f"{name:16} {seconds:8.1f} {seconds / total:6.1%}")
    print(f"{'total':16} {total:8.1f}   (target < 900 s: {'met' if total < 900 else 'MISSED'})")
    if uplift:
        print(f"uplift {uplift['points']:+.1f} points (base {uplift['base']:.1f} -> trained {uplift['candidate']:.1f}) "
              f"on {uplift['questions']} {uplift['kind']} questions (target >= +30: "
              f"{'met' if uplift['points'] >= 30 else 'MISSED'})")
    print(json.dumps({"stages": dict(result.times), "total_s": round(total, 1), "uplift": uplift}))


if __name__ == "__main__":
    main()
