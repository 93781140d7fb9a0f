"""`judge train --kind reward`: a reward model trained with the Bradley-Terry loss on pairs that carry no human
label: the self-taught pairs (the answer to x beats the answer to x' for x) and corrupted copies of the good
answers (a part dropped, the words scrambled, another answer's content words swapped in)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from seedlab.config import Settings
from seedlab.fsutil import read_json_object, write_text_atomic
from seedlab.judge._evaluate import Pair, evaluate_judge
from seedlab.judge._scalar import calibrate, write_reward_info
from seedlab.judge._synth import SynthPair
from seedlab.judge.judging import ScalarJudge
from seedlab.runs import Progress
from seedlab.text import STOPWORDS, split_sentences, words

CORRUPTIONS = ("dropped", "scrambled", "swapped")


def corrupt(answer: str, kind: str, other: str, rng: random.Random) -> str | None:
    """A worse copy of `answer`, or None when it is too short to corrupt this way.

    dropped: only its first third (a required part missing); scrambled: its words in random order (the request's
    form broken); swapped: its content words replaced by another answer's (the facts wrong, the form kept)."""
    tokens = answer.split()
    if len(tokens) < 6:
        return None
    if kind == "dropped":
        sentences = split_sentences(answer)
        cut = sentences[0] if len(sentences) > 1 else " ".join(tokens[: max(2, len(tokens) // 3)])
        return cut if cut != answer else None
    if kind == "scrambled":
        shuffled = tokens[:]
        rng.shuffle(shuffled)
        return " ".join(shuffled) if shuffled != tokens else None
    theirs = [w for w in other.split() if w.lower().strip(".,;:!?") not in STOPWORDS and len(words(w)) == 1]
    if not theirs:
        return None
    swapped = [rng.choice(theirs) if t.lower().strip(".,;:!?") not in STOPWORDS and len(words(t)) == 1 else t
               for t in tokens]
    return " ".join(swapped) if swapped != tokens else None


def training_pairs(pairs: Sequence[SynthPair], seed: int) -> tuple[list[tuple[str, str, str]], dict[str, int]]:
    """(request, better, worse) for training: every self-taught pair, and one corrupted copy of each good answer
    (the kinds in turn); with how many of each kind."""
    rng = random.Random(seed)
    out = [(p.prompt, p.chosen, p.rejected) for p in pairs]
    counts = {"self_taught": len(out), **{kind: 0 for kind in CORRUPTIONS}}
    for k, pair in enumerate(pairs):
        kind = CORRUPTIONS[k % len(CORRUPTIONS)]
        worse = corrupt(pair.chosen, kind, pairs[(k + 1) % len(pairs)].chosen, rng)
        if worse is not None:
            out.append((pair.prompt, pair.chosen, worse))
            counts[kind] += 1
    rng.shuffle(out)
    return out, counts


def train_reward(settings: Settings, run_dir: Path, start: str, pairs: Sequence[SynthPair],
                 heldout: dict[str, list[Pair]], models: Any, echo: Callable[[str], None],
                 bar: Progress) -> dict[str, Any]:
    """Train the reward model, calibrate its rating thresholds on its training pairs, score it on the held-out
    sets; the judge folder (judge.json and adapter/) is `run_dir/judge`. Returns the round's report row."""
    from seedlab.train import RewardConfig

    folder = run_dir / "judge"
    done = read_json_object(run_dir / "reward.json")
    if done:
        return done
    config = settings.config.judge
    train, counts = training_pairs(pairs, config.seed)
    echo(f"reward pairs: {len(train)} ({', '.join(f'{k} {v}' for k, v in counts.items())})")
    reward = RewardConfig(config.reward_epochs, config.reward_lr, config.seed, config.reward_head)
    models.fit_reward(start, train, run_dir / "reward", reward,
                      lambda line: echo(f"  {line}"), lambda step, steps: bar("reward model: train", step, steps))
    folder.mkdir(parents=True, exist_ok=True)
    adapter = folder / "adapter"
    if not adapter.exists():
        (run_dir / "reward" / "adapter").rename(adapter)
    write_reward_info(folder, start, (0.0, 0.0), reward.head)  # thresholds follow from the model's own scores
    judge: ScalarJudge = models.open_reward(folder)
    try:
        bar("reward model: calibrate", 0, len(train))
        scores = judge.score([(p, a) for p, a, _ in train] + [(p, b) for p, _, b in train])
        bar("reward model: calibrate", len(train), len(train))
        thresholds = calibrate(scores[:len(train)], scores[len(train):])
        judge.low, judge.high = thresholds
        row: dict[str, Any] = {"round": 1, "name": "reward model", "kind": "reward", "pairs_by_kind": counts,
                               "train_accuracy": round(sum(a > b for a, b in zip(scores[:len(train)],
                                                                               scores[len(train):], strict=True))
                                                       / max(1, len(train)), 4),
                               "thresholds": [round(t, 4) for t in thresholds]}
        for name, labelled in heldout.items():
            bar(f"reward model: {name}", 0, len(labelled))
            score = evaluate_judge(judge, labelled)
            bar(f"reward model: {name}", len(labelled), len(labelled))
            row[name] = {"pairs": score.pairs, "accuracy": round(score.accuracy, 4)}
        row.update(pairs=row["heldout"]["pairs"], accuracy=row["heldout"]["accuracy"], consistent=1.0,
                   unparseable=0.0, traces=len(train))
    finally:
        judge.close()
    write_reward_info(folder, start, thresholds, reward.head, heldout=row["heldout"], quality=row.get("quality"),
                      pairs_by_kind=counts)
    write_text_atomic(run_dir / "reward.json", json.dumps(row, indent=2))
    return row
