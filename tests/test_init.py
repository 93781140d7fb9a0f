from __future__ import annotations

from pathlib import Path

import git
import yaml
from click.testing import CliRunner
from test_train import tiny_loader

from seedlab.backends import FakeBackend
from seedlab.cli import cli
from seedlab.taxonomy import changed_leaves, validate_file


def test_init_then_diff_empty_lists_three_valid_leaves(seedlab_home: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["init"]).exit_code == 0
    result = runner.invoke(cli, ["taxonomy", "diff", "--taxonomy-base", "empty"])
    assert result.exit_code == 0, result.output
    assert "3 files checked: 3 valid, 0 invalid (0 errors, 0 warnings)" in result.output
    for leaf in ("compositional_skills/writing/rewriting/formal_tone/qna.yaml",
                 "compositional_skills/extraction/meetings/action_items/qna.yaml",
                 "knowledge/community/seed_libraries/halvane/qna.yaml"):
        assert f"  valid    {leaf}" in result.output


def test_init_builds_repos_with_the_three_top_folders_and_workflow(seedlab_home: Path) -> None:
    CliRunner().invoke(cli, ["init"])
    taxonomy = seedlab_home / "taxonomy"
    for folder in ("compositional_skills", "foundational_skills", "knowledge"):
        assert (taxonomy / folder).is_dir()
    workflow = (taxonomy / ".github" / "workflows" / "seedlab.yml").read_text()
    assert "seedlab taxonomy diff" in workflow and "--format github" in workflow
    assert not git.Repo(taxonomy).is_dirty(untracked_files=True)
    leaf = yaml.safe_load((taxonomy / "knowledge/community/seed_libraries/halvane/qna.yaml").read_text())
    docs = git.Repo(leaf["document"]["repo"])
    assert docs.head.commit.hexsha == leaf["document"]["commit"]
    assert "Ostrel Vey" in (Path(leaf["document"]["repo"]) / "halvane.md").read_text()


def test_example_commits_are_reproducible(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    heads = []
    for name in ("a", "b"):
        monkeypatch.setenv("SEEDLAB_HOME", str(tmp_path / name))
        CliRunner().invoke(cli, ["init"])
        heads.append(git.Repo(tmp_path / name / "docs" / "halvane-seed-library").head.commit.hexsha)
    assert heads[0] == heads[1]


def test_init_twice_changes_nothing_and_force_restores(seedlab_home: Path) -> None:
    runner = CliRunner()
    runner.invoke(cli, ["init"])
    taxonomy = seedlab_home / "taxonomy"
    head = git.Repo(taxonomy).head.commit.hexsha
    leaf = taxonomy / "compositional_skills/writing/rewriting/formal_tone/qna.yaml"
    original = leaf.read_text()
    leaf.write_text(original.replace("polite", "rude"))
    (taxonomy / "compositional_skills/mine").mkdir()
    (taxonomy / "compositional_skills/mine/qna.yaml").write_text("user: data\n")

    again = runner.invoke(cli, ["init"])
    assert again.exit_code == 0 and "Nothing changed" in again.output
    assert "rude" in leaf.read_text() and git.Repo(taxonomy).head.commit.hexsha == head

    forced = runner.invoke(cli, ["init", "--force"])
    assert forced.exit_code == 0 and "created  taxonomy" in forced.output
    assert leaf.read_text() == original
    assert (taxonomy / "compositional_skills/mine/qna.yaml").read_text() == "user: data\n"  # user files survive


def test_init_refuses_a_folder_with_files_but_no_history(seedlab_home: Path) -> None:
    (seedlab_home / "taxonomy").mkdir(parents=True)
    (seedlab_home / "taxonomy" / "notes.txt").write_text("mine")
    result = CliRunner().invoke(cli, ["init", "--force"])
    assert result.exit_code == 1 and "holds files but no git history" in result.output
    assert (seedlab_home / "taxonomy" / "notes.txt").read_text() == "mine"


def test_example_leaves_have_no_problems(seedlab_home: Path) -> None:
    CliRunner().invoke(cli, ["init"])
    taxonomy = seedlab_home / "taxonomy"
    for rel in changed_leaves(taxonomy, "empty").files:
        assert validate_file(taxonomy / rel) == []


def test_demo_runs_every_stage_in_scratch_home(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The demo's plumbing on fakes (the real model runs in `make demo` and bench/e2e.py)."""
    import seedlab.backends
    import seedlab.eval
    import seedlab.train
    from seedlab.eval import EvalReport
    from seedlab.train import TrainResult

    monkeypatch.setattr(seedlab.backends, "make_backend", lambda *args, **kwargs: FakeBackend())
    # The default likelihood judge scores SDG's skill answers: a tiny in-memory model stands in for the real one.
    monkeypatch.setattr(seedlab.train, "load_model", lambda _settings, ref, scalar_head=False: tiny_loader(ref))
    seen = {}

    def fake_train(settings, options, echo, progress=None):  # type: ignore[no-untyped-def]
        seen["data"] = options.data
        return TrainResult(tmp_path / "run", tmp_path / "run" / "adapter", {})

    def fake_evaluate(settings, options, echo):  # type: ignore[no-untyped-def]
        seen["questions"] = options.questions
        rows = [{"benchmark": "knowledge-branch", "group": "held-out: heldout.jsonl", "questions": 10,
                 "base": {"key_facts": 0.0, "f1": 0.1}, "candidate": {"key_facts": 0.5, "f1": 0.4},
                 "status": "improved"}]
        uplift = {"base": 0.0, "candidate": 50.0, "points": 50.0, "questions": 10, "kind": "held-out"}
        return EvalReport(tmp_path / "eval", rows, uplift)

    monkeypatch.setattr(seedlab.train, "train", fake_train)
    monkeypatch.setattr(seedlab.eval, "evaluate", fake_evaluate)
    home = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert (home / "taxonomy" / ".git").is_dir()
    assert seen["data"].startswith(str(home / "datasets"))
    assert seen["questions"] == home / "taxonomy" / "knowledge/community/seed_libraries/halvane/heldout.jsonl"
    assert seen["questions"].is_file()
    for stage in ("init", "taxonomy diff", "data generate", "model train", "model evaluate", "model chat", "total"):
        assert any(line.startswith(stage) and line.split()[-1].replace(".", "").isdigit()
                   for line in result.output.splitlines()), stage
    assert f"chart: {tmp_path / 'eval' / 'chart.png'}" in result.output
    assert result.output.rstrip().splitlines()[-1] == (
        "uplift: +50.0 points (base 0.0 -> trained 50.0) on 10 held-out questions")
    rerun = CliRunner().invoke(cli, ["demo", "--home", str(home)])  # a previous demo home is wiped and rebuilt
    assert rerun.exit_code == 0 and "created taxonomy" in rerun.output


def test_demo_refuses_a_foreign_non_empty_home(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("x")
    result = CliRunner().invoke(cli, ["demo", "--home", str(tmp_path / "mine")])
    assert result.exit_code == 1 and (tmp_path / "mine" / "keep.txt").exists()
