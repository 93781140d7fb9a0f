"""The planned cost of `data generate` before it runs: per-leaf facts, requests and minutes from measured rates, and
budgets (--max-facts, --max-minutes) that cap knowledge leaves' facts evenly over the document."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_sdg_generate import KNOWLEDGE, good_responder, read_jsonl, teacher_judges

from seedlab.backends import FakeBackend
from seedlab.config import Settings, load_settings
from seedlab.sdg import GenerateOptions, LeafPlan, Rates, generate
from seedlab.sdg._estimate import apply_budget, leaf_plan, measured_rates, spread_facts
from seedlab.workspace import init_workspace


@pytest.fixture
def settings(seedlab_home: Path) -> Settings:
    init_workspace(load_settings())
    return teacher_judges()


def planned(settings: Settings, **options: object) -> tuple[list[LeafPlan], Rates, object]:
    seen: list[tuple[list[LeafPlan], Rates]] = []
    result = generate(settings, GenerateOptions(taxonomy_base="empty", scale=1, **options),  # type: ignore[arg-type]
                      teacher=FakeBackend(good_responder), on_plan=lambda p, r: seen.append((p, r)))
    assert len(seen) == 1
    return seen[0][0], seen[0][1], result


def test_the_plan_counts_facts_and_later_runs_use_the_measured_rates(settings: Settings) -> None:
    plans, rates, result = planned(settings)
    assert rates.source.startswith("defaults")
    knowledge = next(p for p in plans if p.path == KNOWLEDGE)
    stats = result.stats["leaves"][KNOWLEDGE]  # type: ignore[attr-defined]
    assert knowledge.units == stats["facts"] >= 20 and stats["facts_left_out"] == 0
    assert knowledge.requests == round(knowledge.units * rates.requests_per_fact + 0.5)
    assert all(p.seconds == pytest.approx(p.requests * rates.seconds_per_request) for p in plans)

    measured = measured_rates(settings.datasets_path, "smollm2-135m-instruct")
    made = result.stats["leaves"].values()  # type: ignore[attr-defined]
    assert measured.source == f"run {result.run_dir.name}"  # type: ignore[attr-defined]
    assert measured.seconds_per_request == pytest.approx(sum(v["seconds"] for v in made)
                                                         / sum(v["teacher_requests"] for v in made))
    assert measured.requests_per_fact == pytest.approx(stats["teacher_requests"] / stats["facts"])
    assert measured_rates(settings.datasets_path, "another-teacher").source.startswith("defaults")

    again, rates_again, _ = planned(settings)  # the same leaves: every one reused, nothing to pay
    assert rates_again.source == measured.source
    assert all(p.reused and p.requests == 0 for p in again)


def test_max_facts_keeps_facts_spread_over_the_document(settings: Settings) -> None:
    plans, _, result = planned(settings, max_facts=5)
    knowledge = next(p for p in plans if p.path == KNOWLEDGE)
    assert knowledge.fact_cap == 5 and knowledge.left_out == knowledge.units - 5
    stats = result.stats["leaves"][KNOWLEDGE]  # type: ignore[attr-defined]
    assert (stats["facts"], stats["facts_left_out"]) == (5, knowledge.units - 5)
    recall = [s for s in read_jsonl(result.run_dir / "knowledge.jsonl")  # type: ignore[attr-defined]
              if s["metadata"]["source"] == "recall"]
    facts = list(dict.fromkeys(s["metadata"]["fact"] for s in recall))
    assert len(facts) == 5
    assert facts[0].startswith("The Halvane Seed Library is a community seed bank")  # the first paragraph ...
    assert any("Grey Osk" in f or "Dunmar" in f for f in facts)  # ... and the last one


def test_a_time_budget_caps_knowledge_and_states_what_is_left_out() -> None:
    rates = Rates(seconds_per_request=2.0, requests_per_fact=2.0, requests_per_seed=5.0)
    plans = [leaf_plan("k1", "knowledge", 40, 1, rates, False), leaf_plan("k2", "knowledge", 20, 1, rates, False),
             leaf_plan("s", "freeform_skill", 6, 1, rates, False), leaf_plan("k3", "knowledge", 30, 1, rates, True)]
    assert [p.seconds for p in plans] == [160.0, 80.0, 60.0, 0.0]
    apply_budget(plans, rates, max_minutes=3.0, max_facts=None)  # 180 s: 60 for the skill, 120 for 60 facts
    assert [(p.fact_cap, p.left_out) for p in plans] == [(20, 20), (10, 10), (None, 0), (None, 0)]
    assert sum(p.seconds for p in plans) <= 180
    tight = [leaf_plan("k", "knowledge", 10, 1, rates, False), leaf_plan("s", "freeform_skill", 6, 1, rates, False)]
    apply_budget(tight, rates, max_minutes=0.5, max_facts=None)  # skills alone pass it: one fact stays
    assert tight[0].fact_cap == 1
    assert spread_facts(list(range(10)), 4) == [0, 3, 6, 9] and spread_facts([1, 2], None) == [1, 2]


def test_cli_prints_the_plan_before_generating(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    import seedlab.backends as backends
    from seedlab.cli import cli

    monkeypatch.setattr(backends, "make_backend", lambda *a, **k: FakeBackend(good_responder))
    args = ["data", "generate", "--taxonomy-base", "empty", "--max-facts", "4", "--pipeline", "simple"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("plan (defaults measured on a 2-core CPU: 1.56 s per teacher request")
    knowledge = next(line for line in lines if line.rstrip().endswith("facts left out)"))
    assert re.match(r"\s+4 facts\s+\d+ requests\s+~\s*[\d.]+ min\s+knowledge/\S+/qna.yaml\s+\(\d+ of \d+ facts",
                    knowledge)
    assert re.search(r"^  total: \d+ requests, ~[\d.]+ min$", result.output, flags=re.MULTILINE)
    run = sorted(settings.datasets_path.iterdir())[-1]
    assert json.loads((run / "stats.json").read_text())["leaves"][KNOWLEDGE]["facts"] == 4


def test_the_run_bar_counts_down_the_planned_minutes() -> None:
    from seedlab.cli._progress import leaf_bars

    plans = [LeafPlan("a", "knowledge", 10, 20, 60.0), LeafPlan("b", "freeform_skill", 5, 30, 120.0),
             LeafPlan("c", "knowledge", 8, 0, 0.0, reused=True)]
    with leaf_bars(disable=True) as bars:
        bars.set_plan(plans)
        task = bars.bars.tasks[bars.plan_task]
        assert (task.description, task.total) == ("plan: ~3.0 min left", 180)
        bars("a", 1, 2)  # half of a's planned minute done
        assert bars.remaining_seconds() == pytest.approx(150.0)
        assert (task.description, task.completed) == ("plan: ~2.5 min left", 30)
        bars("a", 2, 2)
        bars("b", 3, 4)
        assert bars.remaining_seconds() == pytest.approx(30.0) and task.completed == 150
