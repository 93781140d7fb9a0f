"""`data generate` end to end on a FakeBackend over the example taxonomy: outputs, drops, scale, resume, reuse."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import git
import pytest
import yaml
from click.testing import CliRunner
from helpers import commit_all, good_responder, reworded

from seedlab.backends import FakeBackend, Request
from seedlab.cli import cli
from seedlab.config import Settings, load_settings
from seedlab.errors import SeedlabError
from seedlab.fsutil import read_json_object
from seedlab.sdg import GenerateOptions, RunResult, generate
from seedlab.sdg import _pipelines as pipelines
from seedlab.sdg import _verify as verify
from seedlab.taxonomy._leaf import git_blob_id
from seedlab.workspace import init_workspace

Responder = Callable[[Request, int], str]

GROUNDED = "compositional_skills/extraction/meetings/action_items/qna.yaml"
FREEFORM = "compositional_skills/writing/rewriting/formal_tone/qna.yaml"
KNOWLEDGE = "knowledge/community/seed_libraries/halvane/qna.yaml"
LEAVES = (GROUNDED, FREEFORM, KNOWLEDGE)
SKILLS = (GROUNDED, FREEFORM)
SEEDS = {GROUNDED: 5, FREEFORM: 6, KNOWLEDGE: 15}  # seed examples (knowledge: seed questions)

def with_judges(verdict: str = '{"verdict": 1}', rating: str = '{"rating": 3, "reason": "fine"}') -> Responder:
    """The good teacher, with the question judge and the pair judge answering the given texts."""

    def respond(request: Request, index: int) -> str:
        if request.json_schema is not None:
            return verdict if "verdict" in request.json_schema["properties"] else rating
        return good_responder(request, index)

    return respond


class Crash(RuntimeError):
    """The teacher dying mid-run."""


def crashing(after: int) -> Responder:
    """The good teacher for `after` samples, then a crash."""
    calls = 0

    def respond(request: Request, index: int) -> str:
        nonlocal calls
        calls += 1
        if calls > after:
            raise Crash(f"teacher died after {after} samples")
        return good_responder(request, index)

    return respond


@pytest.fixture
def settings(seedlab_home: Path) -> Settings:
    init_workspace(load_settings())
    return teacher_judges()


def teacher_judges() -> Settings:
    """The settings in force, with the fake teacher as the judge too (the real default, a likelihood judge, has
    tests of its own)."""
    settings = load_settings()
    settings.config.eval.judge = None
    return settings


def run(settings: Settings, responder: Responder, scale: int = 1, **options: Any) -> tuple[RunResult, FakeBackend]:
    fake = FakeBackend(responder)
    result = generate(settings, GenerateOptions(taxonomy_base="empty", scale=scale, **options), teacher=fake)
    return result, fake


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def slug(leaf: str) -> str:
    return leaf.removesuffix("/qna.yaml").replace("/", "__")


def journal_entries(path: Path) -> list[dict[str, Any]]:
    """The whole lines of a journal (a line cut short by a kill is left out)."""
    entries = []
    for line in path.read_text().splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue
    return entries


def journal_units(run_dir: Path, leaf: str) -> list[str]:
    return [entry["unit"] for entry in journal_entries(run_dir / "leaves" / slug(leaf) / "journal.jsonl")]


def all_samples(run_dir: Path) -> list[dict[str, Any]]:
    return read_jsonl(run_dir / "knowledge.jsonl") + read_jsonl(run_dir / "skills.jsonl")


def pairs(run_dir: Path) -> list[tuple[str, str]]:
    return sorted((s["messages"][0]["content"], s["messages"][1]["content"]) for s in all_samples(run_dir))


def generated(samples: list[dict[str, Any]], leaf: str) -> list[dict[str, Any]]:
    return [s for s in samples if s["metadata"]["leaf"] == leaf and s["metadata"]["source"] == "generated"
            and not s["metadata"].get("replay")]


# --- a good teacher ---------------------------------------------------------------------------------------------


def test_good_teacher_run_writes_every_output_with_provenance(settings: Settings) -> None:
    result, fake = run(settings, good_responder)
    run_dir = result.run_dir
    assert run_dir.parent == settings.datasets_path
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "finished" and info["id"] == run_dir.name and sorted(info["leaves"]) == sorted(LEAVES)
    assert result.empty_leaves == []
    assert fake.requests and all(r.seed is not None for r in fake.requests)

    stats = json.loads((run_dir / "stats.json").read_text())
    assert stats == json.loads(json.dumps(result.stats))
    assert set(stats["leaves"]) == set(LEAVES)
    assert stats["teacher"]["model"] == "smollm2-135m-instruct"
    assert re.fullmatch(r"[0-9a-f]{64}", stats["teacher"]["sha256"])
    assert stats["templates"] == {"name": "default", "version": 1}
    assert stats["teacher_tokens"] > 0
    skill_blocks = ["questions", "question_judge", "answers", "pair_judge", "dedupe"]
    assert list(stats["leaves"][FREEFORM]["blocks"]) == skill_blocks
    assert list(stats["leaves"][GROUNDED]["blocks"]) == ["contexts", *skill_blocks]
    assert list(stats["leaves"][KNOWLEDGE]["blocks"]) == ["standalone", "relevancy", "faithfulness", "dedupe"]
    for leaf in LEAVES:
        leaf_stats = stats["leaves"][leaf]
        assert leaf_stats["samples"] >= 1 and leaf_stats["reused"] is False
        for name, block in leaf_stats["blocks"].items():
            assert block["in"] == block["kept"] + sum(block["dropped"].values()), (leaf, name)
        assert leaf_stats["blocks"]["dedupe"]["kept"] == leaf_stats["samples"]
        assert (run_dir / "leaves" / slug(leaf) / "done.json").is_file()

    knowledge = read_jsonl(run_dir / "knowledge.jsonl")
    skills = read_jsonl(run_dir / "skills.jsonl")
    taxonomy = settings.taxonomy_path
    head = git.Repo(taxonomy).head.commit.hexsha
    for sample in knowledge + skills:
        assert [m["role"] for m in sample["messages"]] == ["user", "assistant"]
        assert all(m["content"].strip() for m in sample["messages"])
        meta = sample["metadata"]
        assert meta["leaf"] in LEAVES
        assert meta["seed_blob"] == git_blob_id((taxonomy / meta["leaf"]).read_bytes())
        assert meta["taxonomy_commit"] == head
        assert meta["teacher"] == stats["teacher"]
        assert meta["pipeline"] == "full"
        assert meta["templates"] == {"name": "default", "version": 1}
        assert meta["source"] in ("seed", "generated", "document", "recall")
    assert {s["metadata"]["leaf"] for s in knowledge} == {KNOWLEDGE}

    # every leaf yields generated samples, and its seeds
    for leaf in LEAVES:
        pool = knowledge if leaf == KNOWLEDGE else skills
        made = generated(pool, leaf)
        assert len(made) == stats["leaves"][leaf]["samples"] >= 1
        seeds = [s for s in pool if s["metadata"]["leaf"] == leaf and s["metadata"]["source"] == "seed"]
        assert len(seeds) == SEEDS[leaf]
    ids = [s["metadata"]["id"] for s in knowledge + skills if s["metadata"]["source"] == "generated"
           and not s["metadata"].get("replay")]
    assert len(ids) == len(set(ids))

    for leaf in SKILLS:
        for sample in generated(skills, leaf):
            meta = sample["metadata"]
            assert meta["judge"] == {"question_verdict": 1, "rating": 3, "reason": "fine"}
            assert meta["unmask"] is False and meta["id"].startswith(slug(leaf) + "#s")
            assert sample["messages"][1]["content"].startswith("Certainly: ")
        seeds = [s for s in skills if s["metadata"]["leaf"] == leaf and s["metadata"]["source"] == "seed"]
        assert all(s["metadata"]["judge"] is None for s in seeds)
    for sample in generated(skills, GROUNDED):
        assert sample["messages"][0]["content"].startswith(sample["metadata"]["context"] + "\n\n")
    assert all("context" not in s["metadata"] for s in generated(skills, FREEFORM))

    made = generated(knowledge, KNOWLEDGE)
    for sample in made:
        meta = sample["metadata"]
        assert meta["unmask"] is False and meta["document"] == "halvane.md"
        assert meta["checks"] == {"standalone": True, "relevancy": True, "faithfulness": True,
                                  "answer_source": "teacher"}
        assert sample["messages"][1]["content"] == meta["fact"]  # the good teacher answers with the fact
    documents = [s for s in knowledge if s["metadata"]["source"] == "document"]
    recall = [s for s in knowledge if s["metadata"]["source"] == "recall"]
    assert len(documents) + len(recall) == stats["leaves"][KNOWLEDGE]["seed_and_document_samples"] - SEEDS[KNOWLEDGE]
    assert len(documents) >= 1
    assert all(d["messages"][0]["content"] == "What does the document about The Halvane Seed Library say?"
               for d in documents)
    assert "Ostrel Vey" in documents[0]["messages"][1]["content"]

    replayed = [s for s in skills if s["metadata"].get("replay")]
    assert len(replayed) == round(settings.config.sdg.replay_fraction * len(knowledge)) >= 1
    assert all(s["metadata"]["leaf"] == KNOWLEDGE for s in replayed)
    originals = {json.dumps(s["messages"]) for s in knowledge}
    assert all(json.dumps(s["messages"]) in originals for s in replayed)
    assert stats["files"] == {"knowledge.jsonl": len(knowledge), "skills.jsonl": len(skills),
                              "replayed_knowledge": len(replayed)}

    runner = CliRunner()
    listed = runner.invoke(cli, ["data", "list"])
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.output.splitlines() if line.startswith(run_dir.name))
    assert "finished" in row and str(len(knowledge)) in row and str(len(skills)) in row
    shown = runner.invoke(cli, ["data", "show", run_dir.name, "--samples", "2"])
    assert shown.exit_code == 0, shown.output
    assert "--- knowledge.jsonl" in shown.output and "--- skills.jsonl" in shown.output
    assert "pair_judge" in shown.output and "faithfulness" in shown.output
    assert shown.output.count("metadata:") == 4
    assert "skill samples rated by: the teacher smollm2-135m-instruct as a generative judge" in shown.output
    assert runner.invoke(cli, ["data", "show", str(run_dir)]).exit_code == 0
    missing = runner.invoke(cli, ["data", "show", "no-such-run"])
    assert missing.exit_code == 1 and "error: no-such-run: no finished run there" in missing.output


def test_data_list_without_runs(settings: Settings) -> None:
    result = CliRunner().invoke(cli, ["data", "list"])
    assert result.exit_code == 0 and "no runs in" in result.output


def test_progress_reports_every_leaf(settings: Settings) -> None:
    seen: dict[str, tuple[int, int]] = {}
    generate(settings, GenerateOptions(taxonomy_base="empty", scale=1), teacher=FakeBackend(good_responder),
             progress=lambda leaf, done, total: seen.__setitem__(leaf, (done, total)))
    assert set(seen) == set(LEAVES)
    assert all(done == total > 0 for done, total in seen.values())


# --- drop reasons reach the stats ---------------------------------------------------------------------------------


def test_pair_judge_rating_1_empties_the_skill_leaves(settings: Settings) -> None:
    result, _ = run(settings, with_judges(rating='{"rating": 1, "reason": "wrong"}'))
    for leaf in SKILLS:
        leaf_stats = result.stats["leaves"][leaf]
        assert leaf_stats["samples"] == 0
        judge = leaf_stats["blocks"]["pair_judge"]
        assert judge["kept"] == 0 and judge["dropped"] == {"rated_1": judge["in"]} and judge["in"] > 0
        assert "dedupe" not in leaf_stats["blocks"]
    empty = dict(result.empty_leaves)
    assert set(empty) == set(SKILLS)
    for leaf in SKILLS:
        assert re.fullmatch(r"pair_judge: rated_1 \(\d+\)", empty[leaf])
    skills = read_jsonl(result.run_dir / "skills.jsonl")
    assert not generated(skills, GROUNDED) and not generated(skills, FREEFORM)
    seeds = [s for s in skills if s["metadata"]["source"] == "seed" and not s["metadata"].get("replay")]
    assert len(seeds) == SEEDS[GROUNDED] + SEEDS[FREEFORM]
    assert result.stats["leaves"][KNOWLEDGE]["samples"] >= 1  # knowledge has no judges


def test_a_rating_below_the_threshold_drops_and_at_it_keeps(settings: Settings) -> None:
    result, _ = run(settings, with_judges(rating='{"rating": 2, "reason": "thin"}'))  # threshold 2 by default
    skills = read_jsonl(result.run_dir / "skills.jsonl")
    assert all(s["metadata"]["judge"] == {"question_verdict": 1, "rating": 2, "reason": "thin"}
               for s in generated(skills, FREEFORM))
    assert generated(skills, FREEFORM) and result.empty_leaves == []


@pytest.mark.parametrize(("responder", "block", "reason"), [
    (with_judges(verdict="not json", rating="not json"), "question_judge", "judge_unparseable"),
    (with_judges(rating="not json"), "pair_judge", "judge_unparseable"),
    (with_judges(rating='{"rating": 7, "reason": "out of range"}'), "pair_judge", "judge_unparseable"),
    (with_judges(verdict='{"verdict": 0}'), "question_judge", "judge_rejected"),
])
def test_judge_drop_reasons_reach_the_stats(settings: Settings, responder: Responder, block: str,
                                            reason: str) -> None:
    result, _ = run(settings, responder)
    for leaf in SKILLS:
        leaf_stats = result.stats["leaves"][leaf]
        assert leaf_stats["samples"] == 0
        assert leaf_stats["blocks"][block]["dropped"] == {reason: leaf_stats["blocks"][block]["in"]}
        assert dict(result.empty_leaves)[leaf].startswith(f"{block}: {reason} (")
    if block == "question_judge":
        assert "pair_judge" not in result.stats["leaves"][FREEFORM]["blocks"]


def test_simple_pipeline_asks_no_judge(settings: Settings) -> None:
    result, fake = run(settings, good_responder, pipeline="simple")
    assert fake.requests and all(r.json_schema is None for r in fake.requests)
    skills = read_jsonl(result.run_dir / "skills.jsonl")
    for leaf in SKILLS:
        made = generated(skills, leaf)
        assert made and all(s["metadata"]["judge"] is None and s["metadata"]["pipeline"] == "simple" for s in made)
        blocks = result.stats["leaves"][leaf]["blocks"]
        assert "question_judge" not in blocks and "pair_judge" not in blocks
    assert json.loads((result.run_dir / "run.json").read_text())["options"]["pipeline"] == "simple"


def test_unfaithful_teacher_answers_fall_back_to_the_fact(settings: Settings) -> None:
    def respond(request: Request, index: int) -> str:
        if request.prompt is not None and request.prompt.endswith("Answer:"):
            return " The library was never built in 1999."
        return good_responder(request, index)

    result, _ = run(settings, respond)
    made = generated(read_jsonl(result.run_dir / "knowledge.jsonl"), KNOWLEDGE)
    assert made
    for sample in made:
        assert sample["metadata"]["checks"]["answer_source"] == "fact"
        answer = sample["messages"][1]["content"]
        assert answer.endswith(sample["metadata"]["fact"]) and "never" not in answer
    # a pronoun-led fact is answered with the sentence before it too
    led = [s for s in made if s["metadata"]["fact"].startswith("It was founded")]
    assert led and led[0]["messages"][1]["content"].startswith("The Halvane Seed Library is a community seed bank")


def test_knowledge_questions_the_fact_cannot_answer_drop_at_faithfulness(settings: Settings) -> None:
    def respond(request: Request, index: int) -> str:
        text = good_responder(request, index)
        if request.prompt is not None and request.prompt.endswith("Question:"):
            subject = text.removesuffix("?").split(" ", 5)[-1]  # the words after the four-word opener
            return f" When did {subject} happen?"  # only a fact with a number can answer 'when'
        return text

    result, _ = run(settings, respond)
    blocks = result.stats["leaves"][KNOWLEDGE]["blocks"]
    assert blocks["faithfulness"]["dropped"].get("does_not_answer", 0) > 0
    assert blocks["faithfulness"]["kept"] > 0
    for sample in generated(read_jsonl(result.run_dir / "knowledge.jsonl"), KNOWLEDGE):
        assert sample["messages"][0]["content"].startswith("When did ")
        assert re.search(r"\d", sample["messages"][1]["content"])


# --- scale and bounds ---------------------------------------------------------------------------------------------


def test_more_scale_gives_more_generated_samples(settings: Settings) -> None:
    small, _ = run(settings, good_responder, scale=1)
    large, _ = run(settings, good_responder, scale=3)
    assert large.run_dir != small.run_dir
    for leaf in SKILLS:
        assert large.stats["leaves"][leaf]["samples"] > small.stats["leaves"][leaf]["samples"]
        assert large.stats["leaves"][leaf]["reused"] is False
        assert small.stats["leaves"][leaf]["samples"] >= SEEDS[leaf]  # at least the target: scale x seeds
        assert large.stats["leaves"][leaf]["samples"] >= 3 * SEEDS[leaf]
    assert len(read_jsonl(large.run_dir / "skills.jsonl")) > len(read_jsonl(small.run_dir / "skills.jsonl"))


def test_recall_questions_cue_every_fact_and_answer_with_its_sentence(settings: Settings) -> None:
    result, _ = run(settings, good_responder)
    recall = [s for s in read_jsonl(result.run_dir / "knowledge.jsonl") if s["metadata"]["source"] == "recall"]
    facts = {s["metadata"]["fact"] for s in recall}
    assert len(facts) >= 20  # every sentence of the example document of five words or more
    per_fact = settings.config.sdg.recall_per_fact
    for fact in facts:
        mine = [s for s in recall if s["metadata"]["fact"] == fact]
        assert 1 <= len(mine) <= per_fact
        for sample in mine:
            question, answer = (m["content"] for m in sample["messages"])
            assert "the Halvane Seed Library" in question and sample["metadata"]["cue"] in question
            assert answer.endswith(fact) and sample["metadata"]["unmask"] is False
            assert sample["metadata"]["cue"] in fact.lower().replace("'s", "")
    rarest = next(s for s in recall if s["metadata"]["cue"] == "rarest holding")
    assert "Vey Crimson" in rarest["messages"][1]["content"]


def test_span_questions_ask_one_name_or_number_of_a_fact_and_answer_it_alone(settings: Settings) -> None:
    data = yaml.safe_load(settings.home.config_file.read_text(encoding="utf-8")) or {}
    data.setdefault("sdg", {})["span_per_fact"] = 2
    settings.home.config_file.write_text(yaml.safe_dump(data), encoding="utf-8")
    settings = load_settings(home=settings.home)
    result, _ = run(settings, good_responder)
    spans = [s for s in read_jsonl(result.run_dir / "knowledge.jsonl") if s["metadata"]["source"] == "span"]
    assert len({s["metadata"]["fact"] for s in spans}) >= 15
    for sample in spans:
        question, answer = (m["content"] for m in sample["messages"])
        assert question.endswith("?") and answer.rstrip(".") in sample["metadata"]["fact"].replace("*", "")
        assert answer.rstrip(".") not in question
    founded = [s["messages"] for s in spans if "14 March 2009" in s["metadata"]["fact"]]
    assert [m[1]["content"] for m in founded] == ["14 March 2009.", "Jonas Aberlund."]
    assert founded[0][0]["content"].startswith("The Halvane Seed Library was founded on what date")


def test_rephrased_questions_reword_each_accepted_question_and_keep_its_answer(settings: Settings) -> None:
    data = yaml.safe_load(settings.home.config_file.read_text(encoding="utf-8")) or {}
    data.setdefault("sdg", {})["rephrase_per_question"] = 2
    settings.home.config_file.write_text(yaml.safe_dump(data), encoding="utf-8")
    result, fake = run(load_settings(home=settings.home), good_responder)
    samples = read_jsonl(result.run_dir / "knowledge.jsonl")
    made = {s["messages"][0]["content"]: s for s in generated(samples, KNOWLEDGE)}
    rephrased = [s for s in samples if s["metadata"]["source"] == "rephrased"]
    assert made and len(made) / 2 < len(rephrased) <= len(made)  # a repeated wording drops; near twins may
    for sample in rephrased:
        original = made[sample["metadata"]["rephrases"]]
        assert sample["messages"][0]["content"] == reworded(sample["metadata"]["rephrases"])
        assert sample["messages"][1] == original["messages"][1]
        assert sample["metadata"]["fact"] == original["metadata"]["fact"] and sample["metadata"]["unmask"] is False
    asked = [r for r in fake.requests if (r.prompt or "").endswith("In other words:")]
    assert len(asked) == len(made) and all(r.n == 2 for r in asked)
    stats = read_json_object(result.run_dir / "stats.json")["leaves"][KNOWLEDGE]["blocks"]
    assert stats["rephrase"]["dropped"] == {"unchanged": len(made)}


@pytest.mark.parametrize(("question", "problem"), [
    ("In which year did the first crossing to Hollin Isle take place?", None),
    ("When was the first  crossing to Hollin isle?", "unchanged"),
    ("When was the first crossing to Hollin Isle, in 1990?", "changed_number")])
def test_a_rewording_must_differ_and_keep_the_numbers(question: str, problem: str | None) -> None:
    assert verify.check_rewording(question, "When was the first crossing to Hollin Isle?") == problem
    assert verify.check_rewording("Who paid 2.6 million marks in 1954?", "What did 1954 cost? 2.6") is None


def test_a_teacher_that_writes_nothing_finishes_with_bounded_work(settings: Settings) -> None:
    result, fake = run(settings, lambda request, index: "")
    knowledge = read_jsonl(result.run_dir / "knowledge.jsonl")
    assert len({s["metadata"]["fact"] for s in knowledge if s["metadata"]["source"] == "recall"}) >= 20
    empty = dict(result.empty_leaves)
    assert set(empty) == set(LEAVES)
    assert empty[GROUNDED].startswith("contexts: empty_or_too_short (")
    assert empty[FREEFORM].startswith("questions: empty_or_too_short (")
    assert empty[KNOWLEDGE].startswith("standalone: not_a_question (")
    max_rounds = settings.config.sdg.max_rounds
    for leaf in SKILLS:
        target = 1 * SEEDS[leaf]
        assert 0 < len(journal_units(result.run_dir, leaf)) <= max_rounds * 4 * target
    facts = len({u.split("r")[0] for u in journal_units(result.run_dir, KNOWLEDGE)})
    assert 0 < len(journal_units(result.run_dir, KNOWLEDGE)) <= max_rounds * facts
    assert len(fake.requests) < 2000
    assert json.loads((result.run_dir / "run.json").read_text())["status"] == "finished"
    # seeds and the document still make it into the files
    assert read_jsonl(result.run_dir / "knowledge.jsonl") and read_jsonl(result.run_dir / "skills.jsonl")


# --- resume -------------------------------------------------------------------------------------------------------


def calls_of_a_full_run(home: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, list[tuple[str, str]], int]:
    """Samples asked for, sorted (user, assistant) pairs and requests of an uninterrupted run in a fresh home."""
    monkeypatch.setenv("SEEDLAB_HOME", str(home))
    init_workspace(load_settings())
    count = 0

    def counting(request: Request, index: int) -> str:
        nonlocal count
        count += 1
        return good_responder(request, index)

    result, fake = run(teacher_judges(), counting)
    return count, pairs(result.run_dir), len(fake.requests)


def request_seeds(records: list[dict[str, Any]]) -> set[int]:
    """The seeds of every request the units of these records asked (a unit asks with seed .. seed+4)."""
    seeds: set[int] = set()
    for record in records:
        uid = record["id"].rsplit(".", 1)[0]
        base = pipelines.unit_seed(cast(Any, SimpleNamespace(seed=0)), uid)
        seeds |= {base + k for k in range(5)}
    return seeds


def finished_seeds(run_dir: Path) -> set[int]:
    return request_seeds([r for journal in run_dir.glob("leaves/*/journal.jsonl")
                          for entry in journal_entries(journal) for r in entry["records"]])


def resume_after_crash(home: Path, fraction: float, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                       tear: bool = False) -> None:
    total, expected, full_requests = calls_of_a_full_run(tmp_path / "fresh", monkeypatch)
    monkeypatch.setenv("SEEDLAB_HOME", str(home))
    init_workspace(load_settings())
    settings = teacher_judges()
    with pytest.raises(Crash):
        run(settings, crashing(int(total * fraction)))
    (crashed,) = settings.datasets_path.iterdir()
    assert json.loads((crashed / "run.json").read_text())["status"] == "running"
    in_progress = [leaf for leaf in LEAVES if (crashed / "leaves" / slug(leaf) / "journal.jsonl").exists()
                   and not (crashed / "leaves" / slug(leaf) / "done.json").exists()]
    assert len(in_progress) == 1
    torn: dict[str, Any] | None = None
    if tear:  # the last unit's line was cut short by the kill: it must run again
        journal = crashed / "leaves" / slug(in_progress[0]) / "journal.jsonl"
        lines = journal.read_text().splitlines(keepends=True)
        assert lines
        torn = json.loads(lines[-1])
        journal.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
        assert torn["unit"] not in journal_units(crashed, in_progress[0])
    finished = finished_seeds(crashed)
    before = {leaf: journal_units(crashed, leaf) for leaf in LEAVES
              if (crashed / "leaves" / slug(leaf) / "journal.jsonl").exists()}
    assert sum(len(units) for units in before.values()) > 0

    result, fake = run(settings, good_responder)
    assert result.run_dir == crashed  # the same run, resumed
    assert [p.name for p in settings.datasets_path.iterdir()] == [crashed.name]
    assert json.loads((crashed / "run.json").read_text())["status"] == "finished"
    assert not {r.seed for r in fake.requests} & finished  # no finished unit was asked again
    assert 0 < len(fake.requests) < full_requests
    for leaf in LEAVES:
        units = journal_units(crashed, leaf)
        assert len(units) == len(set(units)), leaf  # every unit ran once
        assert units[: len(before.get(leaf, []))] == before.get(leaf, [])
    if torn is not None:
        assert journal_units(crashed, in_progress[0]).count(torn["unit"]) == 1  # it ran again, once
        assert request_seeds(torn["records"]) & {r.seed for r in fake.requests}
        lines = (crashed / "leaves" / slug(in_progress[0]) / "journal.jsonl").read_text().splitlines()
        assert len(journal_entries(crashed / "leaves" / slug(in_progress[0]) / "journal.jsonl")) == len(lines)
    samples = all_samples(crashed)
    ids = [s["metadata"]["id"] for s in samples if "id" in s["metadata"] and not s["metadata"].get("replay")]
    assert len(ids) == len(set(ids)) > 0
    assert pairs(crashed) == expected  # the same data as an uninterrupted run
    fresh = json.loads(next((tmp_path / "fresh").rglob("stats.json")).read_text())["leaves"]
    requests = {leaf: stats["teacher_requests"] for leaf, stats in result.stats["leaves"].items()}
    assert requests == {leaf: stats["teacher_requests"] for leaf, stats in fresh.items()}  # counted across the kill


@pytest.mark.parametrize("fraction", [0.1, 0.45, 0.85])
def test_resume_after_a_crash_finishes_the_same_run(seedlab_home: Path, monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path, fraction: float) -> None:
    resume_after_crash(seedlab_home, fraction, monkeypatch, tmp_path)


def test_resume_ignores_a_torn_last_journal_line(seedlab_home: Path, monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    resume_after_crash(seedlab_home, 0.45, monkeypatch, tmp_path, tear=True)


def set_task(settings: Settings, leaf: str, task: str) -> str:
    """Commit a new task_description for a skill leaf; return the leaf's new blob id."""
    path = settings.taxonomy_path / leaf
    text = path.read_text()
    path.write_text(re.sub(r"^task_description: .*$", f"task_description: {task}", text, flags=re.MULTILINE))
    assert path.read_text() != text
    commit_all(git.Repo(settings.taxonomy_path), f"change the task of {leaf}")
    return git_blob_id(path.read_bytes())


