"""Maintainer builds, piece by piece: the replay buffer's sampling, checkpoint choice, the regression figures,
the release manifest, and an endpoint pool that loses a server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import ServerThread

from seedlab.backends import FakeBackend, Request
from seedlab.build import (
    GeneralQuestion,
    Limits,
    candidate_checkpoints,
    carried,
    choose,
    mix_phases,
    regression_summary,
    replay_sample,
    score_answers,
    verify_release,
    with_origin,
    write_manifest,
)
from seedlab.cli import cli
from seedlab.errors import SeedlabError
from seedlab.eval import Question


def sample(leaf: str, n: int, kind: str = "knowledge", blob: str = "b1", release: str = "r1") -> dict[str, Any]:
    raw = {"messages": [{"role": "user", "content": f"{leaf} q{n}"}, {"role": "assistant", "content": f"a{n}"}],
           "metadata": {"leaf": leaf, "seed_blob": blob, "leaf_kind": kind}}
    return with_origin(raw, release)


def group(leaf: str, count: int, **kw: Any) -> list[dict[str, Any]]:
    return [sample(leaf, n, **kw) for n in range(count)]


# --- replay ------------------------------------------------------------------------------------------------------


def test_replay_takes_the_share_of_each_leaf_at_least_one() -> None:
    earlier = group("a", 10) + group("b", 3) + group("c", 1)
    picked = replay_sample(earlier, 0.5, 1000, seed=0)
    counts = {leaf: sum(1 for s in picked if s["metadata"]["leaf"] == leaf) for leaf in "abc"}
    assert counts == {"a": 5, "b": 2, "c": 1}
    assert len({s["messages"][0]["content"] for s in picked}) == len(picked)  # no sample twice


def test_replay_spreads_a_leafs_share_over_its_facts() -> None:
    # 6 facts with 5, 5, 4, 3, 2, 1 samples and 4 seed pairs (no fact: each stands alone); half is 12 samples
    earlier = [sample("k", n) for n in range(24)]
    for n, fact in enumerate([0] * 5 + [1] * 5 + [2] * 4 + [3] * 3 + [4] * 2 + [5]):
        earlier[n]["metadata"]["fact"] = f"fact {fact}"
    for seed in range(20):
        picked = replay_sample(earlier, 0.5, 1000, seed=seed)
        facts = [s["metadata"].get("fact") for s in picked]
        assert len(picked) == 12
        assert {f"fact {n}" for n in range(6)} <= set(facts)  # no fact drops out of the replay
        assert max(facts.count(f"fact {n}") for n in range(6)) <= 2  # nor does one crowd the others


def test_replay_cap_shrinks_every_leaf_evenly() -> None:
    picked = replay_sample(group("a", 100) + group("b", 50), 1.0, 30, seed=0)
    counts = [sum(1 for s in picked if s["metadata"]["leaf"] == leaf) for leaf in "ab"]
    assert counts == [20, 10]


def test_a_leafs_replay_does_not_change_when_other_leaves_join() -> None:
    alone = replay_sample(group("a", 20), 0.3, 1000, seed=4)
    together = replay_sample(group("a", 20) + group("z", 9), 0.3, 1000, seed=4)
    assert [s for s in together if s["metadata"]["leaf"] == "a"] == alone
    assert replay_sample(group("a", 20), 0.3, 1000, seed=5) != alone  # the seed matters
    assert replay_sample(group("a", 20), 0.0, 1000, seed=4) == []


def test_changed_and_removed_leaves_leave_the_buffer() -> None:
    buffer = group("same", 2) + group("edited", 2, blob="old") + group("gone", 2)
    kept = carried(buffer, {"same": "b1", "edited": "new", "added": "b9"})
    assert {s["metadata"]["leaf"] for s in kept} == {"same"}


def test_phases_mix_new_and_replayed_samples() -> None:
    new = group("k2", 10, release="r2") + group("s2", 4, kind="skill", release="r2")
    earlier = group("k1", 10) + group("s1", 6, kind="skill")
    mix = mix_phases(new, earlier, share=0.5, cap=100, knowledge_share=0.2, seed=0)
    assert mix.counts == {"knowledge_new": 10, "knowledge_replayed": 5, "skills_new": 4, "skills_replayed": 3,
                          "knowledge_in_skills": 3}
    assert len(mix.knowledge) == 15 and len(mix.skills) == 10
    assert all(s["metadata"]["leaf_kind"] == "knowledge" for s in mix.knowledge)
    only_skills = mix_phases(group("s2", 4, kind="skill", release="r2"), earlier, 0.5, 100, 0.2, 0)
    assert only_skills.knowledge == []  # no new knowledge: that phase is skipped, the skills phase still replays
    assert only_skills.counts["knowledge_in_skills"] == 1 and len(only_skills.skills) == 4 + 3 + 1


# --- checkpoint choice -------------------------------------------------------------------------------------------


def test_candidates_are_the_last_and_evenly_spaced_earlier_checkpoints(tmp_path: Path) -> None:
    for step in (10, 20, 30, 40, 50, 60, 70):
        (tmp_path / f"step-{step:06d}").mkdir()
        (tmp_path / f"step-{step:06d}" / "position.json").write_text("{}")
    (tmp_path / "step-000080").mkdir()  # no position.json: a checkpoint cut short is no candidate
    names = [p.name for p in candidate_checkpoints(tmp_path, 3)]
    assert names == ["step-000010", "step-000040", "step-000070"]
    assert [p.name for p in candidate_checkpoints(tmp_path, 1)] == ["step-000070"]
    assert len(candidate_checkpoints(tmp_path, 10)) == 7


def row(seed: float, skill: float | None = None) -> dict[str, Any]:
    scores = {"seed": seed, **({"skill": skill} if skill is not None else {})}
    return {"scores": scores}


def test_choice_follows_the_stated_rule() -> None:
    assert choose([row(0.4), row(0.9), row(0.7)], "knowledge") == 1
    assert choose([row(0.8), row(0.8)], "knowledge") == 1  # a tie goes to the later checkpoint
    # skills: the mean of knowledge and skill scores, so a skill gain that costs knowledge loses
    assert choose([row(0.9, 0.5), row(0.5, 0.8)], "skills") == 0
    assert choose([row(0.9, 0.5), row(0.85, 0.9)], "skills") == 1


def test_scores_per_leaf_and_overall() -> None:
    questions = [Question("k", "q1", "r", ["212"]), Question("k", "q2", "r", ["Vey"]),
                 Question("k", "q3", "r", ["31"], held_out=True), Question("s", "do it", "ref", [])]
    answers = ["It had 212.", "No idea.", "31 gardeners.", "done"]
    scores = score_answers(questions, answers, {3: 3})
    assert scores["leaves"] == {"k": {"seed": 0.5, "heldout": 1.0}, "s": {"skill": 1.0}}
    assert (scores["seed"], scores["heldout"], scores["skill"]) == (0.5, 1.0, 1.0)


# --- regression --------------------------------------------------------------------------------------------------


GENERAL = [GeneralQuestion("arithmetic", "7 x 8?", "56", ("56",)), GeneralQuestion("arithmetic", "2+2?", "4", ("4",)),
           GeneralQuestion("facts", "Capital of France?", "Paris", ("Paris",))]


def test_regression_figures_and_limits() -> None:
    base, built = ["56", "4", "Paris"], ["56", "5", "Paris is the capital"]
    summary = regression_summary(GENERAL, base, built, [-0.5, -0.7, -0.3], [-0.6, -1.7, -0.4],
                                 ["tie", "loss", "win"], Limits(10.0, 0.5))
    assert summary["accuracy"] == {"base": 100.0, "built": 66.7} and summary["accuracy_drop"] == 33.3
    assert summary["kinds"][0] == {"kind": "arithmetic", "questions": 2, "base": 100.0, "built": 50.0}
    assert summary["nll_increase"] == 0.4 and summary["changed_answers"] == 2
    assert summary["judge"] == {"win": 1, "tie": 1, "loss": 1}
    assert summary["regressed"] and summary["reasons"] == ["general accuracy fell 33.3 points (limit 10)"]
    calm = regression_summary(GENERAL, base, base, [-0.5] * 3, [-0.5] * 3, None, Limits(10.0, 0.5))
    assert not calm["regressed"] and calm["nll_increase"] == 0 and "judge" not in calm


def test_regression_drift_on_a_tiny_model_with_a_perturbed_adapter() -> None:
    """The likelihood half of the check on real (tiny, in-memory) weights: an untouched LoRA adapter leaves the
    base's answers as likely as before, a perturbed one makes them less likely, and the check says so."""
    import torch
    from peft import LoraConfig, get_peft_model
    from test_train import FACTS, tiny_loader

    from seedlab.train import answer_logprobs

    model, tokenizer = tiny_loader("tiny")
    items = []
    for question, _ in FACTS[:3]:  # the base's own greedy answers, as the build asks the base for them
        prompt = tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                               return_tensors="pt", return_dict=True)
        out = model.generate(**prompt, max_new_tokens=4, do_sample=False, pad_token_id=0)
        items.append((question, tokenizer.decode(out[0, prompt["input_ids"].shape[1]:], skip_special_tokens=True)))
    before = answer_logprobs(model, tokenizer, items)
    tuned = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    assert answer_logprobs(tuned, tokenizer, items) == pytest.approx(before, abs=1e-5)  # LoRA starts as a no-op
    torch.manual_seed(1)
    with torch.no_grad():
        for name, weight in tuned.named_parameters():
            if "lora_B" in name:
                weight.add_(torch.randn_like(weight) * 2.0)
    after = answer_logprobs(tuned, tokenizer, items)
    questions = [GeneralQuestion("facts", q, a, ("unused",)) for q, a in items]
    answers = [a for _, a in items]
    summary = regression_summary(questions, answers, answers, before, after, None, Limits(10.0, 0.05))
    assert summary["nll_increase"] > 0.05 and summary["regressed"]


