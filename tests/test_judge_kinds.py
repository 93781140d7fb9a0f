"""The three judge kinds behind one interface: scalar judges compare scores and rate by calibrated thresholds;
the reward model's Bradley-Terry training on a tiny in-memory model; corruptions; bad judge references; a scalar
judge filtering SDG's skill samples; `judge train --kind reward` on stand-ins."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from test_sdg_generate import SKILLS, good_responder
from test_train import FACTS, tiny_loader, tiny_tokenizer

from seedlab.backends import FakeBackend, ModelError
from seedlab.config import load_settings
from seedlab.errors import SeedlabError
from seedlab.judge import JudgeTrainOptions, evaluate_judge, train_judge, trained_judges
from seedlab.judge._evaluate import Pair
from seedlab.judge._reward import CORRUPTIONS, corrupt, training_pairs
from seedlab.judge._scalar import calibrate, write_reward_info
from seedlab.judge._synth import SynthPair
from seedlab.judge.judging import ScalarJudge, judge_kind, open_judge
from seedlab.judge.rounds import RoundModels
from seedlab.sdg import GenerateOptions, generate
from seedlab.workspace import init_workspace


class WordJudge(ScalarJudge):
    """Scores an answer by how many of the request's words it repeats."""

    kind = "reward"
    model_id = "words"
    low, high = 1.0, 2.0

    def score(self, items: Sequence[tuple[str, str]]) -> list[float]:
        return [float(len(set(p.lower().split()) & set(a.lower().split()))) for p, a in items]


def test_a_scalar_judge_compares_scores_whatever_the_order_and_rates_by_thresholds() -> None:
    judge = WordJudge()
    items = [("red apple pie", "red apple", "blue sky"), ("red apple pie", "blue sky", "red apple"),
             ("x", "y", "z")]
    assert [o for o, _ in judge.compare(items)] == ["win", "loss", "tie"]
    assert judge.rate([("a b c", "nothing"), ("a b c", "a"), ("a b c", "a b")]) == [1, 2, 3]
    assert judge.grade([("a b c", "ignored reference", "a b")]) == [3]
    pairs = [Pair("red apple pie", "red apple", "blue sky"), Pair("q", "x", "y")]
    score = evaluate_judge(judge, pairs)
    assert score.accuracy == pytest.approx(0.75) and score.consistent == 1.0 and score.unparseable == 0.0


def test_calibration_cuts_at_the_medians_of_worse_and_better_answers() -> None:
    assert calibrate([2.0, 3.0, 4.0], [0.0, 1.0, 5.0]) == (1.0, 3.0)
    assert calibrate([0.0, 1.0], [2.0, 4.0]) == (1.75, 1.75)  # a judge that ranks them backwards: one cut


def test_bradley_terry_loss_matches_the_formula() -> None:
    import torch

    from seedlab.train._reward import bradley_terry_loss

    loss = bradley_terry_loss(torch.tensor([2.0, 0.0]), torch.tensor([1.0, 0.0]))
    assert float(loss) == pytest.approx((math.log(1 + math.exp(-1.0)) + math.log(2)) / 2, rel=1e-6)


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_each_corruption_makes_a_different_worse_answer(kind: str) -> None:
    good = "Water boils at one hundred degrees. Salt raises the boiling point slightly."
    worse = corrupt(good, kind, "Bicycles need oiled chains and pumped tyres.", random.Random(0))
    assert worse is not None and worse != good
    if kind == "dropped":
        assert worse == "Water boils at one hundred degrees."
    if kind == "scrambled":
        assert sorted(worse.split()) == sorted(good.split())
    if kind == "swapped":
        assert {"Bicycles", "oiled", "chains", "pumped", "tyres."} & set(worse.split())
    assert corrupt("Too short.", kind, "other words here", random.Random(0)) is None


def test_training_pairs_hold_every_self_taught_pair_and_count_each_kind() -> None:
    pairs = [SynthPair(f"Q{k}?", f"Answer number {k} says this and that about it.", f"Other {k}.", f"M{k}")
             for k in range(6)]
    made, counts = training_pairs(pairs, 0)
    assert counts == {"self_taught": 6, "dropped": 2, "scrambled": 2, "swapped": 2} and len(made) == 12


