from __future__ import annotations

from pathlib import Path

import git
import pytest
from click.testing import CliRunner
from helpers import commit_all, knowledge_leaf, new_repo, skill_leaf, write

from seedlab.cli import cli
from seedlab.errors import TaxonomyError
from seedlab.taxonomy import KnowledgeLeaf, SkillLeaf, git_blob_id, load_leaf


@pytest.fixture
def docs(tmp_path: Path) -> tuple[Path, str]:
    repo = new_repo(tmp_path / "docs", {"a.md": "Alpha v1.\n", "sub/b.md": "Beta.\n", "c.txt": "Gamma.\n"})
    return tmp_path / "docs", repo.head.commit.hexsha


def test_example_leaves_load_as_typed_records(seedlab_home: Path) -> None:
    CliRunner().invoke(cli, ["init"])
    taxonomy = seedlab_home / "taxonomy"
    freeform = load_leaf(taxonomy, "compositional_skills/writing/rewriting/formal_tone/qna.yaml")
    grounded = load_leaf(taxonomy, "compositional_skills/extraction/meetings/action_items/qna.yaml")
    knowledge = load_leaf(taxonomy, "knowledge/community/seed_libraries/halvane/qna.yaml")
    assert isinstance(freeform, SkillLeaf) and freeform.kind == "freeform_skill" and len(freeform.seeds) == 6
    assert isinstance(grounded, SkillLeaf) and grounded.kind == "grounded_skill"
    assert all(seed.context for seed in grounded.seeds)
    assert isinstance(knowledge, KnowledgeLeaf) and len(knowledge.seeds) == 5
    assert all(len(seed.qna) == 3 for seed in knowledge.seeds)
    assert [d.path for d in knowledge.documents] == ["halvane.md"]
    assert "14 March 2009" in knowledge.documents[0].text
    head = git.Repo(taxonomy).head.commit
    assert freeform.taxonomy_commit == head.hexsha
    assert freeform.blob_id == head.tree[freeform.path].hexsha  # the id git itself gives the file


def test_documents_are_read_at_the_pinned_commit(tmp_path: Path, docs: tuple[Path, str]) -> None:
    docs_path, pinned = docs
    docs_repo = git.Repo(docs_path)
    write(docs_path, "a.md", "Alpha v2.\n")
    commit_all(docs_repo, "later edit")
    write(docs_path, "a.md", "Alpha uncommitted.\n")
    write(tmp_path / "tax", "knowledge/k/qna.yaml", knowledge_leaf(str(docs_path), pinned, ["*.md", "sub/*.md"]))
    leaf = load_leaf(tmp_path / "tax", "knowledge/k/qna.yaml")
    assert isinstance(leaf, KnowledgeLeaf)
    assert {d.path: d.text for d in leaf.documents} == {"a.md": "Alpha v1.\n", "sub/b.md": "Beta.\n"}
    assert leaf.taxonomy_commit is None  # the taxonomy here is not a git repository


def test_glob_star_does_not_cross_folders_but_double_star_does(tmp_path: Path, docs: tuple[Path, str]) -> None:
    docs_path, pinned = docs
    for patterns, expected in ((["*.md"], ["a.md"]), (["**/*.md"], ["a.md", "sub/b.md"]), (["sub/*"], ["sub/b.md"])):
        write(tmp_path / "tax", "knowledge/k/qna.yaml", knowledge_leaf(str(docs_path), pinned, patterns))
        leaf = load_leaf(tmp_path / "tax", "knowledge/k/qna.yaml")
        assert isinstance(leaf, KnowledgeLeaf) and [d.path for d in leaf.documents] == expected


@pytest.mark.parametrize(("commit", "patterns", "fragment"), [
    ("0" * 40, ["*.md"], "is not in document repository"),
    (None, ["*.pdf"], "no file in"),
    (None, ["../*.md"], "leaves the repository"),
])
def test_bad_document_references_are_clear_errors(tmp_path: Path, docs: tuple[Path, str], commit: str | None,
                                                 patterns: list[str], fragment: str) -> None:
    docs_path, pinned = docs
    write(tmp_path / "tax", "knowledge/k/qna.yaml", knowledge_leaf(str(docs_path), commit or pinned, patterns))
    with pytest.raises(TaxonomyError, match=fragment):
        load_leaf(tmp_path / "tax", "knowledge/k/qna.yaml")


def test_document_repo_that_is_not_git(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    write(tmp_path / "tax", "knowledge/k/qna.yaml", knowledge_leaf(str(tmp_path / "plain"), "abc"))
    with pytest.raises(TaxonomyError, match="is not a git repository"):
        load_leaf(tmp_path / "tax", "knowledge/k/qna.yaml")


def test_invalid_leaf_raises_with_location(tmp_path: Path) -> None:
    write(tmp_path / "tax", "compositional_skills/s/qna.yaml", skill_leaf(n=2))
    with pytest.raises(TaxonomyError, match=r"compositional_skills/s/qna.yaml:5:1: seed_examples: has 2 items"):
        load_leaf(tmp_path / "tax", "compositional_skills/s/qna.yaml")


def test_leaf_path_cannot_escape_the_taxonomy(tmp_path: Path) -> None:
    write(tmp_path, "outside/qna.yaml", skill_leaf())
    (tmp_path / "tax").mkdir()
    with pytest.raises(TaxonomyError, match="leaves the taxonomy"):
        load_leaf(tmp_path / "tax", "../outside/qna.yaml")


def test_git_blob_id_matches_git() -> None:
    assert git_blob_id(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"
