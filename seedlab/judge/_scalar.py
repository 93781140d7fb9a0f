"""The scalar judges: a reward model that `judge train --kind reward` trained, and a likelihood judge that needs
no training. Both run the model on transformers (the answer's tokens are scored, not generated)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from seedlab.config import Settings
from seedlab.errors import SeedlabError
from seedlab.fsutil import read_json_object
from seedlab.judge.judging import REWARD_FILE, ScalarJudge

# Likelihood ratings (no training pairs to calibrate on): 1 when the request makes the answer no likelier than the
# neutral one does, 3 from 0.5 nats per token more (the answers of our held-out pairs that fit their request).
LIKELIHOOD_THRESHOLDS = (0.0, 0.5)


class LikelihoodJudge(ScalarJudge):
    """Score: mean log-probability per answer token after the request, minus the same after a neutral request
    (seedlab.train.likelihood_scores)."""

    kind = "likelihood"

    def __init__(self, settings: Settings, model: str) -> None:
        from seedlab.train import load_model

        self.model, self.tokenizer = load_model(settings, model)
        self.model_id = f"likelihood:{model}"
        self.low, self.high = LIKELIHOOD_THRESHOLDS

    def score(self, items: Sequence[tuple[str, str]]) -> list[float]:
        from seedlab.train import likelihood_scores

        return likelihood_scores(self.model, self.tokenizer, items)


class RewardJudge(ScalarJudge):
    """A reward model folder: judge.json (backbone, score head, thresholds, held-out accuracy) and adapter/ (LoRA,
    and the scalar head when it has one; else the score is the tuned model's likelihood ratio)."""

    kind = "reward"

    def __init__(self, settings: Settings, folder: Path) -> None:
        from peft import PeftModel

        from seedlab.train import load_model

        info = read_reward_info(folder)
        self.scalar_head = info.get("head") == "scalar"
        base, self.tokenizer = load_model(settings, info["model"], scalar_head=self.scalar_head)
        self.model = PeftModel.from_pretrained(base, str(folder / "adapter"))
        self.model_id = f"reward:{folder}"
        self.low, self.high = (float(t) for t in info["thresholds"])

    def score(self, items: Sequence[tuple[str, str]]) -> list[float]:
        from seedlab.train import likelihood_scores, reward_scores

        return (reward_scores if self.scalar_head else likelihood_scores)(self.model, self.tokenizer, items)


def read_reward_info(folder: Path) -> dict[str, Any]:
    """A reward model's judge.json, checked: a clear error names the folder when it is not one."""
    info = read_json_object(folder / REWARD_FILE)
    thresholds = info.get("thresholds")
    if info.get("kind") != "reward" or not isinstance(info.get("model"), str) or not (
            isinstance(thresholds, list) and len(thresholds) == 2) or not (folder / "adapter").is_dir():
        raise SeedlabError(f"{folder}: not a reward judge (judge.json with kind, model and thresholds, and adapter/); "
                           f"give the judge folder `seedlab judge train --kind reward` wrote")
    return info


def calibrate(chosen: Sequence[float], rejected: Sequence[float]) -> tuple[float, float]:
    """Rating thresholds from scores of known-better and known-worse answers: below the median worse answer is a
    1, from the median better answer up a 3 (when the medians come the other way round, both cut at their mean)."""
    import statistics

    low, high = statistics.median(rejected), statistics.median(chosen)
    if low > high:
        low = high = (low + high) / 2
    return low, high


def write_reward_info(folder: Path, model: str, thresholds: tuple[float, float], head: str = "likelihood",
                      **extra: object) -> None:
    from seedlab.fsutil import write_text_atomic

    write_text_atomic(folder / REWARD_FILE, json.dumps({"kind": "reward", "model": model, "head": head,
                                                        "thresholds": list(thresholds), **extra}, indent=2))