def test_a_leaf_edited_between_crash_and_resume_is_generated_afresh(settings: Settings) -> None:
    with pytest.raises(Crash):
        run(settings, crashing(250))  # the grounded leaf is done, the freeform one part way
    (crashed,) = settings.datasets_path.iterdir()
    assert (crashed / "leaves" / slug(GROUNDED) / "done.json").exists()
    assert not (crashed / "leaves" / slug(FREEFORM) / "done.json").exists()
    assert journal_units(crashed, FREEFORM)
    blobs = {leaf: set_task(settings, leaf, f"Do the new task number {i} well.") for i, leaf in enumerate(SKILLS)}

    result, fake = run(settings, good_responder)
    assert result.run_dir == crashed  # same leaves, teacher and options: the run resumes
    skills = read_jsonl(crashed / "skills.jsonl")
    for i, leaf in enumerate(SKILLS):
        samples = [s for s in skills if s["metadata"]["leaf"] == leaf]
        assert samples and {s["metadata"]["seed_blob"] for s in samples} == {blobs[leaf]}
        assert generated(skills, leaf)
        asked = [r for r in fake.requests if f"Do the new task number {i} well." in (r.prompt or
                                                                                      json.dumps(r.messages))]
        assert asked
    assert result.stats["leaves"][KNOWLEDGE]["samples"] >= 1


