"""Builds seedlab/examples/judge/heldout_pairs.jsonl from scripts/judge_heldout_instructions.jsonl with the same
pair synthesis `seedlab judge train` runs (the default teacher writes x', y and y'), so the held-out pairs are
labelled by construction and come from instructions training never sees. Run by a maintainer:
    .venv/bin/python scripts/judge_heldout_pairs.py [--teacher MODEL]"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from seedlab.backends import make_backend
from seedlab.config import load_settings
from seedlab.judge._synth import synthesize
from seedlab.prompts import load_prompts

ROOT = Path(__file__).resolve().parents[1]
ANSWER_TOKENS = 40  # the shipped file was built with 40-token responses (judge train now writes 32 by default)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--teacher", help="default: sdg.teacher")
    args = parser.parse_args()
    settings = load_settings()
    teacher = make_backend(settings, args.teacher or settings.config.sdg.teacher)
    instructions = load_prompts(ROOT / "scripts" / "judge_heldout_instructions.jsonl")
    try:
        pairs, dropped = synthesize(teacher, instructions, ANSWER_TOKENS, seed=12345)
    finally:
        teacher.close()
    target = ROOT / "seedlab" / "examples" / "judge" / "heldout_pairs.jsonl"
    rows = [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected, "modified": p.modified} for p in pairs]
    target.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    print(f"{len(pairs)} pairs from {len(instructions)} instructions -> {target} (dropped {dropped})")


if __name__ == "__main__":
    main()