# --- release manifest --------------------------------------------------------------------------------------------


def test_manifest_verifies_and_names_what_changed(tmp_path: Path) -> None:
    release = tmp_path / "release"
    (release / "adapter").mkdir(parents=True)
    (release / "model.gguf").write_bytes(b"GGUF weights")
    (release / "adapter" / "adapter_config.json").write_text("{}")
    write_manifest(release, {"build": "b1"})
    assert verify_release(release) == []
    assert CliRunner().invoke(cli, ["build", "verify", str(release)]).exit_code == 0
    (release / "model.gguf").write_bytes(b"GGUF weightz")
    (release / "adapter" / "adapter_config.json").unlink()
    (release / "extra.txt").write_text("x")
    assert verify_release(release) == ["adapter/adapter_config.json: missing", "model.gguf: sha256 differs from the "
                                       "manifest", "extra.txt: not in the manifest"]
    result = CliRunner().invoke(cli, ["build", "verify", str(release)])
    assert result.exit_code == 1 and "3 files do not match the manifest" in result.output
    assert "Traceback" not in result.output
    assert verify_release(tmp_path) == [f"{tmp_path / 'manifest.json'}: missing or without a file list"]


def test_build_without_a_taxonomy_is_one_clear_line() -> None:
    result = CliRunner().invoke(cli, ["build", "--previous", "nope"])
    assert result.exit_code == 1 and result.output.strip().startswith("error: ") and "Traceback" not in result.output
    assert "run `seedlab init`" in result.output


