"""Verdicts per second of each judge kind on the same held-out pairs, in one run, with each one's accuracy.

A generative judge answers each pair twice (both orders, JSON verdicts on llama.cpp); the likelihood judge scores
each answer after its request and after a neutral one; a reward model scores each answer once. Prints pairs per
second and the ratio to the generative judge (the baseline measured here).
Run: .venv/bin/python bench/judge_throughput.py [--reward JUDGE_FOLDER] [--pairs N] [--model M]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from seedlab.config import load_settings
from seedlab.judge import evaluate_judge, load_pairs
from seedlab.judge.judging import open_judge
from seedlab.workspace import shipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reward", help="a reward judge folder from `seedlab judge train --kind reward`")
    parser.add_argument("--pairs", type=int, default=48, help="held-out pairs to judge (at most 48)")
    parser.add_argument("--model", default="smollm2-135m-instruct", help="the generative and likelihood model")
    args = parser.parse_args()
    os.environ.setdefault("SEEDLAB_HOME", tempfile.mkdtemp())
    settings = load_settings()
    pairs = load_pairs(shipped("judge", "heldout_pairs.jsonl"))[: args.pairs]
    judges = [("generative", args.model), ("likelihood", f"likelihood:{args.model}")]
    if args.reward:
        judges.append(("reward", args.reward))
    rows = []
    for kind, ref in judges:
        judge = open_judge(settings, ref)
        try:
            evaluate_judge(judge, pairs[:2])  # warm-up: first calls load weights and build caches
            start = time.perf_counter()
            score = evaluate_judge(judge, pairs)
            seconds = time.perf_counter() - start
        finally:
            judge.close()
        rows.append((kind, len(pairs) / seconds, score.accuracy, score.consistent))
    base = rows[0][1]
    print(f"{'judge':12} {'pairs/s':>8} {'vs generative':>14} {'accuracy':>9} {'consistent':>11}")
    for kind, rate, accuracy, consistent in rows:
        print(f"{kind:12} {rate:8.2f} {rate / base:13.1f}x {100 * accuracy:8.1f}% {100 * consistent:10.1f}%")


if __name__ == "__main__":
    main()
