"""Unlabeled prompts for judge train and tao run: JSONL (also the serve prompt log) or a taxonomy's questions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import skill_leaf

from seedlab.errors import SeedlabError
from seedlab.prompts import load_prompts


def test_prompts_and_chats_are_read_in_order_without_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    rows = [{"prompt": "First?"}, {"endpoint": "chat", "messages": [{"role": "system", "content": "Be brief."},
                                                                      {"role": "user", "content": "Second?"}]},
            {"prompt": "  First?  "}, {"prompt": ""}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    assert load_prompts(path) == ["First?", "Second?"]


@pytest.mark.parametrize(("text", "message"), [
    ('{"prompt": "ok"}\nnot json\n', r"p.jsonl:2: not a JSON object"),
    ('{"prompt": "ok"}\n{"messages": [{"role": "assistant", "content": "x"}]}\n', r"p.jsonl:2: needs a \"prompt\""),
    ("\n", "no prompts found"),
])
def test_bad_prompt_files_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(text)
    with pytest.raises(SeedlabError, match=message):
        load_prompts(path)


def test_a_taxonomy_folder_gives_its_seed_questions(tmp_path: Path) -> None:
    leaf = tmp_path / "tax" / "compositional_skills" / "greet" / "qna.yaml"
    leaf.parent.mkdir(parents=True)
    leaf.write_text(skill_leaf(5))
    assert load_prompts(tmp_path / "tax") == [f"Question {i}?" for i in range(5)]