def test_build_list_with_no_builds() -> None:
    result = CliRunner().invoke(cli, ["build", "list"])
    assert result.exit_code == 0 and "no builds" in result.output


# --- endpoint pool -----------------------------------------------------------------------------------------------


def test_pool_spreads_requests_and_survives_a_server_going_away() -> None:
    from seedlab.backends._openai import EndpointPool
    from seedlab.serve.app import create_app

    first, second = (FakeBackend(lambda _r, _i: "one", model_id="m"),
                     FakeBackend(lambda _r, _i: "two", model_id="m"))
    with ServerThread(create_app(first)) as url_a:
        server_b = ServerThread(create_app(second))
        url_b = server_b.__enter__()
        pool = EndpointPool([url_a, url_b], concurrency=2, max_retries=0)
        asked = [Request(messages=[{"role": "user", "content": f"q{i}"}], seed=i) for i in range(8)]
        assert sorted(r.texts[0] for r in pool.complete(asked)) == ["one"] * 4 + ["two"] * 4  # round robin
        server_b.__exit__()
        results = pool.complete(asked)
        assert [r.texts[0] for r in results] == ["one"] * 8  # every request answered once, by the server left
        assert len(pool.down) == 1 and url_b in pool.down[0]
        pool.close()


def test_pool_skips_a_server_that_is_down_at_start_and_names_all_when_none_answers() -> None:
    from seedlab.backends._openai import EndpointError, EndpointPool
    from seedlab.serve.app import create_app

    dead = "http://127.0.0.1:9/v1"  # the discard port: nothing listens
    with ServerThread(create_app(FakeBackend(model_id="m"))) as url:
        pool = EndpointPool([dead, url], max_retries=0, timeout_s=5)
        assert pool.model_id == "m" and len(pool.down) == 1
    with pytest.raises(EndpointError, match="none of the 2 endpoints answered"):
        EndpointPool([dead, dead], max_retries=0, timeout_s=5)


