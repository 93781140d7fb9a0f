"""Scalar scores of (request, answer) pairs: a reward model trained with the Bradley-Terry loss on preference
pairs (a LoRA backbone with a one-number head), and the per-token log-likelihood a plain model gives an answer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seedlab.backends import is_adapter, pad_token_id
from seedlab.config import Settings
from seedlab.errors import SeedlabError
from seedlab.train._data import IGNORE, Example, collate, length_batches
from seedlab.train._loop import PhasePlan, metrics_log, run_phase, save_tuned
from seedlab.train._losses import sequence_logps
from seedlab.train._model import ModelLoader, load_model, prepare_model
from seedlab.train._preference import chat_example

SCORE_BATCH = 16  # (request, answer) rows scored together


@dataclass(frozen=True)
class RewardConfig:
    epochs: int
    lr: float
    seed: int
    head: str = "likelihood"  # likelihood: the score is the model's own likelihood ratio; scalar: a new head


# The request a likelihood score compares with: an answer is credited only with the likelihood that its own request
# adds, so fluent but off-request text does not score well.
NEUTRAL = "Write a few sentences."

def bradley_terry_loss(chosen: Any, rejected: Any) -> Any:
    """Mean of -log sigmoid(r_chosen - r_rejected): the chance the better answer scores higher, maximised."""
    import torch

    return -torch.nn.functional.logsigmoid(chosen - rejected).mean()


def fit_reward(settings: Settings, model_ref: str, pairs: Sequence[tuple[str, str, str]], folder: Path,
               config: RewardConfig, echo: Callable[[str], None], progress: Callable[[int, int], None] | None = None,
               loader: ModelLoader | None = None) -> Path:
    """Train a reward model on (request, better, worse) pairs into `folder/adapter`; resumes from `folder`'s
    checkpoints. The score is, by `config.head`, the model's likelihood ratio of the answer after its request and
    after NEUTRAL (LoRA only, so training starts from the likelihood judge), or a new scalar head read at the last
    token (LoRA and the head). `loader` gives the model (default: load_model)."""
    import torch

    adapter = folder / "adapter"
    if is_adapter(adapter):
        return adapter
    folder.mkdir(parents=True, exist_ok=True)
    train, scalar = settings.config.train, config.head == "scalar"
    model, tokenizer = (loader or (lambda ref: load_model(settings, ref, scalar_head=scalar)))(model_ref)
    torch.manual_seed(config.seed)
    core = prepare_model(model, train, False, "cpu" if not torch.cuda.is_available() else "cuda:0",
                         "SEQ_CLS" if scalar else "CAUSAL_LM")
    device, pad_id = str(next(core.parameters()).device), pad_token_id(tokenizer)
    # Each pair is a group of rows: (request, better), (request, worse), and for a likelihood score the same two
    # answers after NEUTRAL.
    width = 2 if scalar else 4
    rows: list[Example] = []
    for prompt, better, worse in pairs:
        group = [chat_example(tokenizer, prompt, better), chat_example(tokenizer, prompt, worse)]
        if not scalar:
            group += [chat_example(tokenizer, NEUTRAL, better), chat_example(tokenizer, NEUTRAL, worse)]
        if max(len(e.input_ids) for e in group) <= train.max_length:
            rows += group
    if not rows:
        raise SeedlabError(f"nothing to train the reward model on: every pair is over train.max_length="
                           f"{train.max_length}")
    proxies = [Example([0] * max(len(e.input_ids) for e in rows[width * k: width * k + width]), [], "")
               for k in range(len(rows) // width)]

    def loss_fn(model: Any, batch_pairs: list[int]) -> tuple[Any, int]:
        picked = [r for k in batch_pairs for r in range(width * k, width * k + width)]
        batch = {key: v.to(device) for key, v in collate(rows, picked, pad_id).items()}
        if scalar:
            scores = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()[:, 0]
        else:
            means = sequence_logps(model, batch) / (batch["labels"][:, 1:] != IGNORE).sum(dim=1).clamp(min=1)
            scores = torch.stack([means[0::4] - means[2::4], means[1::4] - means[3::4]], dim=1).flatten()
        return bradley_terry_loss(scores[0::2], scores[1::2]), int(batch["attention_mask"].sum())

    plan = PhasePlan("reward", config.epochs, config.lr, 0.1, None, train.grad_accum, train.save_every, config.seed,
                     train.precision)
    echo(f"reward model: {len(proxies)} pairs")
    log = metrics_log(folder / "metrics.jsonl", progress and (lambda row: progress(row["step"], row["steps"])))
    result = run_phase(core, rows, length_batches(proxies, train.tokens_per_batch // width), plan, pad_id,
                       folder / "checkpoints", log, batch_loss=loss_fn)
    return save_tuned(core, folder, result, echo, "reward model")


def reward_scores(model: Any, tokenizer: Any, items: Sequence[tuple[str, str]]) -> list[float]:
    """The reward model's score of each (request, answer)."""

    def score(batch: dict[str, Any]) -> Any:
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()[:, 0]

    return _by_batch(model, tokenizer, items, score)


def likelihood_scores(model: Any, tokenizer: Any, items: Sequence[tuple[str, str]]) -> list[float]:
    """How much more likely each answer is, per token, after its request than after NEUTRAL."""
    given = answer_logprobs(model, tokenizer, items)
    neutral = answer_logprobs(model, tokenizer, [(NEUTRAL, answer) for _, answer in items])
    return [g - n for g, n in zip(given, neutral, strict=True)]


def answer_logprobs(model: Any, tokenizer: Any, items: Sequence[tuple[str, str]]) -> list[float]:
    """Mean log-probability per token of each answer after its request (the answer's tokens only)."""

    def mean_logp(batch: dict[str, Any]) -> Any:
        return sequence_logps(model, batch) / (batch["labels"][:, 1:] != IGNORE).sum(dim=1).clamp(min=1)

    return _by_batch(model, tokenizer, items, mean_logp)


def _by_batch(model: Any, tokenizer: Any, items: Sequence[tuple[str, str]],
              value: Callable[[dict[str, Any]], Any]) -> list[float]:
    """`value` of each (request, answer) rendered as a chat, SCORE_BATCH rows at a time, without gradients."""
    import torch

    rows = [chat_example(tokenizer, prompt, answer) for prompt, answer in items]
    values: list[float] = []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(rows), SCORE_BATCH):
            batch = collate(rows, list(range(start, min(len(rows), start + SCORE_BATCH))), pad_token_id(tokenizer))
            values += [float(v) for v in value(batch)]
    return values