def tiny_scalar_loader(_reference: str) -> tuple[Any, Any]:
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    tokenizer = tiny_tokenizer()
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128, num_labels=1,
                         pad_token_id=tokenizer.pad_token_id)
    return LlamaForSequenceClassification(config), tokenizer


@pytest.mark.parametrize("head", ["scalar", "likelihood"])
def test_a_reward_model_learns_to_score_the_better_answer_higher(tmp_path: Path, head: str) -> None:
    from peft import PeftModel

    from seedlab.train import RewardConfig, fit_reward, likelihood_scores, reward_scores

    settings = load_settings()
    settings.config.train.tokens_per_batch = 128
    settings.config.train.max_length = 128
    # float32: on a bf16 CPU the tiny model's bf16 rounding decided whether one of the two batches converged (seed 0
    # ended at 0.231 on it with the one-addmm LoRA forward, 0.005 in float32); this test is about the reward head
    settings.config.train.precision = "fp32"
    pairs = [(q, a, FACTS[(k + 1) % len(FACTS)][1]) for k, (q, a) in enumerate(FACTS)]
    loader = tiny_scalar_loader if head == "scalar" else tiny_loader
    adapter = fit_reward(settings, "tiny", pairs, tmp_path / "reward", RewardConfig(60, 2e-3, 0, head),
                         lambda _l: None, loader=loader)
    rows = [json.loads(line) for line in (tmp_path / "reward" / "metrics.jsonl").read_text().splitlines()]
    # The last steps' mean, not one step's loss: a single six-pair batch swings with the attention kernel's rounding.
    last = sum(r["loss"] for r in rows[-4:]) / 4
    assert last < 0.1 and last < rows[0]["loss"] / 4
    base, tokenizer = loader("tiny")
    model = PeftModel.from_pretrained(base, str(adapter))
    score = reward_scores if head == "scalar" else likelihood_scores
    scores = score(model, tokenizer, [(q, a) for q, a, _ in pairs] + [(q, b) for q, _, b in pairs])
    assert all(good > bad for good, bad in zip(scores[:len(pairs)], scores[len(pairs):], strict=True))


