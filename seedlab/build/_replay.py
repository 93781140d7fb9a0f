"""The replay buffer of a release line: every sample with its origin (release, leaf, seed blob), carried from
release to release while its leaf stays unchanged, and a share of it replayed into each new build's phases."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

Sample = dict[str, Any]


def with_origin(sample: Sample, release: str) -> Sample:
    """The sample with metadata.origin naming the release that generated it, its leaf and the seed file blob."""
    meta = sample["metadata"]
    origin = {"release": release, "leaf": meta.get("leaf"), "blob": meta.get("seed_blob")}
    return {"messages": sample["messages"], "metadata": {**meta, "origin": origin}}


def origin_key(sample: Sample) -> tuple[str, str]:
    """(leaf, blob): which version of which leaf a sample was made from."""
    origin = sample["metadata"]["origin"]
    return origin["leaf"], origin["blob"]


def carried(buffer: Iterable[Sample], tree: dict[str, str]) -> list[Sample]:
    """The buffer's samples whose leaf is still in the tree (leaf -> blob) unchanged; a changed or removed
    leaf's old samples leave the buffer (its new version's samples replace them)."""
    return [s for s in buffer if tree.get(origin_key(s)[0]) == origin_key(s)[1]]


def is_knowledge(sample: Sample) -> bool:
    return sample["metadata"].get("leaf_kind") == "knowledge"


def stratum(sample: Sample) -> str:
    """What a sample teaches: the document fact it was written from, else its own question (a seed pair or a
    document chunk stands alone)."""
    meta = sample["metadata"]
    return str(meta.get("fact") or sample["messages"][0]["content"])


def spread(group: list[Sample], count: int, rng: random.Random) -> list[Sample]:
    """`count` samples of a group taken from every stratum in turn (in a shuffled order), so that a share of a
    leaf keeps every fact it can: a plain random half of the first example release dropped one fact to 0 of its
    3 samples and four to 1 of 4-5, and the first leaf's held-out score fell with them."""
    strata: dict[str, list[Sample]] = {}
    for sample in group:
        strata.setdefault(stratum(sample), []).append(sample)
    queues = list(strata.values())
    rng.shuffle(queues)
    for queue in queues:
        rng.shuffle(queue)
    out: list[Sample] = []
    while len(out) < count:
        for queue in queues:
            if queue and len(out) < count:
                out.append(queue.pop())
    return out


def replay_sample(samples: list[Sample], share: float, cap: int, seed: int) -> list[Sample]:
    """A seeded `share` of each (release, leaf) group of earlier samples, at least one per group, spread over the
    group's facts; when that passes `cap` samples every group's count shrinks by the same factor. Each group
    draws with its own seed, so a leaf's replayed samples do not change when other leaves join the tree."""
    groups: dict[tuple[str, str], list[Sample]] = {}
    for sample in samples:
        origin = sample["metadata"]["origin"]
        groups.setdefault((origin["release"], origin["leaf"]), []).append(sample)
    if share <= 0 or cap <= 0 or not groups:
        return []
    want = {key: min(len(group), max(1, round(share * len(group)))) for key, group in groups.items()}
    total = sum(want.values())
    if total > cap:
        want = {key: int(count * cap / total) for key, count in want.items()}
    out: list[Sample] = []
    for key in sorted(groups):
        out += spread(groups[key], want[key], random.Random(f"{seed}:{key[0]}:{key[1]}"))
    return out


@dataclass
class Mix:
    """The two phases' data and how it was made up."""

    knowledge: list[Sample]
    skills: list[Sample]
    counts: dict[str, int]


def mix_phases(new: list[Sample], earlier: list[Sample], share: float, cap: int, knowledge_share: float,
               seed: int) -> Mix:
    """knowledge = the new knowledge and replayed earlier knowledge (empty, so skipped, without new knowledge);
    skills = the new skills, replayed earlier skills and `knowledge_share` (of the knowledge phase's size) of
    that knowledge."""
    knowledge = [s for s in new if is_knowledge(s)]
    skills = [s for s in new if not is_knowledge(s)]
    old_knowledge = replay_sample([s for s in earlier if is_knowledge(s)], share, cap, seed)
    old_skills = replay_sample([s for s in earlier if not is_knowledge(s)], share, cap, seed)
    pool = knowledge + old_knowledge
    in_skills = random.Random(f"{seed}:knowledge-in-skills").sample(pool, min(len(pool),
                                                                              round(knowledge_share * len(pool))))
    counts = {"knowledge_new": len(knowledge), "knowledge_replayed": len(old_knowledge), "skills_new": len(skills),
              "skills_replayed": len(old_skills), "knowledge_in_skills": len(in_skills)}
    return Mix(pool if knowledge else [], skills + old_skills + in_skills if skills or knowledge else [], counts)


def self_replay(phase: list[Sample], anchors: list[Sample], share: float, seed: int, name: str) -> list[Sample]:
    """The phase's samples and `share` of their number (at most all anchors) of the base model's own answers to
    general instructions: training on them holds the model's general behaviour where it was."""
    count = min(len(anchors), round(share * len(phase))) if phase else 0
    return phase + random.Random(f"{seed}:self-replay:{name}").sample(anchors, count)
