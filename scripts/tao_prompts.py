"""Writes seedlab/examples/tao/prompts.jsonl: requests for a JSON object with the fields "a" and "b", built from
hand-written subjects and field meanings (the task of `seedlab.tao.examples:json_ab`). Run once by a maintainer."""

from __future__ import annotations

import json
import random
from pathlib import Path

FIELDS = [
    ("the usual colour of {s}", "where {s} is usually found"),
    ("the category of {s}", "one thing {s} is used for"),
    ("the size of {s} in a few words", "one fact about {s}"),
    ("the season linked with {s}", "one word that describes {s}"),
    ("what {s} is made of", "who uses {s} most"),
    ("one word that describes {s}", "one place to see {s}"),
]
SUBJECTS = [
    "an apple", "a banana", "a carrot", "a tomato", "a lemon", "a strawberry", "a pumpkin", "a potato", "a cucumber",
    "a grape", "a hammer", "a screwdriver", "a bicycle", "a kettle", "a teapot", "a violin", "a guitar", "a piano",
    "a drum", "a laptop", "a pencil", "a notebook", "an umbrella", "a backpack", "a candle", "a lamp", "a pillow",
    "a blanket", "a mirror", "a clock", "a penguin", "a dolphin", "an eagle", "a fox", "a rabbit", "an owl",
    "a bee", "a frog", "a turtle", "a horse", "a cactus", "a rose", "an oak tree", "a sunflower", "a tulip",
    "a fern", "a mushroom", "a pine cone", "a seashell", "a pebble", "a snowflake", "a cloud", "a river",
    "a volcano", "a lighthouse", "a bridge", "a castle", "a windmill", "a tent", "a canoe",
]
FORMS = [
    'Reply with a JSON object with two fields: "a", {fa}, and "b", {fb}.',
    'Describe {s} as JSON with the fields "a" ({fa}) and "b" ({fb}).',
    'Give a JSON object about {s}: field "a" holds {fa} and field "b" holds {fb}.',
    'Answer in JSON only, with keys "a" and "b": "a" is {fa}, "b" is {fb}.',
]


def main() -> None:
    rng = random.Random(11)
    prompts = []
    for k, subject in enumerate(SUBJECTS):
        for j in range(4):
            fa, fb = FIELDS[(k + j) % len(FIELDS)]
            form = FORMS[(k + 2 * j) % len(FORMS)]
            prompts.append(form.format(s=subject, fa=fa.format(s=subject), fb=fb.format(s=subject)))
    rng.shuffle(prompts)
    target = Path(__file__).resolve().parents[1] / "seedlab" / "examples" / "tao" / "prompts.jsonl"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts), encoding="utf-8")
    print(f"{len(prompts)} prompts -> {target}")


if __name__ == "__main__":
    main()
