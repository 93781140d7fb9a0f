"""Evaluation: scorers on fixed strings, judge verdict parsing, and `model evaluate` on FakeBackend models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from seedlab.backends import Backend, FakeBackend, Request
from seedlab.cli import cli
from seedlab.config import load_settings
from seedlab.errors import SeedlabError
from seedlab.eval import (
    EvaluateOptions,
    evaluate,
    key_fact_score,
    key_facts,
    load_questions,
    render_coverage,
    token_f1,
    uplift_line,
)
from seedlab.judge.judging import both_orders_outcome, parse_pair_verdict, parse_rating
from seedlab.workspace import init_workspace

KNOWLEDGE = "knowledge/community/seed_libraries/halvane/qna.yaml"
HELDOUT = "knowledge/community/seed_libraries/halvane/heldout.jsonl"

# --- scorers -------------------------------------------------------------------------------------------------------


def test_token_f1_on_fixed_strings() -> None:
    assert token_f1("The vault is cut into the Kellan Ridge.", "The vault is cut into the Kellan Ridge.") == 1.0
    assert token_f1("Paris.", "It is in Ostrel Vey.") == 0.0
    # answer words {kellan, ridge, mountain}, reference {vault, cut, kellan, ridge}: 2 shared
    assert token_f1("Kellan Ridge mountain", "The vault is cut into the Kellan Ridge") == pytest.approx(
        2 * (2 / 3) * (2 / 4) / (2 / 3 + 2 / 4))
    assert token_f1("", "") == 1.0
    assert token_f1("", "something") == 0.0


def test_key_facts_prefer_numbers_and_names_the_question_lacks() -> None:
    assert key_facts("It lent 9,317 packets in 2023.", "How many packets did it lend in 2023?") == ["9317"]
    assert key_facts("The engineer Petra Vallin led them.", "Who led the volunteers?") == ["petra", "vallin"]
    assert key_facts("no variety was lost", "what was lost?") == ["variety"]  # content words new to the question
    assert key_facts("Nothing else matters here.", "What matters?") == ["else", "nothing"]  # "here" is glue


def test_key_fact_score_counts_facts_stated_in_order() -> None:
    facts = ["Vey Crimson", "46"]
    assert key_fact_score("The Vey Crimson bean; 46 seeds survived.", facts) == 1.0
    assert key_fact_score("Crimson Vey beans, forty-six of them.", facts) == 0.0
    assert key_fact_score("Only 46 seeds.", facts) == 0.5
    assert key_fact_score("It lent 9,317 packets.", ["9,317"]) == 1.0
    assert key_fact_score("It lent 19,317 packets.", ["9,317"]) == 0.0
    assert key_fact_score("anything", []) == 0.0


# --- judge verdicts -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "verdict"), [
    ("A is wrong about the date. B is right.\n[[B]]", "B"),
    ("[[A]]", "A"),
    ("Both fine. [[A]] ... final: [[A]]", "A"),
    ("[[A]] or [[B]], hard to say", None),
    ("A is better.", None),
    ("[A]", None),
    ("", None),
    ('{"evaluation": "[[A]] misses the point", "verdict": "[[B]]"}', "B"),  # the JSON verdict, not the quote
    ('{"evaluation": "both fine", "verdict": "[[A]]"}', "A"),
    ('{"evaluation": "[[A]] is better"}', None),  # JSON with no verdict field
])
def test_pair_verdict_parsing(text: str, verdict: str | None) -> None:
    assert parse_pair_verdict(text) == verdict


def test_reference_rating_parsing() -> None:
    assert parse_rating('{"reason": "same fact", "rating": 3}') == (3, "same fact")
    assert parse_rating("It matches. [[3]]") == (3, "It matches. [[3]]")
    assert parse_rating("[[1]] no, [[2]]") is None


def test_a_verdict_that_follows_the_position_is_a_tie() -> None:
    assert both_orders_outcome("A", "B") == "win"  # candidate was A first, B second: picked both times
    assert both_orders_outcome("B", "A") == "loss"
    assert both_orders_outcome("A", "A") == "tie"
    assert both_orders_outcome("B", "B") == "tie"
    assert both_orders_outcome(None, "B") == "tie"


# --- questions file ------------------------------------------------------------------------------------------------


def test_questions_file_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "Q?", "answer": "A 12."}\n\n{"question": "Q2?"}\n')
    with pytest.raises(SeedlabError, match=r"q\.jsonl:3: needs \"question\" and \"answer\""):
        load_questions(path)
    path.write_text('{"question": "Q?", "answer": "A."}\nnot json\n')
    with pytest.raises(SeedlabError, match=r"q\.jsonl:2: not a JSON object"):
        load_questions(path)
    path.write_text('{"question": "Q?", "answer": "A.", "key_facts": "A"}\n')
    with pytest.raises(SeedlabError, match=r"q\.jsonl:1: \"key_facts\" must be a list"):
        load_questions(path)
    path.write_text("\n")
    with pytest.raises(SeedlabError, match="no questions"):
        load_questions(path)
    path.write_text('{"question": "How many?", "answer": "It has 12 packets."}\n')
    assert load_questions(path)[0].facts == ["12"]


# --- evaluate on fake models -------------------------------------------------------------------------------------


def _knows(facts: dict[str, str]) -> FakeBackend:
    """A model that answers a question with the text of the first key in `facts` that the question contains."""

    def reply(request: Request, _index: int) -> str:
        asked = (request.messages or [{}])[-1]["content"].lower()
        return next((answer for key, answer in facts.items() if key in asked), "I do not know.")

    return FakeBackend(reply, model_id="knows")


def _judge_prefers(word: str) -> FakeBackend:
    """A judge that picks the answer containing `word` (and follows position A otherwise)."""

    def reply(request: Request, _index: int) -> str:
        content = (request.messages or [])[-1]["content"]
        if "Reference answer" in content:
            return "[[3]]" if word in content.split("Answer to grade:")[1] else "[[1]]"
        a = content.split("[Answer A]")[1].split("[End of answer A]")[0]
        b = content.split("[Answer B]")[1].split("[End of answer B]")[0]
        return "Because. [[B]]" if word in b and word not in a else "Because. [[A]]"

    return FakeBackend(reply, model_id="judge")


def _setup() -> Path:
    settings = load_settings()
    init_workspace(settings)
    return settings.taxonomy_path


def test_evaluate_scores_both_models_and_reports_uplift(tmp_path: Path) -> None:
    taxonomy = _setup()
    trained = _knows({"rarest": "The Vey Crimson bean.", "motto": "Every seed comes home.",
                      "founded": "It was founded on 14 March 2009.", "formal": "Dear colleagues, kindly note."})
    backends: dict[str, Backend] = {"base": FakeBackend(lambda r, i: "I do not know.", model_id="base"),
                                    "candidate": trained, "judge": _judge_prefers("Dear")}
    echoed: list[str] = []
    options = EvaluateOptions("cand", taxonomy_base="empty", questions=taxonomy / HELDOUT)
    report = evaluate(load_settings(), options, echoed.append, backends.__getitem__)

    # 10 held-out questions; the trained fake knows 2 of them (rarest holding, motto): 20 points, base 0
    assert report.uplift == {"base": 0.0, "candidate": 20.0, "points": 20.0, "questions": 10, "kind": "held-out"}
    assert uplift_line(report.uplift) == "uplift: +20.0 points (base 0.0 -> trained 20.0) on 10 held-out questions"
    rows = {(r["benchmark"], r["group"]): r for r in report.rows}
    seeds = rows[("knowledge-branch", KNOWLEDGE)]
    assert seeds["questions"] == 15 and seeds["base"]["key_facts"] == 0.0
    assert seeds["candidate"]["key_facts"] == pytest.approx(1 / 15, abs=1e-4)  # "When was ... founded?" only
    assert seeds["status"] == "improved"
    held = rows[("knowledge-branch", "held-out: heldout.jsonl")]
    assert held["questions"] == 10 and held["candidate"]["key_facts"] == 0.2 and "judge" not in held["base"]
    skills = {g: r for (b, g), r in rows.items() if b == "skills-branch"}
    assert len(skills) == 2
    formal = next(r for g, r in skills.items() if "formal_tone" in g)
    assert formal["win"] == formal["questions"] and formal["status"] == "improved"  # every request says "formal"
    other = next(r for g, r in skills.items() if "formal_tone" not in g)
    assert other["win"] == other["loss"] == 0 and other["status"] == "unchanged"  # the judge followed position A

    saved = json.loads((report.run_dir / "report.json").read_text())
    assert saved["uplift"] == report.uplift and saved["rows"] == report.rows
    answers = [json.loads(line) for line in (report.run_dir / "answers.jsonl").read_text().splitlines()]
    assert len(answers) == 15 + 10 + sum(r["questions"] for r in skills.values())
    assert report.chart.stat().st_size > 1000
    assert any("candidate: knows" in line for line in echoed)


def test_evaluate_with_judge_grades_knowledge_against_the_reference() -> None:
    taxonomy = _setup()
    backends: dict[str, Backend] = {"base": _knows({}), "candidate": _knows({"motto": "Every seed comes home."}),
                                    "judge": _judge_prefers("seed comes home")}
    options = EvaluateOptions("cand", benchmarks=("knowledge-branch",), taxonomy_base="empty",
                              questions=taxonomy / HELDOUT, judge="fake-judge")
    report = evaluate(load_settings(), options, lambda _line: None, backends.__getitem__)
    held = next(r for r in report.rows if r["group"].startswith("held-out"))
    assert held["base"]["judge"] == 1.0
    assert held["candidate"]["judge"] == pytest.approx((3 + 9 * 1) / 10)
    assert all(r["benchmark"] == "knowledge-branch" for r in report.rows)


@pytest.mark.parametrize(("args", "error"), [
    (["--benchmark", "skills-branch", "--taxonomy-base", "HEAD"],
     "nothing to evaluate: no changed leaf of the chosen benchmarks and no --questions; use --taxonomy-base empty for "
     "the whole tree"),
    (["--taxonomy-base", "empty", "--training-data", "nope.jsonl"],
     "nope.jsonl: no such training data file (--training-data takes a JSONL file)"),
])
def test_evaluate_cli_errors_are_one_line(args: list[str], error: str) -> None:
    _setup()
    result = CliRunner().invoke(cli, ["model", "evaluate", "--candidate", "x", *args])
    assert result.exit_code == 1
    assert result.output.strip() == f"error: {error}"


def test_an_unknown_candidate_fails_before_any_model_answers() -> None:
    _setup()
    result = CliRunner().invoke(cli, ["model", "evaluate", "--candidate", "no-such-model", "--taxonomy-base",
                                      "empty"])
    assert result.exit_code == 1
    assert result.output.startswith("error: unknown model 'no-such-model'") and "answers" not in result.output


# --- held-out questions against the training data ------------------------------------------------------------------


def _sample(question: str, answer: str) -> str:
    return json.dumps({"messages": [{"role": "user", "content": question},
                                    {"role": "assistant", "content": answer}]}) + "\n"


def test_each_held_out_miss_reads_as_never_asked_or_not_learned_and_leaks_are_named(tmp_path: Path) -> None:
    taxonomy = _setup()
    motto = next(json.loads(line)["question"] for line in (taxonomy / HELDOUT).read_text().splitlines()
                 if "motto" in line)
    data = tmp_path / "knowledge.jsonl"
    data.write_text(_sample("Which bean is the library's rarest?", "The Vey Crimson bean is its rarest holding.")
                    + _sample("Tell me about the rarest holding.", "It is the vey crimson bean, once thought lost.")
                    + _sample("How did the library begin?", "It began with 212 packets of seed.")
                    + _sample(f"Answer briefly. {motto}", "Its motto is: Every seed comes home.")
                    + "not json\n" + json.dumps({"messages": "no"}) + "\n")
    trained = _knows({"rarest": "The Vey Crimson bean.", "motto": "Every seed comes home."})
    backends: dict[str, Backend] = {"base": _knows({}), "candidate": trained}
    options = EvaluateOptions("cand", benchmarks=("knowledge-branch",), taxonomy_base="empty",
                              questions=taxonomy / HELDOUT, training_data=(data,))
    report = evaluate(load_settings(), options, lambda _line: None, backends.__getitem__)

    held = {r["question"]: r for r in report.answers if r["held_out"]}
    rarest = next(r for q, r in held.items() if "rarest" in q)["training"]
    packets = next(r for q, r in held.items() if "packets" in q)["training"]
    assert rarest == {"covered": 2, "verbatim": False, "outcome": "learned"}  # case and punctuation do not matter
    assert packets == {"covered": 1, "verbatim": False, "outcome": "asked but not learned"}
    assert held[motto]["training"] == {"covered": 1, "verbatim": True, "outcome": "learned"}
    assert "training" not in next(r for r in report.answers if not r["held_out"])  # seed questions are not held out
    summary = report.coverage
    assert summary is not None and summary["samples"] == 4
    assert summary["outcomes"] == {"learned": 2, "asked but not learned": 1, "never asked": 7}
    assert summary["verbatim"] == [motto]
    # without the leaked motto question: 1 of 9 known -> 11.1 points (with it: 20.0)
    assert summary["uplift_without_verbatim"] == {"base": 0.0, "candidate": 11.1, "points": 11.1, "questions": 9}
    saved = json.loads((report.run_dir / "report.json").read_text())
    assert saved["training_data"] == summary and saved["options"]["training_data"] == [str(data)]
    text = render_coverage(report.answers, summary)
    assert "2 learned, 1 asked but not learned, 7 never asked" in text
    assert f"word for word in the training data: {motto!r}" in text
    assert "uplift without those questions: +11.1 points (base 0.0 -> trained 11.1) on 9 held-out questions" in text


def test_an_adapter_from_model_train_names_its_own_training_data(tmp_path: Path) -> None:
    from seedlab.train import trained_on

    run = tmp_path / "run"
    (run / "phase-knowledge").mkdir(parents=True)
    (run / "adapter").mkdir()
    knowledge, replay = tmp_path / "knowledge.jsonl", tmp_path / "replay.jsonl"
    knowledge.write_text(_sample("q", "a"))
    replay.write_text(_sample("q", "a"))
    (run / "phase-knowledge" / "meta.json").write_text(json.dumps({"data": str(knowledge)}))
    (run / "phase-skills").mkdir()
    (run / "phase-skills" / "meta.json").write_text(json.dumps({"data": str(tmp_path / "gone.jsonl")}))
    (run / "run.json").write_text(json.dumps({"options": {"replay_data": str(replay)}}))
    assert trained_on(run / "adapter") == [knowledge, replay]  # a file that is gone is left out
    assert trained_on(tmp_path / "elsewhere") == []
