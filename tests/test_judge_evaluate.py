"""`judge evaluate` on FakeBackend judges: accuracy over both orders, position consistency, unparseable share."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from seedlab.backends import FakeBackend, Request
from seedlab.cli import cli
from seedlab.errors import SeedlabError
from seedlab.judge import chance_line, evaluate_judge, load_pairs, score_line
from seedlab.judge._evaluate import Pair, clear_of_chance

PAIRS = [Pair(f"Question {i}?", f"good answer {i}", f"bad answer {i}") for i in range(4)]


def _answers(request: Request) -> tuple[str, str]:
    content = (request.messages or [])[-1]["content"]
    return (content.split("[Answer A]\n")[1].split("\n[End of answer A]")[0],
            content.split("[Answer B]\n")[1].split("\n[End of answer B]")[0])


def test_a_judge_that_knows_scores_full_marks() -> None:
    judge = FakeBackend(lambda r, _i: "A has no errors. [[A]]" if "good" in _answers(r)[0] else "[[B]]")
    score = evaluate_judge(judge, PAIRS)
    assert (score.pairs, score.accuracy, score.consistent, score.unparseable) == (4, 1.0, 1.0, 0.0)
    assert len(judge.requests) == 8 and all(r.temperature == 0.0 for r in judge.requests)
    assert score_line(score) == "accuracy: 100.0% position-consistent: 100.0% unparseable: 0.0% (4 pairs)"


def test_a_judge_that_always_says_a_is_half_right_and_never_consistent() -> None:
    score = evaluate_judge(FakeBackend(lambda r, _i: "[[A]]"), PAIRS)
    assert (score.accuracy, score.consistent, score.unparseable) == (0.5, 0.0, 0.0)


def test_the_chance_bound_is_the_binomial_five_percent_level_and_shrinks_with_more_pairs() -> None:
    assert clear_of_chance(48) == pytest.approx(0.5 + 1.645 * 0.5 / 96 ** 0.5)  # 58.4 % on the shipped 48 pairs
    assert clear_of_chance(200) < clear_of_chance(48) < clear_of_chance(4) < 1.0
    assert chance_line(0.5, 48).startswith("not clear of chance: on 48 pairs that takes more than 58.4%")
    assert chance_line(0.6, 48).startswith("clear of chance")


def test_malformed_verdicts_count_as_unparseable_and_wrong() -> None:
    replies = iter(["[[A]]", "[[B]]",  # right both times
                    "[[A]] [[B]]", "[[B]]",  # both named, then right
                    "A", "[[A]]",  # neither, then wrong
                    "", "[[[B]]"])  # nothing, then the B verdict inside extra brackets
    score = evaluate_judge(FakeBackend(lambda r, _i: next(replies)), PAIRS)
    assert score.unparseable == 3 / 8
    assert score.accuracy == 4 / 8
    assert score.consistent == 1 / 4


def test_pairs_file_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"prompt": "p", "chosen": "c", "rejected": "r"}) + "\n{\"prompt\": \"p\"}\n")
    with pytest.raises(SeedlabError, match=r"pairs\.jsonl:2: needs \"prompt\", \"chosen\" and \"rejected\""):
        load_pairs(path)
    path.write_text("[1, 2]\n")
    with pytest.raises(SeedlabError, match=r"pairs\.jsonl:1: needs"):
        load_pairs(path)
    path.write_text("")
    with pytest.raises(SeedlabError, match="no pairs"):
        load_pairs(path)


def test_cli_reports_a_bad_pairs_file_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text("not json\n")
    result = CliRunner().invoke(cli, ["judge", "evaluate", "--pairs", str(path)])
    assert result.exit_code == 1
    assert result.output.startswith(f"error: {path}:1: not a JSON object")


def test_a_scalar_judges_single_comparison_per_pair_needs_a_wider_lead() -> None:
    assert clear_of_chance(48, 1) == pytest.approx(0.5 + 1.645 * 0.5 / 48 ** 0.5)  # 61.9 %: one comparison a pair
    assert chance_line(0.6, 48, 1).startswith("not clear of chance: on 48 pairs that takes more than 61.9%")