def test_endpoint_urls_come_from_options_else_config() -> None:
    from seedlab.backends import endpoint_urls
    from seedlab.config import load_settings

    settings = load_settings()
    assert endpoint_urls(settings) == []
    settings.config.endpoint.url, settings.config.endpoint.urls = "http://a/v1", ["http://b/v1"]
    assert endpoint_urls(settings) == ["http://a/v1", "http://b/v1"]
    assert endpoint_urls(settings, "http://c/v1") == ["http://c/v1"]
    assert endpoint_urls(settings, ("http://c/v1", "http://d/v1")) == ["http://c/v1", "http://d/v1"]


# --- a whole build, twice, on fakes and a tiny model ------------------------------------------------------------


class FakeModels:
    """BuildModels from fakes: the scripted SDG teacher, a tiny trainer model, a teacher-as-judge, and answerers
    that know every reference answer once trained (the base knows none of the leaves' answers)."""

    def __init__(self, settings: Any, answers: dict[str, str]) -> None:
        from test_sdg_generate import good_responder

        self.teacher_backend = FakeBackend(good_responder)
        self.answers = answers
        self.exports: list[Path] = []
        self.settings = settings

    def teacher(self) -> Any:
        return self.teacher_backend

    def loader(self) -> Any:
        from test_train import tiny_loader

        return tiny_loader

    def judge(self) -> Any:
        from test_sdg_generate import good_responder

        from seedlab.judge.judging import as_judge

        return as_judge(FakeBackend(good_responder))

    def answering(self, base: str, adapter: Path | None) -> Any:
        import contextlib

        def reply(request: Request, _index: int) -> str:
            asked = (request.messages or [{}])[-1].get("content", "")
            return self.answers.get(asked, "no idea") if adapter is not None else "I do not know."

        return contextlib.nullcontext(FakeBackend(reply))

    def answer_logps(self, base: str, adapter: Path, items: Any) -> tuple[list[float], list[float]]:
        return [-1.0] * len(items), [-1.1] * len(items)

    def export(self, base: str, adapter: Path, target: Path) -> None:
        self.exports.append(adapter)
        target.write_bytes(b"GGUF merged " + (adapter / "adapter_model.safetensors").read_bytes()[:16])

    def close(self) -> None:
        pass


def known_answers(settings: Any) -> dict[str, str]:
    from seedlab.build import load_general
    from seedlab.eval import leaf_questions, user_turn
    from seedlab.taxonomy import changed_leaves
    from seedlab.workspace import shipped

    knowledge, skills = leaf_questions(settings, changed_leaves(settings.taxonomy_path, "empty").files)
    answers = {user_turn(q): q.reference for q in knowledge + skills}
    answers.update({q.question: q.answer for q in load_general(shipped("general", "questions.jsonl"))})
    return answers


def tiny_build_settings() -> Any:
    from test_sdg_generate import teacher_judges
    from test_train import fast_phases

    settings = teacher_judges()
    fast_phases(settings, epochs=1, lr=1e-3)
    for phase in settings.config.train.phases:
        phase.max_steps = 4  # checkpoints at steps 2 and 4: the two candidates
    settings.config.build.candidates = 2
    return settings


class Stop(RuntimeError):
    """The build killed mid-training."""