def test_parallel_workers_give_the_same_data(seedlab_home: Path, monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    _, expected, _ = calls_of_a_full_run(tmp_path / "fresh", monkeypatch)
    monkeypatch.setenv("SEEDLAB_HOME", str(seedlab_home))
    init_workspace(load_settings())
    result, _ = run(teacher_judges(), good_responder, workers=4)
    assert pairs(result.run_dir) == expected


# --- reuse --------------------------------------------------------------------------------------------------------


def test_a_second_run_reuses_finished_leaves_and_a_changed_leaf_regenerates(settings: Settings) -> None:
    first, _ = run(settings, good_responder)
    second, fake = run(settings, good_responder)
    assert second.run_dir != first.run_dir
    assert fake.requests == []
    for leaf in LEAVES:
        assert second.stats["leaves"][leaf]["reused"] is True
        assert second.stats["leaves"][leaf]["reused_from"] == first.run_dir.name
        assert second.stats["leaves"][leaf]["samples"] == first.stats["leaves"][leaf]["samples"]
    assert pairs(second.run_dir) == pairs(first.run_dir)
    assert json.loads((second.run_dir / "run.json").read_text())["status"] == "finished"

    task = "Rewrite a casual chat message so that it reads as polite business English."
    blob = set_task(settings, FREEFORM, task)

    third, fake = run(settings, good_responder)
    assert third.run_dir not in (first.run_dir, second.run_dir)
    assert third.stats["leaves"][FREEFORM]["reused"] is False
    assert third.stats["leaves"][GROUNDED]["reused"] is True and third.stats["leaves"][KNOWLEDGE]["reused"] is True
    assert fake.requests
    for request in fake.requests:  # every request is for the changed leaf
        assert task in (request.prompt or json.dumps(request.messages))
    skills = read_jsonl(third.run_dir / "skills.jsonl")
    assert {s["metadata"]["seed_blob"] for s in skills if s["metadata"]["leaf"] == FREEFORM} == {blob}
    assert third.stats["leaves"][FREEFORM]["samples"] >= 1


# --- bad input ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("options", "message"), [
    ({"scale": 0}, "--scale must be at least 1"),
    ({"scale": 1, "pipeline": "x"}, "--pipeline must be full or simple"),
])
def test_bad_options_raise(settings: Settings, options: dict[str, Any], message: str) -> None:
    fake = FakeBackend(good_responder)
    with pytest.raises(SeedlabError, match=message):
        generate(settings, GenerateOptions(taxonomy_base="empty", **options), teacher=fake)
    assert fake.requests == [] and not settings.datasets_path.exists()