def test_bad_judge_references_name_the_reference(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no-such-model"):
        open_judge(load_settings(), "likelihood:no-such-model")
    folder = tmp_path / "judge"
    folder.mkdir()
    (folder / "judge.json").write_text('{"kind": "reward"}')
    assert judge_kind(str(folder)) == "reward"
    with pytest.raises(SeedlabError, match=f"{folder}: not a reward judge"):
        open_judge(load_settings(), str(folder))


def test_sdg_with_a_scalar_judge_keeps_and_drops_skill_samples_by_its_rating(seedlab_home: Path) -> None:
    init_workspace(load_settings())
    settings = load_settings()

    class Strict(WordJudge):
        low, high = 1000.0, 2000.0  # every answer rates 1

    result = generate(settings, GenerateOptions(taxonomy_base="empty", scale=1), teacher=FakeBackend(good_responder),
                      judge=Strict())
    for leaf in SKILLS:
        assert result.stats["leaves"][leaf]["samples"] == 0
        assert result.stats["leaves"][leaf]["blocks"]["pair_judge"]["dropped"]
    lenient = type("Lenient", (WordJudge,), {"low": -1.0, "model_id": "lenient"})()
    kept = generate(settings, GenerateOptions(taxonomy_base="empty", scale=1, pipeline="full"),
                    teacher=FakeBackend(good_responder), judge=lenient)
    samples = [json.loads(line) for line in (kept.run_dir / "skills.jsonl").read_text().splitlines()]
    rated = [s["metadata"]["judge"] for s in samples
             if s["metadata"]["source"] == "generated" and "skill" in s["metadata"]["leaf_kind"]]
    assert rated and all(j["kind"] == "reward" and j["judge"] == "lenient" and j["rating"] >= 2 for j in rated)
    assert json.loads((kept.run_dir / "run.json").read_text())["options"]["judge"] == {"model": "lenient",
                                                                                         "kind": "reward"}


class RewardStand(RoundModels):
    """`judge train --kind reward` with the teacher, training and the reward judge replaced."""

    def __init__(self) -> None:
        super().__init__(load_settings())
        self.trained: list[list[tuple[str, str, str]]] = []

    def model(self, ref: str) -> Any:
        def teacher(request: Any, _index: int) -> str:
            if request.prompt is not None:
                asked = request.prompt.rsplit("Request: ", 1)[1].split("\n")[0]
                return " " + asked.replace("thing", "item").replace(".", " backwards.")
            return f"About {(request.messages or [])[-1]['content']} with several more words here"

        return self._open.setdefault(ref, FakeBackend(teacher, model_id=ref))

    def fit_reward(self, model_ref: str, pairs: list[tuple[str, str, str]], folder: Path, config: Any,
                   echo: Any, progress: Any) -> Path:
        self.trained.append(pairs)
        (folder / "adapter").mkdir(parents=True)
        return folder / "adapter"

    def open_reward(self, folder: Path) -> Any:
        assert json.loads((folder / "judge.json").read_text())["kind"] == "reward"
        return WordJudge()


def test_judge_train_reward_writes_a_judge_folder_with_thresholds_and_both_scores(tmp_path: Path) -> None:
    instructions = tmp_path / "instructions.jsonl"
    instructions.write_text("".join(json.dumps({"prompt": f"Name thing number {k}."}) + "\n" for k in range(8)))
    stand = RewardStand()
    options = JudgeTrainOptions(instructions, teacher="teacher", kind="reward")
    result = train_judge(load_settings(), options, echo=lambda _line: None, models=stand)
    assert result.kind == "reward" and result.judge == result.run_dir / "judge"
    info = json.loads((result.judge / "judge.json").read_text())
    assert info["model"] == "smollm2-135m-instruct" and len(info["thresholds"]) == 2
    assert info["pairs_by_kind"]["self_taught"] == 8 and len(stand.trained[0]) > 8
    row = result.rounds[0]
    assert row["pairs"] == 48 and row["quality"]["pairs"] == 48 and row["consistent"] == 1.0
    assert trained_judges(load_settings())[0]["judge"] == str(result.judge)


def test_write_reward_info_is_read_back_as_a_reward_judge(tmp_path: Path) -> None:
    folder = tmp_path / "j"
    (folder / "adapter").mkdir(parents=True)
    write_reward_info(folder, "m", (0.1, 0.2))
    assert judge_kind(str(folder)) == "reward"


def test_likelihood_and_reward_judges_open_from_their_references(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Both scalar kinds answer both questions, on tiny in-memory models standing in for load_model's."""
    import seedlab.train
    from seedlab.train import RewardConfig, fit_reward

    def tiny(_settings: object, ref: str, scalar_head: bool = False) -> tuple[Any, Any]:
        return tiny_scalar_loader(ref) if scalar_head else tiny_loader(ref)

    monkeypatch.setattr(seedlab.train, "load_model", tiny)
    settings = load_settings()
    items = [(q, a, FACTS[(k + 1) % len(FACTS)][1]) for k, (q, a) in enumerate(FACTS)]
    likelihood = open_judge(settings, "likelihood:tiny")
    assert likelihood.kind == "likelihood" and likelihood.model_id == "likelihood:tiny"
    assert [o for o, _ in likelihood.compare(items[:1] + [(items[0][0], items[0][1], items[0][1])])][1] == "tie"
    assert all(r in (1, 2, 3) for r in likelihood.rate([(q, a) for q, a, _ in items]))

    settings.config.train.tokens_per_batch = 128
    settings.config.train.max_length = 128
    adapter = fit_reward(settings, "tiny", items, tmp_path / "r", RewardConfig(60, 2e-3, 0, "scalar"),
                         lambda _l: None, loader=tiny_scalar_loader)
    folder = tmp_path / "judge"
    (folder).mkdir()
    adapter.rename(folder / "adapter")
    write_reward_info(folder, "tiny", (-1.0, 1.0), "scalar")
    reward = open_judge(settings, str(folder))
    assert reward.kind == "reward"
    assert [o for o, _ in reward.compare(items)] == ["win"] * len(items)
    assert evaluate_judge(reward, [Pair(q, a, b) for q, a, b in items]).accuracy == 1.0


def test_verdict_round_options_are_refused_for_a_reward_judge(tmp_path: Path) -> None:
    with pytest.raises(SeedlabError, match="--iterations and --samples set the verdict rounds"):
        train_judge(load_settings(), JudgeTrainOptions(iterations=2, kind="reward"), echo=lambda _line: None,
                    models=RewardStand())
    assert not load_settings().judges_path.exists()