@pytest.mark.parametrize("start", ["previous", "base"])
def test_two_releases_replay_reuse_choose_and_verify(seedlab_home: Path, start: str) -> None:
    from seedlab.build import BuildOptions, build
    from seedlab.config import load_settings
    from seedlab.workspace import add_example_release, init_workspace

    init_workspace(load_settings())
    settings = tiny_build_settings()
    first = build(settings, BuildOptions(), lambda _line: None, models=FakeModels(settings, known_answers(settings)))
    state1 = first.report
    assert all(info["teacher_requests"] > 0 for info in state1["generate"]["leaves"].values())
    assert state1["data"]["counts"]["knowledge_replayed"] == 0 and verify_release(first.release) == []

    add_example_release(settings)
    settings = tiny_build_settings()
    settings.config.build.start = start
    models = FakeModels(settings, known_answers(settings))
    lines: list[str] = []

    def stop_in_skills(row: dict[str, Any]) -> None:
        if row["phase"] == "skills" and row["step"] == 2 and lines[-1:] != ["stopped"]:
            lines.append("stopped")
            raise Stop

    with pytest.raises(Stop):
        build(settings, BuildOptions(previous=first.build_dir.name), lines.append, step_progress=stop_in_skills,
              models=models)
    asked = len(models.teacher_backend.requests)
    run_id = sorted(settings.builds_path.iterdir())[-1].name
    second = build(settings, BuildOptions(resume=run_id), lines.append, models=models)
    assert len(models.teacher_backend.requests) == asked  # the resumed build did not generate again
    state = second.report
    calls = {leaf.split("/")[-2]: info["teacher_requests"] for leaf, info in state["generate"]["leaves"].items()}
    assert calls["halvane"] == calls["formal_tone"] == calls["action_items"] == 0  # unchanged: reused
    assert calls["marrowick"] > 0 and calls["one_line_summary"] > 0
    statuses = {leaf.split("/")[-2]: info["status"] for leaf, info in state["data"]["leaves"].items()}
    assert statuses == {"halvane": "unchanged", "formal_tone": "unchanged", "action_items": "unchanged",
                        "marrowick": "new", "one_line_summary": "new"}
    counts = state["data"]["counts"]
    assert counts["knowledge_replayed"] > 0 and counts["skills_replayed"] > 0
    share = settings.config.build.self_replay
    assert counts["self_replay_knowledge"] == round(share * (counts["knowledge_new"] + counts["knowledge_replayed"]))
    buffer = [json.loads(line) for line in (second.release / "data" / "buffer.jsonl").read_text().splitlines()]
    releases = {s["metadata"]["origin"]["release"] for s in buffer}
    assert releases == {first.build_dir.name, second.build_dir.name}
    # the knowledge phase started from the previous release (build.start), the skills phase from its chosen checkpoint
    knowledge, skills = state["phase-knowledge"], state["phase-skills"]
    assert knowledge["start"] == (str(first.release / "adapter") if start == "previous" else None)
    assert skills["start"] == knowledge["chosen"]
    assert len(knowledge["candidates"]) == 2 and knowledge["chosen_index"] == 1  # a tie: the later one
    assert len(models.exports) == 1  # the release merged one adapter, the chosen one
    assert verify_release(second.release) == []
    manifest = json.loads((second.release / "manifest.json").read_text())
    assert manifest["previous"] == first.build_dir.name and "model.gguf" in manifest["files"]
    card = (second.release / "MODEL_CARD.md").read_text()
    assert "marrowick" in card and "## Regression check" in card and f"--previous {first.build_dir.name}" in card
    assert skills["candidates"][skills["chosen_index"]]["scores"]["heldout"] == 1.0
    assert state["regression"]["nll_increase"] == pytest.approx(0.1) and not state["regression"]["regressed"]


def test_a_build_under_torchrun_trains_on_both_ranks(seedlab_home: Path) -> None:
    """Rank 0 generates, scores and packages; both ranks train each phase together (DDP over gloo would wait
    forever for a rank that did not join, so finishing within the timeout shows both trained)."""
    import os
    import subprocess
    import sys

    from seedlab.config import load_settings
    from seedlab.workspace import init_workspace

    init_workspace(load_settings())
    script = Path(__file__).parent / "build_ranks.py"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SEEDLAB_HOME": str(seedlab_home)}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(script)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("rank finished: follower") == 1 and done.stdout.count("rank finished: release") == 1
    [build_dir] = [p for p in (seedlab_home / "builds").iterdir() if not p.name.startswith(".")]
    assert verify_release(build_dir / "release") == []
    state = json.loads((build_dir / "state.json").read_text())
    assert state["phase-knowledge"]["result"]["steps"] == 4 and state["phase-skills"]["result"]["steps"] == 4


def test_self_replay_adds_a_share_of_the_base_answers() -> None:
    from seedlab.build import self_replay

    phase = group("k", 10)
    anchors = [{"messages": [], "metadata": {"source": "self-replay", "n": n}} for n in range(4)]
    mixed = self_replay(phase, anchors, 0.3, seed=0, name="knowledge")
    assert mixed[:10] == phase and len(mixed) == 13
    assert len(self_replay(phase, anchors, 1.0, 0, "knowledge")) == 14  # at most every anchor once
    assert self_replay([], anchors, 0.3, 0, "skills") == []  # a skipped phase stays empty


def test_an_unknown_build_start_is_one_clear_error(seedlab_home: Path) -> None:
    from seedlab.build import BuildOptions, build
    from seedlab.config import load_settings

    settings = load_settings()
    settings.config.build.start = "sideways"
    with pytest.raises(SeedlabError, match="build.start is 'sideways'; set it to base or previous"):
        build(settings, BuildOptions(), lambda _: None)
    assert not settings.builds_path.exists() or not any(settings.builds_path.iterdir())  # nothing written
