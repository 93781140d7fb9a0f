"""TAO on FakeBackend and a tiny model: candidate generation, each scorer, pair building with margins, the DPO loss
against a hand-computed value, and DPO tuning that moves the policy toward the chosen responses."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from test_train import FACTS, tiny_loader

from seedlab.backends import FakeBackend, Request
from seedlab.config import load_settings
from seedlab.errors import SeedlabError
from seedlab.tao._candidates import (
    STRATEGIES,
    build_pairs,
    final_answer,
    judge_ratings,
    sample_candidates,
    score_all,
    split_samples,
)
from seedlab.tao._scorers import load_scorer, python_parses, schema_scorer, score_response, sql_parses, valid_json
from seedlab.tao.examples import json_ab
from seedlab.train import TuneConfig, tune
from seedlab.train._losses import dpo_loss, sequence_logps

# --- candidates ----------------------------------------------------------------------------------------------


def test_samples_are_spread_over_the_strategies() -> None:
    assert [n for _, n in split_samples(8)] == [2, 2, 2, 1, 1]
    assert [s.name for s, _ in split_samples(2)] == ["plain", "careful"]
    assert sum(n for _, n in split_samples(13)) == 13


def test_candidates_come_from_every_strategy_and_step_by_step_keeps_its_answer() -> None:
    def reply(request: Request, index: int) -> str:
        messages = request.messages or []
        system = messages[0]["content"] if len(messages) > 1 else ""
        step_by_step = "step by step" in system
        return 'First, think. Answer: {"a": 1}' if step_by_step else f"reply {index} t={request.temperature}"

    policy = FakeBackend(reply)
    [cands] = sample_candidates(policy, ["Give JSON."], samples=8, max_tokens=40, seed=5)
    assert len(cands) == 8
    assert {c["strategy"] for c in cands} == {s.name for s in STRATEGIES}
    assert [c["response"] for c in cands if c["strategy"] == "step-by-step"] == ['{"a": 1}'] * 2
    assert all((r.messages or [])[-1] == {"role": "user", "content": "Give JSON."} for r in policy.requests)
    assert sorted({r.temperature for r in policy.requests}) == [0.3, 0.7, 1.0]
    assert len({r.seed for r in policy.requests}) == len(policy.requests) and all(r.max_tokens == 40
                                                                                   for r in policy.requests)


def test_a_step_by_step_reply_without_an_answer_mark_is_kept_whole() -> None:
    step = next(s for s in STRATEGIES if s.name == "step-by-step")
    assert final_answer(step, "  just text ") == "just text"
    assert final_answer(STRATEGIES[0], "Answer: x") == "Answer: x"


# --- scorers ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("response", "expected"), [
    ('{"a": "red", "b": "orchard"}', 1.0),
    ('```json\n{"a": "red", "b": 3}\n```', 0.5),
    ('Sure! {"a": "red", "b": "tree"} Hope it helps.', 0.5),
    ('{"a": "red"}', 0.25),
    ('{"a": "red", "b": ""}', 0.25),
    ('{"a": "red", "b": "x", "c": "y"}', 0.25),
    ("An apple is red.", 0.0),
    ('{"a": "red", "b": ', 0.0),
])
def test_the_example_rule_scorer(response: str, expected: float) -> None:
    assert json_ab("prompt", response) == expected


def test_builtin_verifiers() -> None:
    assert valid_json("", '[1, 2]') == 1.0 and valid_json("", "```json\n{\"x\": 1}\n```") == 1.0
    assert valid_json("", 'here: {"x": 1}') == 0.5 and valid_json("", "no json") == 0.0
    assert python_parses("", "```python\ndef f(x):\n    return x\n```") == 1.0
    assert python_parses("", "def f(:") == 0.0
    assert sql_parses("", "SELECT name FROM users WHERE id = 3;") == 1.0
    assert sql_parses("", "SELECT FROM WHERE (") == 0.0 and sql_parses("", "") == 0.0


def test_schema_scorer(tmp_path: Path) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"type": "object", "required": ["a"], "properties": {"a": {"type": "integer"}}}))
    score = schema_scorer(schema)
    assert score("", '{"a": 3}') == 1.0 and score("", 'so {"a": 3}') == 0.5 and score("", '{"a": "x"}') == 0.0
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(SeedlabError, match="bad.json: not a usable JSON schema"):
        schema_scorer(tmp_path / "bad.json")


def failing(_prompt: str, _response: str) -> float:
    raise RuntimeError("scorer bug")


def text_score(_prompt: str, _response: str) -> Any:
    return "high"


def test_custom_scorers_load_by_module_and_function_with_weights() -> None:
    scorer = load_scorer("seedlab.tao.examples:json_ab=2.5")
    assert (scorer.name, scorer.weight, scorer.fn) == ("seedlab.tao.examples:json_ab", 2.5, json_ab)
    for spec, message in [("nosuch.module:f", "cannot import"), ("seedlab.tao.examples:nope", "no function nope"),
                          ("json=heavy", "must be a number"), ("whatever", "give json, python")]:
        with pytest.raises(SeedlabError, match=message):
            load_scorer(spec)


def test_failed_scorers_are_recorded_and_left_out_of_the_total() -> None:
    scorers = [load_scorer("json=3"), load_scorer("test_tao:failing"), load_scorer("test_tao:text_score")]
    scored = score_response(scorers, "p", '{"x": 1}')
    assert scored.scores == {"json": 1.0, "test_tao:failing": None, "test_tao:text_score": None}
    assert scored.total == 1.0
    assert scored.errors["test_tao:failing"] == "RuntimeError: scorer bug"
    assert "not a finite number" in scored.errors["test_tao:text_score"]
    assert score_response([load_scorer("test_tao:failing")], "p", "r").total is None


def test_the_judge_rating_joins_the_weighted_total() -> None:
    judge = FakeBackend(lambda r, _i: "Good. [[3]]" if "GOOD" in (r.messages or [])[-1]["content"] else "Bad [[1]]")
    assert judge_ratings(judge, [("p", "GOOD"), ("p", "bad")]) == [1.0, 0.0]
    scored = score_all([load_scorer("json")], judge, 3.0, [("p", "GOOD"), ("p", '{"a": 1}')])
    assert [s["total"] for s in scored] == [0.75, 0.25]  # (1*0 + 3*1)/4 and (1*1 + 3*0)/4
    unparseable = score_all([], FakeBackend(lambda _r, _i: "no rating"), 1.0, [("p", "r")])
    assert unparseable[0]["total"] is None and unparseable[0]["errors"] == {"judge": "unparseable rating"}


# --- pairs -----------------------------------------------------------------------------------------------------


def _cands(*scores: float | None) -> list[dict[str, Any]]:
    return [{"response": f"r{k}" + "x" * k, "total": s} for k, s in enumerate(scores)]


def test_pairs_take_best_against_worst_above_the_margin() -> None:
    pair = build_pairs("p", _cands(0.5, 1.0, 0.0, None, 0.25), margin=0.25)
    assert pair is not None and (pair["chosen"], pair["rejected"]) == ("r1x", "r2xx")
    assert (pair["chosen_score"], pair["rejected_score"]) == (1.0, 0.0)
    assert build_pairs("p", _cands(0.5, 0.6), margin=0.25) is None  # a margin too small
    assert build_pairs("p", _cands(1.0, None, None), margin=0.1) is None  # one scored candidate
    tie = build_pairs("p", [{"response": "long answer", "total": 1.0}, {"response": "short", "total": 1.0},
                            {"response": "bad", "total": 0.0}], margin=0.5)
    assert tie is not None and tie["chosen"] == "short"  # equal scores: the shorter is better


# --- DPO -------------------------------------------------------------------------------------------------------


def test_dpo_loss_matches_a_hand_computed_value() -> None:
    import torch

    loss = dpo_loss(torch.tensor([-10.0, -5.0]), torch.tensor([-12.0, -5.0]), torch.tensor([-11.0, -6.0]),
                    torch.tensor([-11.0, -4.0]), beta=0.1)
    # margins: (2 - 0) = 2 and (0 - (-2)) = 2; -log sigmoid(0.2) = log(1 + e^-0.2)
    assert float(loss) == pytest.approx(math.log(1 + math.exp(-0.2)), rel=1e-6)
    equal = dpo_loss(torch.tensor([-3.0]), torch.tensor([-3.0]), torch.tensor([-3.0]), torch.tensor([-3.0]), 0.5)
    assert float(equal) == pytest.approx(math.log(2))


def test_sequence_logps_sum_the_labelled_tokens_only() -> None:
    import torch

    from seedlab.train._data import IGNORE

    model, _ = tiny_loader("tiny")
    ids = torch.tensor([[5, 6, 7, 8, 0], [5, 9, 10, 0, 0]])
    labels = torch.tensor([[IGNORE, IGNORE, 7, 8, IGNORE], [IGNORE, 9, 10, IGNORE, IGNORE]])
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0]])
    got = sequence_logps(model, {"input_ids": ids, "labels": labels, "attention_mask": mask})
    logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)
    expected = [logp[0, 1, 7] + logp[0, 2, 8], logp[1, 0, 9] + logp[1, 1, 10]]
    assert torch.allclose(got, torch.stack(expected), atol=1e-5)


def test_dpo_tuning_prefers_the_chosen_responses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    settings.config.train.tokens_per_batch = 128
    settings.config.train.max_length = 128
    items = [{"prompt": q, "chosen": a, "rejected": FACTS[(k + 1) % len(FACTS)][1]} for k, (q, a) in enumerate(FACTS)]
    folder = tmp_path / "tune"
    pure = TuneConfig("dpo", 30, 5e-3, 0.5, 0, nll=0.0)  # the preference loss alone, so step one is log 2
    adapter = tune(settings, "tiny", None, items, folder, pure, lambda _line: None, loader=tiny_loader)
    assert (adapter / "adapter_config.json").is_file()
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["loss"] == pytest.approx(math.log(2), abs=1e-3)  # the policy starts as the reference
    assert rows[-1]["loss"] < 0.3
    # the reference log-probs were cached for resume, and a second call finds the finished adapter
    assert (folder / "reference.json").is_file()
    assert tune(settings, "tiny", None, items, folder, pure, print, loader=tiny_loader) == adapter


def test_rft_tuning_learns_the_best_responses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    settings.config.train.tokens_per_batch = 128
    items = [{"prompt": q, "response": a} for q, a in FACTS]
    folder = tmp_path / "new" / "tune"  # not there yet
    adapter = tune(settings, "tiny", None, items, folder, TuneConfig("rft", 20, 1e-2, 0.1, 0), lambda _line: None,
                   loader=tiny_loader)
    assert (adapter / "adapter_config.json").is_file()
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["loss"] < rows[0]["loss"] / 2