def test_no_changed_leaves_against_the_default_base(settings: Settings) -> None:
    with pytest.raises(SeedlabError, match="--taxonomy-base empty"):
        generate(settings, GenerateOptions(scale=1), teacher=FakeBackend(good_responder))


def test_cli_with_a_bad_teacher_file_prints_one_error_line(settings: Settings, tmp_path: Path) -> None:
    teacher = tmp_path / "not-a-model.gguf"
    teacher.write_bytes(b"hello")
    result = CliRunner().invoke(cli, ["data", "generate", "--taxonomy-base", "empty", "--scale", "1", "--quiet",
                                      "--teacher", str(teacher)])
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(teacher) in errors[0] and "not a GGUF model file" in errors[0]
    assert not list(settings.datasets_path.glob("*/run.json"))


def test_a_separate_judge_serves_every_judging_step(settings: Settings) -> None:
    """With a judge given (eval.judge in config opens one), the teacher writes and the judge alone judges."""
    teacher, judge = FakeBackend(good_responder), FakeBackend(with_judges(rating='{"rating": 1, "reason": "no"}'))
    result = generate(settings, GenerateOptions(taxonomy_base="empty", scale=1), teacher=teacher, judge=judge)
    assert judge.requests and all(r.json_schema is not None for r in judge.requests)
    assert all(r.json_schema is None for r in teacher.requests)
    for leaf in SKILLS:  # the judge's rating 1 drops every pair, whatever the teacher would have said
        assert result.stats["leaves"][leaf]["samples"] == 0
    assert read_json_object(result.run_dir / "run.json")["options"]["judge"] == {"model": "fake"}
