"""`seedlab ui` without a browser: the form <-> YAML mapping, the live check, token and host guards, uploads,
the preview stream and the commit on a new branch, on the fake backend and real git repositories."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import git
import pytest
import yaml
from fastapi.testclient import TestClient
from helpers import good_responder
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from seedlab.backends import FakeBackend
from seedlab.config import Settings, load_settings
from seedlab.taxonomy import validate_paths
from seedlab.ui import LOOPBACK_HOSTS, create_app, data_to_form, form_to_data, to_yaml
from seedlab.workspace import init_workspace

TOKEN = "test-token"
EXAMPLE_LEAVES = ("compositional_skills/extraction/meetings/action_items/qna.yaml",
                  "compositional_skills/writing/rewriting/formal_tone/qna.yaml",
                  "knowledge/community/seed_libraries/halvane/qna.yaml")


@pytest.fixture
def settings(seedlab_home: Path) -> Settings:
    init_workspace(load_settings())
    settings = load_settings()
    settings.config.eval.judge = None  # the fake teacher judges, as in the SDG tests
    return settings


@pytest.fixture
def client(settings: Settings) -> TestClient:
    app = create_app(settings, TOKEN, lambda: (FakeBackend(good_responder), None), LOOPBACK_HOSTS)
    return TestClient(app, base_url="http://127.0.0.1", headers={"X-Seedlab-Token": TOKEN})


def freeform(**changes: Any) -> dict[str, Any]:
    form = {"kind": "freeform", "path": "compositional_skills/writing/haiku", "created_by": "ana",
            "task_description": "Write a haiku about a topic",
            "seed_examples": [{"question": f"Write a haiku about topic {i}.",
                               "answer": f"Line one of poem {i}\nline two\nline three"} for i in range(5)]}
    return form | changes


def test_every_example_leaf_round_trips_through_the_form(settings: Settings, client: TestClient) -> None:
    for rel in EXAMPLE_LEAVES:
        response = client.get("/api/leaf", params={"path": rel})
        assert response.status_code == 200, response.text
        form = response.json()["form"]
        original = yaml.safe_load((settings.taxonomy_path / rel).read_text())
        assert form_to_data(form) == original  # the content, every key and seed, survives
        checked = client.post("/api/check", json=form).json()
        assert checked["errors"] == 0, checked["problems"]
        assert yaml.safe_load(checked["yaml"]) == original
    kinds = [client.get("/api/leaf", params={"path": rel}).json()["form"]["kind"] for rel in EXAMPLE_LEAVES]
    assert kinds == ["grounded", "freeform", "knowledge"]


@hsettings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")) | st.just("\n"), max_size=400))
def test_any_text_is_written_back_exactly_within_the_line_limit(text: str) -> None:
    clean = text
    data = {"version": 3, "created_by": "x", "task_description": clean,
            "seed_examples": [{"question": clean, "answer": "a"}]}
    written = to_yaml(data)
    assert yaml.safe_load(written) == data
    if all(len(word) < 90 for word in clean.split()):  # a single longer word cannot be folded
        assert max(len(line) for line in written.splitlines()) <= 120


def test_problems_appear_beside_their_field_and_clear_when_fixed(client: TestClient) -> None:
    form = freeform()
    form["seed_examples"][2]["answer"] = ""
    checked = client.post("/api/check", json=form).json()
    fields = {p["field"] for p in checked["problems"] if p["level"] == "error"}
    assert fields == {"seed_examples[2].answer"}
    assert "must not be empty" in checked["problems"][0]["message"]
    form["seed_examples"] = form["seed_examples"][:3]
    form["seed_examples"][2]["answer"] = "fixed"
    checked = client.post("/api/check", json=form).json()
    assert [p["field"] for p in checked["problems"]] == ["seed_examples"]  # now too few examples
    checked = client.post("/api/check", json=freeform()).json()
    assert checked["errors"] == 0 and checked["problems"] == []


def test_a_knowledge_form_names_a_document_that_cannot_be_read(settings: Settings, client: TestClient) -> None:
    rel = EXAMPLE_LEAVES[2]
    form = client.get("/api/leaf", params={"path": rel}).json()["form"]
    form["path"] = "knowledge/community/seed_libraries/halvane_copy"
    form["document"]["patterns"] = ["missing.md"]
    checked = client.post("/api/check", json=form).json()
    assert checked["errors"] == 1
    assert checked["problems"][0]["field"] == "document" and "missing.md" in checked["problems"][0]["message"]


@pytest.mark.parametrize("path", ["compositional_skills/../../etc", "/etc/passwd", "knowledge/x",
                                  "compositional_skills", "compositional_skills/a b/c!"])
def test_a_bad_taxonomy_path_is_refused_on_the_path_field(client: TestClient, path: str) -> None:
    response = client.post("/api/check", json=freeform(path=path))
    assert response.status_code == 400
    assert response.json()["field"] == "path" and "taxonomy path" in response.json()["error"]


def test_without_the_token_nothing_is_served_or_written(settings: Settings, client: TestClient) -> None:
    head = git.Repo(settings.taxonomy_path).head.commit.hexsha
    bare = TestClient(client.app, base_url="http://127.0.0.1")
    assert bare.get("/").status_code == 403
    assert "token" in bare.get("/").text
    assert bare.get("/?token=wrong").status_code == 403
    assert bare.get(f"/?token={TOKEN}").status_code == 200
    assert bare.get("/static/app.js").status_code == 200  # the page's own code carries no data
    commit = {"form": freeform(), "branch": "b", "message": "m"}
    for path, body in (("/api/commit", commit), ("/api/check", freeform())):
        response = bare.post(path, json=body)
        assert response.status_code == 403 and "token" in response.json()["error"]
        assert bare.post(path, json=body, headers={"X-Seedlab-Token": "nope"}).status_code == 403
    assert [b.name for b in git.Repo(settings.taxonomy_path).heads] == ["main"]
    assert git.Repo(settings.taxonomy_path).head.commit.hexsha == head


def test_another_host_name_is_refused(client: TestClient) -> None:
    """A page on another site that resolves its name to 127.0.0.1 (DNS rebinding) does not reach the API."""
    assert client.get("/api/state", headers={"Host": "evil.example"}).status_code == 400
    assert client.get("/api/state", headers={"Host": "localhost:8765"}).status_code == 200


def test_state_lists_leaves_folders_and_documents(settings: Settings, client: TestClient) -> None:
    state = client.get("/api/state").json()
    assert set(EXAMPLE_LEAVES) <= set(state["leaves"])
    assert "compositional_skills/writing" in state["folders"]
    assert state["branch"] == "main"
    assert any(d["path"].endswith("halvane.md") for d in state["documents"])


def test_an_upload_is_committed_to_the_uploads_repository(settings: Settings, client: TestClient) -> None:
    text = "# The Orrin Bell\n\nThe Orrin bell was cast in 1821 and weighs 2 tonnes.\n"
    response = client.post("/api/upload", params={"name": "orrin.md"}, content=text.encode())
    assert response.status_code == 200, response.text
    done = response.json()
    repo = git.Repo(done["repo"])
    assert done["pattern"] == "orrin.md" and repo.head.commit.hexsha == done["commit"]
    assert repo.head.commit.tree["orrin.md"].data_stream.read().decode() == text
    again = client.post("/api/upload", params={"name": "orrin.md"}, content=text.encode()).json()
    assert again["commit"] == done["commit"]  # the same file again makes no new commit


@pytest.mark.parametrize("name,data,status,words", [
    ("../evil.md", b"# x\n", 400, "plain file name"),
    ("notes.exe", b"MZ", 400, "not a document format"),
    ("latin.md", "caf\xe9".encode("latin-1"), 400, "UTF-8"),
    ("broken.pdf", b"%PDF-1.4 not really", 400, "broken.pdf"),
    ("huge.md", b"x" * (20 * 1024 * 1024 + 1), 413, "MiB"),
])
def test_a_bad_upload_gets_a_clear_message_and_writes_nothing(settings: Settings, client: TestClient, name: str,
                                                              data: bytes, status: int, words: str) -> None:
    response = client.post("/api/upload", params={"name": name}, content=data)
    assert response.status_code == status
    assert words in response.json()["error"]
    assert not (settings.docs_path / "uploads").exists()


def test_a_huge_json_body_is_refused(client: TestClient) -> None:
    response = client.post("/api/check", content=b"{" + b" " * (2 << 20) + b"}",
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 413


def test_a_body_that_is_not_json_is_a_clear_error(client: TestClient) -> None:
    response = client.post("/api/check", content=b"\xff\xfe", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "not JSON" in response.json()["error"]


def test_preview_streams_candidates_with_their_checks(client: TestClient) -> None:
    with client.stream("POST", "/api/preview", json=freeform()) as response:
        assert response.status_code == 200
        lines = [json.loads(line) for line in response.iter_lines() if line]
    loading, asking, *candidates, total = lines
    assert "loading the teacher" in loading["status"] and "asking the teacher" in asking["status"]
    assert total["done"] and total["kept"] + total["dropped"] == len(candidates) > 0
    kept = [c for c in candidates if c["kept"]]
    assert len(kept) == total["kept"] > 0
    assert all(c["question"] and c["answer"] and c["rating"] == 3 and "pair_judge" in c["passed"] for c in kept)


def test_preview_of_a_knowledge_leaf_asks_about_its_facts(client: TestClient) -> None:
    form = client.get("/api/leaf", params={"path": EXAMPLE_LEAVES[2]}).json()["form"]
    form["path"] = "knowledge/community/seed_libraries/halvane_draft"
    with client.stream("POST", "/api/preview", json=form) as response:
        lines = [json.loads(line) for line in response.iter_lines() if line]
    kept = [c for c in lines if "id" in c and c["kept"]]
    assert lines[-1]["done"] and kept and all(c["fact"] for c in kept)


def test_preview_refuses_a_form_with_errors(client: TestClient) -> None:
    response = client.post("/api/preview", json=freeform(created_by=""))
    assert response.status_code == 400 and "created_by" in response.json()["error"]


def test_commit_writes_one_file_on_a_new_branch(settings: Settings, client: TestClient) -> None:
    repo = git.Repo(settings.taxonomy_path)
    main_before = repo.heads.main.commit.hexsha
    (settings.taxonomy_path / "scratch.txt").write_text("the contributor's own work in progress\n")
    response = client.post("/api/commit", json={"form": freeform(), "branch": "add-haiku",
                                                "message": "Add a haiku skill"})
    assert response.status_code == 200, response.text
    done = response.json()
    assert done["branch"] == "add-haiku" and done["file"] == "compositional_skills/writing/haiku/qna.yaml"
    assert done["verdict"].startswith("1 changed leaf") and "valid" in done["verdict"]
    assert done["push"].endswith("push <remote> add-haiku")
    assert repo.heads.main.commit.hexsha == main_before  # no other branch moves
    commit = repo.heads["add-haiku"].commit
    assert commit.message.strip() == "Add a haiku skill" and list(commit.stats.files) == [done["file"]]
    assert (settings.taxonomy_path / "scratch.txt").exists()  # untracked work is left alone, not committed
    reports = validate_paths([str(settings.taxonomy_path / done["file"])])
    assert reports[0].errors == 0
    again = client.post("/api/commit", json={"form": freeform(), "branch": "add-haiku", "message": "again"})
    assert again.status_code == 400 and "already exists" in again.json()["error"]


@pytest.mark.parametrize("body,words", [
    ({"form": freeform(created_by=""), "branch": "b1", "message": "m"}, "error"),
    ({"form": freeform(), "branch": "../main", "message": "m"}, "branch name"),
    ({"form": freeform(), "branch": "ok", "message": "  "}, "commit message"),
    ({"form": freeform(path="compositional_skills/../../../outside"), "branch": "b2", "message": "m"}, "taxonomy path"),
])
def test_a_bad_commit_writes_nothing(settings: Settings, client: TestClient, body: dict[str, Any],
                                     words: str) -> None:
    repo = git.Repo(settings.taxonomy_path)
    response = client.post("/api/commit", json=body)
    assert response.status_code == 400 and words in response.json()["error"]
    assert [h.name for h in repo.heads] == ["main"] and not repo.is_dirty(untracked_files=True)


def test_committing_a_leaf_unchanged_is_refused_before_any_branch(settings: Settings, client: TestClient) -> None:
    rel = EXAMPLE_LEAVES[1]
    form = client.get("/api/leaf", params={"path": rel}).json()["form"]
    (settings.taxonomy_path / rel).write_text(client.post("/api/check", json=form).json()["yaml"])
    repo = git.Repo(settings.taxonomy_path)
    repo.index.add([rel])
    repo.index.commit("the page's own layout")
    response = client.post("/api/commit", json={"form": form, "branch": "same", "message": "no change"})
    assert response.status_code == 400 and "already committed with this content" in response.json()["error"]
    assert [h.name for h in repo.heads] == ["main"]


def test_loading_a_path_outside_the_taxonomy_is_refused(client: TestClient) -> None:
    for path in ("../config.yaml", "/etc/passwd", "compositional_skills/writing"):
        response = client.get("/api/leaf", params={"path": path})
        assert response.status_code == 400 and "not a qna.yaml inside the taxonomy" in response.json()["error"]


def test_form_data_keeps_every_kind_apart() -> None:
    grounded = form_to_data({"kind": "grounded", "seed_examples": [{"context": "c", "question": "q", "answer": "a"}]})
    assert grounded["seed_examples"] == [{"context": "c", "question": "q", "answer": "a"}]
    assert data_to_form(grounded, "compositional_skills/x/qna.yaml")["kind"] == "grounded"
    seed = {"context": "dropped", "question": "q", "answer": "a"}
    plain = form_to_data({"kind": "freeform", "seed_examples": [seed]})
    assert plain["seed_examples"] == [{"question": "q", "answer": "a"}]


def commit_body(**changes: Any) -> dict[str, Any]:
    return {"form": freeform(**changes), "branch": "add-haiku", "message": "Add a haiku skill"}


def test_a_commit_git_refuses_is_rolled_back(settings: Settings, client: TestClient) -> None:
    repo = git.Repo(settings.taxonomy_path)
    hook = settings.taxonomy_path / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'policy: no haiku' >&2\nexit 1\n")
    hook.chmod(0o755)
    response = client.post("/api/commit", json=commit_body())
    assert response.status_code == 400 and "policy: no haiku" in response.json()["error"]
    assert repo.active_branch.name == "main" and [h.name for h in repo.heads] == ["main"]
    assert not (settings.taxonomy_path / "compositional_skills/writing/haiku").exists()
    assert not repo.is_dirty(untracked_files=True)


def test_a_commit_that_would_overwrite_work_or_cross_a_file_is_refused(settings: Settings,
                                                                         client: TestClient) -> None:
    repo = git.Repo(settings.taxonomy_path)
    notes = settings.taxonomy_path / "compositional_skills/writing/notes.txt"
    notes.write_text("a file, not a folder\n")
    repo.index.add([str(notes)])
    repo.index.commit("notes")
    response = client.post("/api/commit", json=commit_body(path="compositional_skills/writing/notes.txt/haiku"))
    assert response.status_code == 400 and "is a file, not a folder" in response.json()["error"]
    leaf = settings.taxonomy_path / EXAMPLE_LEAVES[1]
    leaf.write_text(leaf.read_text() + "# my unsaved thought\n")
    form = client.get("/api/leaf", params={"path": EXAMPLE_LEAVES[1]}).json()["form"]
    form["created_by"] = "someone-else"
    response = client.post("/api/commit", json={"form": form, "branch": "edit", "message": "m"})
    assert response.status_code == 400 and "uncommitted edits" in response.json()["error"]
    assert leaf.read_text().endswith("# my unsaved thought\n") and [h.name for h in repo.heads] == ["main"]


def test_an_upload_through_a_symbolic_link_is_refused(settings: Settings, client: TestClient,
                                                      tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (settings.docs_path / "uploads").symlink_to(outside)
    response = client.post("/api/upload", params={"name": "x.md"}, content=b"# x\n")
    assert response.status_code == 400 and "symbolic link" in response.json()["error"]
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("changes", [{"seed_examples": ["x"]}, {"seed_examples": 3},
                                     {"kind": "knowledge", "path": "knowledge/a/b", "document": "s"},
                                     {"kind": "knowledge", "path": "knowledge/a/b",
                                      "seed_examples": [{"questions_and_answers": 5}]},
                                     {"created_by": 5}])
def test_a_malformed_form_is_a_clear_400(client: TestClient, changes: dict[str, Any]) -> None:
    response = client.post("/api/check", json=freeform(**changes))
    assert response.status_code == 400 and "must be" in response.json()["error"]


def test_a_relative_document_repository_is_found_as_validate_finds_it(settings: Settings,
                                                                      client: TestClient) -> None:
    form = client.get("/api/leaf", params={"path": EXAMPLE_LEAVES[2]}).json()["form"]
    docs = Path(form["document"]["repo"])
    relative = settings.taxonomy_path / "docs-copy"
    git.Repo.clone_from(str(docs), str(relative))
    form["document"]["repo"] = "docs-copy"
    form["path"] = "knowledge/community/seed_libraries/halvane_relative"
    checked = client.post("/api/check", json=form).json()
    assert checked["errors"] == 0, checked["problems"]
    assert "repo: docs-copy" in checked["yaml"]  # the file says what the contributor wrote


def test_a_request_missing_a_parameter_gets_an_error_line(client: TestClient) -> None:
    response = client.get("/api/leaf")
    assert response.status_code == 400 and "path" in response.json()["error"]


def test_a_taxonomy_outside_git_is_a_clear_commit_error(settings: Settings, client: TestClient) -> None:
    import shutil

    shutil.rmtree(settings.taxonomy_path / ".git")
    response = client.post("/api/commit", json=commit_body())
    assert response.status_code == 400 and "not in a git repository" in response.json()["error"]
