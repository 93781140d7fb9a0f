"""The judge's shared pieces (seedlab.judge.judging): schemas, verdict and rating parsing, votes, and the judge
reference policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from seedlab.config import load_settings
from seedlab.judge.judging import (
    RATING_SCHEMA,
    VERDICT_SCHEMA,
    judge_identity,
    judge_model,
    judge_ref,
    median_rating,
    parse_rating,
    parse_verdict,
    vote,
)


def test_schemas_name_their_keys() -> None:
    assert VERDICT_SCHEMA["required"] == ["verdict"] and "verdict" in VERDICT_SCHEMA["properties"]
    assert RATING_SCHEMA["required"] == ["reason", "rating"]  # one rating form for SDG, evaluation and TAO


@pytest.mark.parametrize(("text", "verdict"), [
    ('{"verdict": 1}', 1),
    ('{"verdict": 0}', 0),
    (' {"verdict": 1, "extra": "ok"} ', 1),
    ("not json", None),
    ('{"verdict": 1', None),
    ("", None),
    ('{"rating": 1}', None),
    ('{"verdict": 2}', None),
    ('{"verdict": -1}', None),
    ('{"verdict": "1"}', None),
    ('[1]', None),
    ('"verdict"', None),
    ("null", None),
])
def test_parse_verdict(text: str, verdict: int | None) -> None:
    assert parse_verdict(text) == verdict


@pytest.mark.parametrize(("text", "rating"), [
    ('{"rating": 3, "reason": " clear and complete "}', (3, "clear and complete")),
    ('{"rating": 1, "reason": "wrong"}', (1, "wrong")),
    ('{"rating": 2}', (2, "")),
    ("not json", None),
    ('{"rating": 3, "reason": "cut', None),
    ('{"reason": "no rating"}', None),
    ('{"rating": 4, "reason": "too high"}', None),
    ('{"rating": 0, "reason": "too low"}', None),
    ('{"rating": "3", "reason": "a string"}', None),
    ("[3]", None),
    ("It matches. [[3]]", (3, "It matches. [[3]]")),  # a server that ignores the schema
    ("[[1]] no, [[2]]", None),
    ("rating: 3", None),
])
def test_parse_rating(text: str, rating: tuple[int, str] | None) -> None:
    assert parse_rating(text) == rating


def test_vote_takes_the_median_of_parseable_votes() -> None:
    assert vote([1, 1, 0]) == 1
    assert vote([0, 0, 1]) == 0
    assert vote([1, None, None]) == 1
    assert vote([1, None, 0]) == 0  # two votes that disagree: the lower one
    assert vote([None, None, None]) is None
    assert vote([]) is None


def test_median_rating_takes_the_median_and_a_reason_that_gave_it() -> None:
    assert median_rating([(3, "great"), (1, "wrong"), (2, "thin")]) == (2, "thin")
    assert median_rating([(3, "a"), (3, "b"), (1, "c")]) == (3, "a")
    assert median_rating([None, (1, "wrong"), None]) == (1, "wrong")
    assert median_rating([(3, "a"), (1, "b")]) == (1, "b")  # the lower middle of an even count
    assert median_rating([None, None]) is None
    assert median_rating([]) is None


def test_a_judge_reference_falls_back_to_eval_judge_then_the_teacher() -> None:
    settings = load_settings()
    assert judge_ref(settings) == "likelihood:smollm2-135m-instruct"  # the default: measured best, no training
    settings.config.eval.judge = None
    assert judge_ref(settings) == settings.config.sdg.teacher
    settings.config.eval.judge = "my-judge.gguf"
    assert judge_ref(settings) == "my-judge.gguf"
    assert judge_ref(settings, "given.gguf") == "given.gguf"


def test_an_adapter_judge_is_merged_into_a_gguf_beside_it_once_and_again_when_retrained(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    import seedlab.train._export

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    weights = adapter / "adapter_model.safetensors"
    weights.write_text("weights")
    merged: list[tuple[Path, Path | None]] = []

    def write_compared(_settings: object, _model: str, target: Path, source: Path | None = None) -> Path:
        merged.append((target, source))
        target.write_text("gguf")
        return target

    monkeypatch.setattr(seedlab.train._export, "write_compared", write_compared)
    lines: list[str] = []
    first = judge_model(load_settings(), str(adapter), lines.append)
    assert first == str(tmp_path / "adapter-merged-q8_0.gguf") and merged == [(Path(first), adapter)]
    assert "merging" in lines[0]
    assert judge_model(load_settings(), str(adapter)) == first and len(merged) == 1  # kept, not merged again
    later = Path(first).stat().st_mtime + 10
    os.utime(weights, (later, later))  # trained again after the merge
    assert judge_model(load_settings(), str(adapter)) == first and len(merged) == 2
    assert judge_identity(load_settings(), str(adapter))["adapter"] == str(adapter)


def test_an_adapter_merged_into_another_base_is_named_for_it(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Against another base than the one it trained from (`model evaluate --base`), the merged file says which, so
    the two merges never stand in for each other; the trained-from one keeps `model convert`'s name."""
    import json

    import seedlab.train._export
    from seedlab.train import merged_file

    trained_from, other = tmp_path / "small.gguf", tmp_path / "other.gguf"
    for model in (trained_from, other):
        model.write_bytes(b"GGUF" + bytes(60))
    run = tmp_path / "run"
    adapter = run / "adapter"
    adapter.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"options": {"model": str(trained_from)}}))
    written: list[tuple[str, Path]] = []

    def write_compared(_settings: object, model: str, target: Path, _adapter: Path | None = None) -> Path:
        written.append((model, target))
        target.write_text("gguf")
        return target

    monkeypatch.setattr(seedlab.train._export, "write_compared", write_compared)
    settings = load_settings()
    assert merged_file(settings, adapter) == run / "adapter-merged-q8_0.gguf"
    assert merged_file(settings, adapter, str(trained_from)) == run / "adapter-merged-q8_0.gguf"
    assert merged_file(settings, adapter, str(other)) == run / "adapter-other-merged-q8_0.gguf"
    assert written == [(str(trained_from), run / "adapter-merged-q8_0.gguf"),
                       (str(other), run / "adapter-other-merged-q8_0.gguf")]
    trained_from.unlink()  # the model it trained from is gone: a given base still merges
    assert merged_file(settings, adapter, str(other)) == run / "adapter-other-merged-q8_0.gguf"


def test_a_judge_that_names_no_model_is_a_clear_error(tmp_path: Path) -> None:
    from seedlab.backends import ModelError

    with pytest.raises(ModelError, match="no-such-judge"):
        judge_identity(load_settings(), "no-such-judge")
