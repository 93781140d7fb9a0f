"""Writes seedlab/examples/judge/instructions.jsonl (training) and the instructions that the held-out pairs
are built from (scripts/judge_heldout_instructions.jsonl), from hand-written task forms and subjects.

Each form has its own subjects, split in two: training never sees a held-out subject. Run once by a
maintainer; the held-out pairs are then built by `python scripts/judge_heldout_pairs.py`."""

from __future__ import annotations

import json
import random
from pathlib import Path

FORMS: list[tuple[str, list[str]]] = [
    ("Explain in two sentences how {} works.",
     ["a refrigerator", "a bicycle gear", "a microwave oven", "a compass", "a thermostat", "a solar panel",
      "a vaccine", "a lighthouse", "a parachute", "a water filter", "a smoke detector", "an elevator",
      "a hot air balloon", "a pressure cooker", "a rain gauge", "a submarine"]),
    ("Give three tips for {}.",
     ["keeping houseplants alive", "saving money on groceries", "sleeping better", "learning a new language",
      "running a first marathon", "packing a small suitcase", "writing a cover letter", "studying for an exam",
      "keeping a kitchen clean", "training a puppy", "staying focused at work", "baking bread at home",
      "growing tomatoes", "taking better photos", "speaking in public", "caring for a bicycle"]),
    ("Write a haiku about {}.",
     ["autumn leaves", "a quiet harbour", "morning fog", "a thunderstorm", "the first snow", "a desert night",
      "a mountain lake", "spring rain", "an old oak tree", "the full moon", "a city at dawn", "ocean waves",
      "a field of sunflowers", "a winter forest", "a river in flood", "a summer meadow"]),
    ("What is the difference between {}?",
     ["weather and climate", "a virus and a bacterium", "a lake and a pond", "baking soda and baking powder",
      "a crocodile and an alligator", "speed and velocity", "a comet and an asteroid", "a loan and a grant",
      "a frog and a toad", "an ocean and a sea", "a violin and a viola", "a hurricane and a tornado",
      "a moth and a butterfly", "a city and a town", "a simile and a metaphor", "a rabbit and a hare"]),
    ("Name three common uses of {}.",
     ["bamboo", "copper", "vinegar", "salt", "wool", "glass", "cork", "beeswax", "clay", "rubber", "aluminium",
      "cotton", "lemon juice", "sand", "olive oil", "limestone"]),
    ("Describe {} to a child in two sentences.",
     ["a volcano", "a coral reef", "a rainforest", "a glacier", "a desert", "a beehive", "the moon",
      "a rainbow", "a library", "a hospital", "a farm", "an airport", "a museum", "a waterfall", "a castle",
      "a train station"]),
    ("Write a one-sentence slogan for {}.",
     ["a bakery", "a bicycle shop", "a dental clinic", "a bookstore", "a gym", "a flower shop", "a pet groomer",
      "a coffee roaster", "a shoe repair shop", "a sailing school", "a music school", "an ice cream parlour",
      "a plumbing company", "a farmers market", "a yoga studio", "a toy store"]),
    ("What should I pack for {}?",
     ["a weekend camping trip", "a beach holiday", "a ski trip", "a business trip", "a long flight",
      "a hiking day trip", "a picnic in the park", "a music festival", "a visit to a rainy city",
      "a first day at a new school", "a fishing trip", "a road trip with children", "a desert tour",
      "a hospital stay", "a winter city break", "a cycling tour"]),
    ("Suggest three names for {}.",
     ["a black cat", "a golden retriever puppy", "a small coffee shop", "a garden blog", "a rock band",
      "a sailing boat", "a pet goldfish", "a bakery in a small town", "a board game club", "a hiking group",
      "a podcast about history", "a vegetable farm", "a pet parrot", "a chess club", "a cooking channel",
      "a book club"]),
    ("How do I {}?",
     ["boil an egg", "change a flat tyre", "plant a tree", "tie a tie", "make a paper airplane",
      "clean a cast iron pan", "sew on a button", "brew green tea", "wash a wool sweater", "build a birdhouse",
      "remove a coffee stain", "start a compost pile", "paint a wall", "fold a fitted sheet",
      "sharpen a kitchen knife", "make lemonade"]),
    ("List three animals that live in {}.",
     ["the Arctic", "the Amazon rainforest", "the Sahara desert", "the deep ocean", "a pond", "the savanna",
      "the Himalayas", "a coral reef", "a swamp", "a city park", "the Australian outback", "a cave",
      "a temperate forest", "the tundra", "a river", "a mangrove forest"]),
    ("Write a short thank-you note to {}.",
     ["a teacher", "a neighbour who watered my plants", "a nurse", "a colleague who covered my shift",
      "a friend who helped me move", "a grandparent for a birthday gift", "a coach", "a bus driver",
      "a librarian", "a doctor", "a babysitter", "a volunteer firefighter", "a mail carrier",
      "a host of a dinner party", "a mentor", "a landlord who fixed the heating"]),
    ("Give a simple recipe for {}.",
     ["pancakes", "tomato soup", "guacamole", "fried rice", "a fruit salad", "hummus", "scrambled eggs",
      "lemon cookies", "a green smoothie", "potato salad", "banana bread", "vegetable curry", "garlic bread",
      "oatmeal", "a cheese omelette", "iced tea"]),
    ("Why is {} important?",
     ["drinking water", "sleep", "recycling", "exercise", "reading to children", "washing hands", "bees",
      "voting", "saving for retirement", "wearing a seatbelt", "learning history", "forests", "vaccination",
      "clean air", "regular dental checkups", "protecting wetlands"]),
    ("Summarise the main idea of {} in one sentence.",
     ["the tortoise and the hare fable", "the water cycle", "photosynthesis", "supply and demand",
      "the boy who cried wolf", "the theory of evolution", "the ant and the grasshopper fable",
      "plate tectonics", "the greenhouse effect", "compound interest", "the food chain", "the scientific method",
      "the golden rule", "recycling programmes", "the story of Cinderella", "the law of gravity"]),
    ("Write two sentences persuading someone to {}.",
     ["adopt a dog from a shelter", "learn to swim", "take the train instead of driving", "visit a museum",
      "eat more vegetables", "start journaling", "plant a garden", "learn to cook", "donate blood",
      "read more books", "go for a daily walk", "learn a musical instrument", "visit a national park",
      "try rock climbing", "volunteer at a food bank", "drink less soda"]),
]


def main() -> None:
    rng = random.Random(7)
    train, held = [], []
    for form, subjects in FORMS:
        order = subjects[:]
        rng.shuffle(order)
        cut = len(order) * 3 // 4
        train += [form.format(s) for s in order[:cut]]
        held += [form.format(s) for s in order[cut:]]
    rng.shuffle(train)
    rng.shuffle(held)
    root = Path(__file__).resolve().parents[1]
    _write(root / "seedlab" / "examples" / "judge" / "instructions.jsonl", train)
    _write(root / "scripts" / "judge_heldout_instructions.jsonl", held)
    print(f"{len(train)} training instructions, {len(held)} held-out instructions")


def _write(path: Path, prompts: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts), encoding="utf-8")


if __name__ == "__main__":
    main()
