from __future__ import annotations

from pathlib import Path

import git
import yaml
from click.testing import CliRunner

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


def test_demo_runs_init_diff_and_generate_in_scratch_home(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import seedlab.backends

    monkeypatch.setattr(seedlab.backends, "make_backend", lambda *args, **kwargs: FakeBackend())
    home = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert "3 example leaves valid" in result.output and (home / "taxonomy" / ".git").is_dir()
    assert "data generate" in result.output and "knowledge.jsonl" in result.output
    rerun = CliRunner().invoke(cli, ["demo", "--home", str(home)])  # a previous demo home is wiped and rebuilt
    assert rerun.exit_code == 0 and "created taxonomy" in rerun.output


def test_demo_refuses_a_foreign_non_empty_home(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("x")
    result = CliRunner().invoke(cli, ["demo", "--home", str(tmp_path / "mine")])
    assert result.exit_code == 1 and (tmp_path / "mine" / "keep.txt").exists()
