from __future__ import annotations

from pathlib import Path

import git
import pytest
from click.testing import CliRunner
from helpers import commit_all, new_repo, skill_leaf, write

from seedlab.cli import cli
from seedlab.errors import TaxonomyError
from seedlab.taxonomy import changed_leaves

OLD = "compositional_skills/old/qna.yaml"
GONE = "compositional_skills/gone/qna.yaml"


@pytest.fixture
def taxonomy(tmp_path: Path) -> tuple[Path, git.Repo, str]:
    """main holds two leaves; the work tree then adds, changes, deletes and leaves some untracked."""
    root = tmp_path / "taxonomy"
    repo = new_repo(root, {OLD: skill_leaf(), GONE: skill_leaf(), "README.md": "hi\n"})
    base_sha = repo.head.commit.hexsha
    repo.git.checkout("-b", "feature")
    write(root, "compositional_skills/committed/qna.yaml", skill_leaf())
    (root / GONE).unlink()
    commit_all(repo, "add committed leaf, delete one")
    write(root, OLD, skill_leaf(task="Say hello politely."))  # changed, not committed
    write(root, "knowledge/untracked/qna.yaml", "version: 3\n")  # untracked (and invalid)
    write(root, "compositional_skills/notes/other.yaml", skill_leaf())  # not a leaf name
    return root, repo, base_sha


def test_diff_against_branch_lists_new_changed_untracked_not_deleted(taxonomy: tuple[Path, git.Repo, str]) -> None:
    root, _, _ = taxonomy
    result = changed_leaves(root, "main")
    assert result.files == ["compositional_skills/committed/qna.yaml", OLD, "knowledge/untracked/qna.yaml"]
    assert result.base.startswith("main (merge base ")


def test_diff_against_commit_sha(taxonomy: tuple[Path, git.Repo, str]) -> None:
    root, repo, base_sha = taxonomy
    assert changed_leaves(root, base_sha).files == changed_leaves(root, "main").files
    head = repo.head.commit.hexsha  # against HEAD only the uncommitted and untracked leaves remain
    assert changed_leaves(root, head).files == [OLD, "knowledge/untracked/qna.yaml"]


def test_diff_uses_merge_base_not_branch_tip(taxonomy: tuple[Path, git.Repo, str]) -> None:
    root, repo, _ = taxonomy
    repo.git.stash("--include-untracked")
    repo.git.checkout("main")
    write(root, "compositional_skills/on_main_later/qna.yaml", skill_leaf())
    commit_all(repo, "main moves on")
    repo.git.checkout("feature")
    assert changed_leaves(root, "main").files == ["compositional_skills/committed/qna.yaml"]


def test_diff_empty_lists_whole_tree(taxonomy: tuple[Path, git.Repo, str]) -> None:
    root, _, _ = taxonomy
    result = changed_leaves(root, "empty")
    assert result.base == "empty"
    assert result.files == ["compositional_skills/committed/qna.yaml", OLD, "knowledge/untracked/qna.yaml"]


def test_auto_base_prefers_origin_main(tmp_path: Path, taxonomy: tuple[Path, git.Repo, str]) -> None:
    root, repo, _ = taxonomy
    clone = git.Repo.clone_from(root, tmp_path / "clone", branch="main")
    assert changed_leaves(tmp_path / "clone", "auto").files == []
    write(tmp_path / "clone", "compositional_skills/mine/qna.yaml", skill_leaf())
    result = changed_leaves(tmp_path / "clone", "auto")
    assert result.files == ["compositional_skills/mine/qna.yaml"] and result.base.startswith("origin/main")
    assert clone.head.is_valid()


def test_auto_base_without_origin_is_first_commit(taxonomy: tuple[Path, git.Repo, str]) -> None:
    root, _, _ = taxonomy
    result = changed_leaves(root, "auto")
    assert result.base.startswith("first commit")
    assert result.files == changed_leaves(root, "main").files


def test_taxonomy_in_subfolder_of_repo(tmp_path: Path) -> None:
    new_repo(tmp_path / "repo", {"tax/compositional_skills/a/qna.yaml": skill_leaf(), "other/qna.yaml": "x: 1\n"})
    write(tmp_path / "repo", "tax/compositional_skills/b/qna.yaml", skill_leaf())
    write(tmp_path / "repo", "other/b/qna.yaml", skill_leaf())
    assert changed_leaves(tmp_path / "repo" / "tax", "auto").files == ["compositional_skills/b/qna.yaml"]


def test_repo_without_commits_lists_everything(tmp_path: Path) -> None:
    git.Repo.init(tmp_path / "t")
    write(tmp_path / "t", "compositional_skills/a/qna.yaml", skill_leaf())
    assert changed_leaves(tmp_path / "t", "auto").files == ["compositional_skills/a/qna.yaml"]


@pytest.mark.parametrize(("make_repo", "base", "fragment"), [
    (True, "no-such-branch", "unknown git ref 'no-such-branch'"),
    (False, "auto", "is not in a git repository"),
])
def test_bad_base_or_folder_is_a_clear_error(tmp_path: Path, make_repo: bool, base: str, fragment: str) -> None:
    root = tmp_path / "t"
    if make_repo:
        new_repo(root, {OLD: skill_leaf()})
    else:
        write(root, OLD, skill_leaf())
    with pytest.raises(TaxonomyError, match=fragment):
        changed_leaves(root, base)
    result = CliRunner().invoke(cli, ["taxonomy", "diff", "--taxonomy-path", str(root), "--taxonomy-base", base])
    assert result.exit_code == 1 and fragment in result.output and "Traceback" not in result.output


def test_cli_diff_validates_what_it_lists(taxonomy: tuple[Path, git.Repo, str]) -> None:
    root, _, _ = taxonomy
    result = CliRunner().invoke(cli, ["taxonomy", "diff", "--taxonomy-path", str(root), "--taxonomy-base", "main"])
    assert result.exit_code == 1
    assert "  invalid  knowledge/untracked/qna.yaml" in result.output
    assert "  valid    compositional_skills/committed/qna.yaml" in result.output
    assert f"{root}/knowledge/untracked/qna.yaml:1:1: error: top level: missing required key" in result.output
    assert "3 files checked: 2 valid, 1 invalid" in result.output


def test_cli_diff_github_format_uses_given_relative_path(taxonomy: tuple[Path, git.Repo, str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    root, _, _ = taxonomy
    monkeypatch.chdir(root)
    result = CliRunner().invoke(cli, ["taxonomy", "diff", "--taxonomy-path", ".", "--taxonomy-base", "main",
                                      "--format", "github"])
    assert "::error file=knowledge/untracked/qna.yaml,line=1,col=1::" in result.output
