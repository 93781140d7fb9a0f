"""`seedlab taxonomy validate`: one test per class of problem, each pinned to its line, column and level."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from seedlab.cli import cli
from seedlab.taxonomy import Problem, format_problem, validate_file, validate_paths
from seedlab.taxonomy._validate import kind_for_path
from seedlab.taxonomy._yaml import MAX_BYTES

EXAMPLES = Path(__file__).resolve().parents[1] / "seedlab" / "examples" / "taxonomy"
EXAMPLE_LEAVES = [
    "compositional_skills/extraction/meetings/action_items/qna.yaml",
    "compositional_skills/writing/rewriting/formal_tone/qna.yaml",
    "knowledge/community/seed_libraries/halvane/qna.yaml",
]
SKILL = "compositional_skills/greetings/hello"
KNOWLEDGE = "knowledge/testing/docs"

SEEDS = "".join(f"  - question: Question {i}?\n    answer: Answer {i}.\n" for i in range(1, 6))
SKILL_V3 = "version: 3\ncreated_by: tester\ntask_description: Say hello.\nseed_examples:\n" + SEEDS
SKILL_V1 = "created_by: tester\ntask_description: Say hello.\nseed_examples:\n  - question: Hi?\n    answer: Hello.\n"


def knowledge_v3(document: str | None = None, seeds: str | None = None) -> str:
    if seeds is None:
        seeds = "".join(
            f"  - context: Context {i}.\n    questions_and_answers:\n"
            + "".join(f"      - question: Q{i}.{j}?\n        answer: A{i}.{j}.\n" for j in range(1, 4))
            for i in range(1, 6)
        )
    if document is None:
        document = '  repo: https://example.com/docs.git\n  commit: abc123\n  patterns:\n    - "*.md"\n'
    return ("version: 3\ncreated_by: tester\ndomain: Testing\ndocument_outline: A test document.\n"
            f"seed_examples:\n{seeds}document:\n{document}")


def write(root: Path, folder: str, content: str | bytes, name: str = "qna.yaml") -> Path:
    path = root / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def check(root: Path, folder: str, content: str | bytes, name: str = "qna.yaml") -> list[Problem]:
    """Validate a file written under root, reported under its root-relative name."""
    return validate_file(write(root, folder, content, name), f"{folder}/{name}")


def only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, problems
    return problems[0]


def line_of(text: str, needle: str, start: int = 1) -> int:
    """The 1-based number of the first line at or after `start` that contains `needle`."""
    for number, line in enumerate(text.splitlines(), start=1):
        if number >= start and needle in line:
            return number
    raise AssertionError(f"{needle!r} not in text")


def where(problems: list[Problem]) -> list[tuple[int, int, str]]:
    return [(p.line, p.column, p.level) for p in problems]


# --- the real examples -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rel", EXAMPLE_LEAVES)
def test_example_leaves_are_valid(rel: str) -> None:
    assert validate_file(EXAMPLES / rel) == []


def test_valid_builders_are_valid(tmp_path: Path) -> None:
    assert check(tmp_path, SKILL, SKILL_V3) == []
    assert check(tmp_path, SKILL, SKILL_V1) == []
    assert check(tmp_path, KNOWLEDGE, knowledge_v3()) == []


# --- file names ----------------------------------------------------------------------------------------------------


def test_file_not_named_qna_yaml_is_an_error(tmp_path: Path) -> None:
    problem = only(check(tmp_path, SKILL, SKILL_V3, name="questions.yaml"))
    assert (problem.line, problem.column, problem.level) == (1, 1, "error")
    assert "must be named qna.yaml, not 'questions.yaml'" in problem.message
    assert format_problem(problem, "text") == (
        f"{SKILL}/questions.yaml:1:1: error: a taxonomy file must be named qna.yaml, not 'questions.yaml'"
    )


def test_qna_yml_is_a_warning_and_still_validated(tmp_path: Path) -> None:
    problem = only(check(tmp_path, SKILL, SKILL_V3, name="qna.yml"))
    assert where([problem]) == [(1, 1, "warning")]
    assert "rename qna.yml to qna.yaml" in problem.message

    text = SKILL_V3.replace("created_by: tester\n", "created_by: 3\n")
    problems = check(tmp_path, SKILL, text, name="qna.yml")
    assert where(problems) == [(1, 1, "warning"), (2, 13, "error")]
    assert problems[1].message == "created_by: must be a string, got integer"


# --- reading and parsing -------------------------------------------------------------------------------------------


def test_yaml_syntax_error_has_its_line_and_column(tmp_path: Path) -> None:
    text = SKILL_V3.replace("task_description: Say hello.", "task_description: Say: hello")
    problem = only(check(tmp_path, SKILL, text))
    assert where([problem]) == [(3, 22, "error")]
    assert problem.message == "YAML syntax error: mapping values are not allowed in this context"
    assert format_problem(problem, "text") == (
        f"{SKILL}/qna.yaml:3:22: error: YAML syntax error: mapping values are not allowed in this context"
    )


def test_yaml_syntax_error_unclosed_flow_sequence(tmp_path: Path) -> None:
    problem = only(check(tmp_path, SKILL, "version: 3\ncreated_by: [tester\ntask_description: x\n"))
    assert where([problem]) == [(3, 17, "error")]
    assert problem.message == "YAML syntax error: did not find expected ',' or ']'"


def test_yaml_syntax_error_unclosed_quote_is_at_the_end(tmp_path: Path) -> None:
    problem = only(check(tmp_path, SKILL, 'version: 3\ncreated_by: "tester\ntask_description: x\n'))
    assert where([problem]) == [(4, 1, "error")]
    assert problem.message == "YAML syntax error: found unexpected end of stream"


def test_duplicate_top_level_key(tmp_path: Path) -> None:
    text = SKILL_V3.replace("task_description: Say hello.\n", "task_description: Say hello.\ncreated_by: other\n")
    problem = only(check(tmp_path, SKILL, text))
    assert where([problem]) == [(4, 1, "error")]
    assert problem.message == "duplicate key 'created_by' (first at line 2): keep one"
    assert format_problem(problem, "text") == (
        f"{SKILL}/qna.yaml:4:1: error: duplicate key 'created_by' (first at line 2): keep one"
    )


def test_duplicate_nested_key(tmp_path: Path) -> None:
    text = SKILL_V3.replace("    answer: Answer 3.\n", "    answer: Answer 3.\n    question: Again?\n")
    problem = only(check(tmp_path, SKILL, text))
    first = line_of(text, "question: Question 3?")
    assert where([problem]) == [(first + 2, 5, "error")]
    assert f"duplicate key 'question' (first at line {first})" in problem.message


def test_top_level_list_is_an_error(tmp_path: Path) -> None:
    problem = only(check(tmp_path, SKILL, "# a list, not a mapping\n- question: Hi?\n  answer: Hello.\n"))
    assert where([problem]) == [(2, 1, "error")]
    assert "the top level must be a mapping" in problem.message


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_empty_file_is_a_warning_only(tmp_path: Path, text: str) -> None:
    problem = only(check(tmp_path, SKILL, text))
    assert where([problem]) == [(1, 1, "warning")]
    assert problem.message == "the file is empty"
    assert format_problem(problem, "text") == f"{SKILL}/qna.yaml:1:1: warning: the file is empty"


def test_file_over_one_mib_is_an_error(tmp_path: Path) -> None:
    text = SKILL_V3 + "# " + "x" * MAX_BYTES + "\n"
    problem = only(check(tmp_path, SKILL, text))
    assert where([problem]) == [(1, 1, "error")]
    assert "the limit is 1 MiB" in problem.message


def test_file_of_exactly_one_mib_is_read(tmp_path: Path) -> None:
    text = SKILL_V3 + ("# " + "x" * 97 + "\n") * ((MAX_BYTES - len(SKILL_V3) - 2) // 100)
    text += "#" * (MAX_BYTES - len(text) - 1) + "\n"
    assert len(text.encode()) == MAX_BYTES
    assert check(tmp_path, SKILL, text) == []


def test_nul_byte_is_binary_content(tmp_path: Path) -> None:
    raw = SKILL_V3.replace("created_by: tester", "created_by: tes\0ter").encode()
    problem = only(check(tmp_path, SKILL, raw))
    assert where([problem]) == [(2, 16, "error")]
    assert "binary content (a NUL byte)" in problem.message
    assert format_problem(problem, "text") == (
        f"{SKILL}/qna.yaml:2:16: error: binary content (a NUL byte); a qna.yaml must be UTF-8 text"
    )


def test_non_utf8_byte_is_located(tmp_path: Path) -> None:
    raw = SKILL_V3.encode().replace(b"Say hello.", b"Say h\xe9llo.")  # Latin-1 e-acute
    problem = only(check(tmp_path, SKILL, raw))
    assert where([problem]) == [(3, 24, "error")]
    assert "not UTF-8 text (byte 0xe9)" in problem.message


def test_bad_byte_column_counts_characters_not_bytes(tmp_path: Path) -> None:
    # "café" is 4 characters but 5 bytes; the column must match what an editor shows.
    problem = only(check(tmp_path, SKILL, "created_by: café".encode() + b"\xff\n"))
    assert where([problem]) == [(1, 17, "error")]
    problem = only(check(tmp_path, SKILL, "created_by: café".encode() + b"\0\n"))
    assert where([problem]) == [(1, 17, "error")]


def test_billion_laughs_returns_quickly_with_one_error(tmp_path: Path) -> None:
    lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    start = time.monotonic()
    problem = only(check(tmp_path, SKILL, "\n".join(lines) + "\n"))
    assert time.monotonic() - start < 2
    assert where([problem]) == [(1, 1, "error")]
    assert "billion laughs" in problem.message


def test_recursive_alias_returns_quickly_with_one_error(tmp_path: Path) -> None:
    start = time.monotonic()
    problem = only(check(tmp_path, SKILL, "version: 3\ncreated_by: &me [*me]\n"))
    assert time.monotonic() - start < 2
    assert where([problem]) == [(1, 1, "error")]
    assert "remove the aliases" in problem.message


def test_harmless_aliases_are_fine(tmp_path: Path) -> None:
    text = SKILL_V3.replace("created_by: tester", "created_by: &who tester") + "# by *who\n"
    text = text.replace("answer: Answer 5.", "answer: *who")
    assert check(tmp_path, SKILL, text) == []


def test_deeply_nested_values_do_not_crash(tmp_path: Path) -> None:
    deep = "{a: " * 490 + "b" + "}" * 490
    text = "version: 3\ncreated_by: tester\ntask_description: t\nseed_examples: [" + ", ".join([deep] * 5) + "]\n"
    problems = check(tmp_path, SKILL, text)
    assert any(p.level == "error" for p in problems)
    assert all(p.line >= 1 and p.column >= 1 for p in problems)


# --- the schema ----------------------------------------------------------------------------------------------------


def test_missing_required_key(tmp_path: Path) -> None:
    problem = only(check(tmp_path, SKILL, SKILL_V3.replace("created_by: tester\n", "")))
    assert where([problem]) == [(1, 1, "error")]
    assert problem.message == "top level: missing required key 'created_by'"
    assert format_problem(problem, "text") == (
        f"{SKILL}/qna.yaml:1:1: error: top level: missing required key 'created_by'"
    )


def test_each_missing_key_is_named(tmp_path: Path) -> None:
    problems = check(tmp_path, SKILL, "version: 3\n")
    assert sorted(p.message for p in problems) == [
        "top level: missing required key 'created_by'",
        "top level: missing required key 'seed_examples'",
        "top level: missing required key 'task_description'",
    ]
    assert {(p.line, p.column, p.level) for p in problems} == {(1, 1, "error")}


def test_missing_key_inside_a_seed(tmp_path: Path) -> None:
    text = SKILL_V3.replace("    answer: Answer 2.\n", "")
    problem = only(check(tmp_path, SKILL, text))
    assert where([problem]) == [(line_of(text, "Question 2?"), 5, "error")]
    assert problem.message == "seed_examples[1]: missing required key 'answer'"


def test_too_few_seed_examples(tmp_path: Path) -> None:
    text = SKILL_V3.replace("  - question: Question 5?\n    answer: Answer 5.\n", "")
    problem = only(check(tmp_path, SKILL, text))
    assert where([problem]) == [(5, 3, "error")]
    assert problem.message == "seed_examples: has 4 items; at least 5 are needed"


def test_duplicate_seed_examples(tmp_path: Path) -> None:
    text = SKILL_V3.replace("Question 5?", "Question 1?").replace("Answer 5.", "Answer 1.")
    problem = only(check(tmp_path, SKILL, text))
    assert where([problem]) == [(5, 3, "error")]
    assert problem.message == "seed_examples: has duplicate entries; every entry must be unique"


@pytest.mark.parametrize(
    ("old", "new", "line", "column", "message"),
    [
        ("created_by: tester", "created_by: 3", 2, 13, "created_by: must be a string, got integer"),
        ("created_by: tester", "created_by: [a, b]", 2, 13, "created_by: must be a string, got list"),
        ("created_by: tester", "created_by:", 2, 12, "created_by: must be a string, got nothing (null)"),
        ("created_by: tester", "created_by: ''", 2, 13, "created_by: must not be empty"),
        ("version: 3", "version: '3'", 1, 10, "version: must be an integer, got string"),
        ("answer: Answer 4.", "answer: true", 12, 13, "seed_examples[3].answer: must be a string, got boolean"),
        ("seed_examples:\n", "seed_examples: {}\n", 4, 16, "seed_examples: must be an array, got mapping"),
    ],
)
def test_wrong_type(tmp_path: Path, old: str, new: str, line: int, column: int, message: str) -> None:
    text = SKILL_V3.replace(old, new) if "seed_examples" not in old else SKILL_V3.split(old)[0] + new
    problems = check(tmp_path, SKILL, text)
    assert (line, column, "error") in where(problems)
    assert any(p.message == message and (p.line, p.column) == (line, column) for p in problems), problems


def test_unknown_top_level_key(tmp_path: Path) -> None:
    text = SKILL_V3.replace("task_description: Say hello.\n", "task_description: Say hello.\nauthor: someone\n")
    problem = only(check(tmp_path, SKILL, text))
    assert where([problem]) == [(4, 1, "error")]
    assert problem.message == "author: unknown key 'author'"
    assert format_problem(problem, "text") == f"{SKILL}/qna.yaml:4:1: error: author: unknown key 'author'"


def test_attribution_inside_a_v3_seed_is_unknown(tmp_path: Path) -> None:
    text = SKILL_V3.replace("    answer: Answer 4.\n", "    answer: Answer 4.\n    attribution: a book\n")
    problem = only(check(tmp_path, SKILL, text))
    assert where([problem]) == [(line_of(text, "attribution"), 5, "error")]
    assert problem.message == "seed_examples[3].attribution: unknown key 'attribution'"


def test_document_in_a_skill_is_unknown(tmp_path: Path) -> None:
    text = SKILL_V3 + 'document:\n  repo: https://example.com/docs.git\n  commit: abc\n  patterns: ["*.md"]\n'
    problem = only(check(tmp_path, SKILL, text))
    assert where([problem]) == [(line_of(text, "document:"), 1, "error")]
    assert problem.message == "document: unknown key 'document'"


@pytest.mark.parametrize(("version_line", "version", "line", "column"), [("", 1, 1, 1), ("version: 2\n", 2, 1, 10)])
def test_knowledge_before_version_3_is_an_error(
    tmp_path: Path, version_line: str, version: int, line: int, column: int
) -> None:
    text = version_line + knowledge_v3().removeprefix("version: 3\n")
    problem = only(check(tmp_path, KNOWLEDGE, text))
    assert where([problem]) == [(line, column, "error")]
    assert f"knowledge files need version 3 (this one is version {version})" in problem.message


def test_unsupported_version(tmp_path: Path) -> None:
    problem = only(check(tmp_path, SKILL, SKILL_V3.replace("version: 3", "version: 7")))
    assert where([problem]) == [(1, 10, "error")]
    assert problem.message == "unsupported version 7; seedlab reads versions 1 to 3"
    assert format_problem(problem, "text") == (
        f"{SKILL}/qna.yaml:1:10: error: unsupported version 7; seedlab reads versions 1 to 3"
    )


def test_knowledge_seed_needs_three_questions(tmp_path: Path) -> None:
    text = knowledge_v3()
    text = text.replace("      - question: Q2.3?\n        answer: A2.3.\n", "")
    problem = only(check(tmp_path, KNOWLEDGE, text))
    assert where([problem]) == [(line_of(text, "Q2.1?"), 7, "error")]
    assert problem.message == "seed_examples[1].questions_and_answers: has 2 items; at least 3 are needed"


def test_non_list_questions_and_answers_is_a_schema_error(tmp_path: Path) -> None:
    seeds = "".join(f"  - context: Context {i}.\n    questions_and_answers: {i}\n" for i in range(1, 6))
    text = knowledge_v3(seeds=seeds)
    problems = check(tmp_path, KNOWLEDGE, text)
    assert len(problems) == 5
    assert problems[0].message == "seed_examples[0].questions_and_answers: must be an array, got integer"
    assert where(problems[:1]) == [(line_of(text, "questions_and_answers: 1"), 28, "error")]


# --- yamllint ------------------------------------------------------------------------------------------------------


def test_version_1_skill_is_valid_with_one_seed_and_not_linted(tmp_path: Path) -> None:
    text = SKILL_V1.replace("created_by: tester", "created_by: tester   ")
    text = text.replace("  - question: Hi?\n    answer: Hello.\n", "  - {  question: Hi?, answer: Hello.  }")
    assert check(tmp_path, SKILL, text) == []


def test_version_1_skill_still_needs_a_seed(tmp_path: Path) -> None:
    problem = only(check(tmp_path, SKILL, SKILL_V1.split("seed_examples:")[0] + "seed_examples: []\n"))
    assert where([problem]) == [(3, 16, "error")]
    assert problem.message == "seed_examples: has 0 items; at least 1 are needed"


def test_version_3_trailing_spaces_and_missing_final_newline_are_errors(tmp_path: Path) -> None:
    text = SKILL_V3.replace("created_by: tester", "created_by: tester  ").rstrip("\n")
    problems = check(tmp_path, SKILL, text)
    last = text.count("\n") + 1
    assert where(problems) == [(2, 19, "error"), (last, len(text.splitlines()[-1]) + 1, "error")]
    assert problems[0].message == "trailing spaces (trailing-spaces)"
    assert problems[1].message == "no new line character at the end of file (new-line-at-end-of-file)"
    assert format_problem(problems[0], "text") == f"{SKILL}/qna.yaml:2:19: error: trailing spaces (trailing-spaces)"


def test_version_2_skill_is_linted_too(tmp_path: Path) -> None:
    text = SKILL_V3.replace("version: 3", "version: 2").replace("Say hello.", "Say hello. ")
    problem = only(check(tmp_path, SKILL, text))
    assert where([problem]) == [(3, 29, "error")]
    assert problem.message == "trailing spaces (trailing-spaces)"


def test_too_many_spaces_inside_braces_is_a_warning(tmp_path: Path) -> None:
    text = SKILL_V3.replace("  - question: Question 5?\n    answer: Answer 5.\n",
                            "  - {  question: Question 5?, answer: Answer 5. }\n")
    problem = only(check(tmp_path, SKILL, text))
    assert where([problem]) == [(13, 7, "warning")]
    assert problem.message == "too many spaces inside braces (braces)"
    assert format_problem(problem, "text") == (
        f"{SKILL}/qna.yaml:13:7: warning: too many spaces inside braces (braces)"
    )


def test_long_lines_are_not_a_yamllint_problem(tmp_path: Path) -> None:
    # line-length is disabled in yamllint (InstructLab's config); seedlab's own 120-character warning remains.
    text = SKILL_V3.replace("Say hello.", "Say hello " + "and more " * 12 + "then stop.")
    problem = only(check(tmp_path, SKILL, text))
    assert where([problem]) == [(3, 121, "warning")]


# --- documents -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["/etc/*.md", "../other/*.md", "docs/../../x.md", "~/notes.md", "C:\\docs\\*.md"])
def test_pattern_leaving_the_repository_is_an_error(tmp_path: Path, pattern: str) -> None:
    document = '  repo: https://example.com/docs.git\n  commit: abc123\n  patterns:\n    - "*.md"\n'
    document += f"    - {json.dumps(pattern)}\n"
    text = knowledge_v3(document)
    problem = only(check(tmp_path, KNOWLEDGE, text))
    assert where([problem]) == [(text.count("\n"), 7, "error")]
    assert problem.message == (
        f"document.patterns[1]: {pattern!r} leaves the repository; use a path relative to its root"
    )


@pytest.mark.parametrize("pattern", ["*.md", "docs/**/*.md", "a..b.md", "docs/./x.md"])
def test_patterns_inside_the_repository_are_fine(tmp_path: Path, pattern: str) -> None:
    document = f"  repo: https://example.com/docs.git\n  commit: abc123\n  patterns:\n    - {json.dumps(pattern)}\n"
    assert check(tmp_path, KNOWLEDGE, knowledge_v3(document)) == []


@pytest.mark.parametrize(
    "document",
    ['  patterns:\n    - "*.md"\n', '  repo: https://example.com/docs.git\n  patterns:\n    - "*.md"\n',
     '  commit: abc123\n  patterns:\n    - "*.md"\n', '  repo: ""\n  commit: abc123\n  patterns:\n    - "*.md"\n'],
)
def test_document_without_repo_or_commit_is_a_warning(tmp_path: Path, document: str) -> None:
    text = knowledge_v3(document)
    problem = only(check(tmp_path, KNOWLEDGE, text))
    assert where([problem]) == [(line_of(text, "document:"), 1, "warning")]
    assert problem.message.startswith("document: set repo and commit")


# --- size limits ---------------------------------------------------------------------------------------------------


def words(count: int, indent: int) -> str:
    """`count` words as a block scalar body, ten words a line."""
    lines = [" ".join(["word"] * min(10, count - i)) for i in range(0, count, 10)]
    return "".join(" " * indent + line + "\n" for line in lines)


@pytest.mark.parametrize(("count", "warned"), [(500, False), (501, True)])
def test_context_over_500_words_is_a_warning(tmp_path: Path, count: int, warned: bool) -> None:
    seed = f"  - context: |\n{words(count, 6)}    question: Question 6?\n    answer: Answer 6.\n"
    text = SKILL_V3 + seed
    problems = check(tmp_path, SKILL, text)
    if not warned:
        assert problems == []
        return
    problem = only(problems)
    assert where([problem]) == [(line_of(text, "context: |"), 14, "warning")]
    assert problem.message == "seed_examples[5].context: 501 words; keep a context within 500"


@pytest.mark.parametrize(("count", "warned"), [(248, False), (249, True)])
def test_question_and_answer_over_250_words_is_a_warning(tmp_path: Path, count: int, warned: bool) -> None:
    seed = f"  - question: Why now?\n    answer: |\n{words(count, 6)}"  # 2 + count words
    text = SKILL_V3 + seed
    problems = check(tmp_path, SKILL, text)
    if not warned:
        assert problems == []
        return
    problem = only(problems)
    assert where([problem]) == [(line_of(text, "Why now?"), 5, "warning")]
    assert problem.message == "seed_examples[5]: question and answer hold 251 words; keep them within 250"


def test_knowledge_question_and_answer_over_250_words_is_a_warning(tmp_path: Path) -> None:
    text = knowledge_v3()
    text = text.replace("        answer: A3.2.\n", f"        answer: |\n{words(260, 10)}")
    problem = only(check(tmp_path, KNOWLEDGE, text))
    assert where([problem]) == [(line_of(text, "Q3.2?"), 9, "warning")]
    assert problem.message == (
        "seed_examples[2].questions_and_answers[1]: question and answer hold 261 words; keep them within 250"
    )


@pytest.mark.parametrize(("length", "warned"), [(120, False), (121, True)])
def test_line_over_120_characters_is_a_warning(tmp_path: Path, length: int, warned: bool) -> None:
    prefix = "task_description: "
    text = SKILL_V3.replace("task_description: Say hello.", prefix + "x" * (length - len(prefix)))
    assert len(text.splitlines()[2]) == length
    problems = check(tmp_path, SKILL, text)
    if not warned:
        assert problems == []
        return
    problem = only(problems)
    assert where([problem]) == [(3, 121, "warning")]
    assert format_problem(problem, "text") == (
        f"{SKILL}/qna.yaml:3:121: warning: line is 121 characters; keep lines within 120 (wrap the text in a | block)"
    )


# --- which schema --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("folder", "kind"),
    [
        ("compositional_skills/a/b", "skills"),
        ("foundational_skills/a", "skills"),
        ("knowledge/a/b/c", "knowledge"),
        ("knowledge/compositional_skills/a", "skills"),
        ("compositional_skills/knowledge/a", "knowledge"),
        ("taxonomy/foundational_skills/knowledge", "knowledge"),
    ],
)
def test_kind_from_the_nearest_top_folder(tmp_path: Path, folder: str, kind: str) -> None:
    path = write(tmp_path, folder, SKILL_V3)
    assert kind_for_path(path) == kind
    assert kind_for_path(path, {"document": {}}) == kind  # the folder wins over the content


def test_kind_from_content_outside_any_top_folder(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere" / "qna.yaml"
    assert kind_for_path(path, {"document": {}}) == "knowledge"
    assert kind_for_path(path, {"created_by": "x"}) == "skills"
    assert kind_for_path(path, ["document"]) == "skills"
    assert check(tmp_path, "elsewhere/k", knowledge_v3()) == []
    assert check(tmp_path, "elsewhere/s", SKILL_V3) == []


def test_folder_decides_the_schema(tmp_path: Path) -> None:
    problems = check(tmp_path, "foundational_skills/reading", knowledge_v3())
    messages = [p.message for p in problems]
    assert "top level: missing required key 'task_description'" in messages
    assert "domain: unknown key 'domain'" in messages
    assert "document: unknown key 'document'" in messages

    problem = next(p for p in check(tmp_path, KNOWLEDGE, SKILL_V3) if "domain" in p.message)
    assert (problem.line, problem.column, problem.level) == (1, 1, "error")
    assert problem.message == "top level: missing required key 'domain'"


def test_explicit_kind_overrides_the_folder(tmp_path: Path) -> None:
    path = write(tmp_path, "compositional_skills/x", knowledge_v3())
    assert validate_file(path, kind="knowledge") == []


# --- many files ----------------------------------------------------------------------------------------------------


def make_tree(root: Path) -> None:
    write(root, "compositional_skills/a", SKILL_V3)
    write(root, "compositional_skills/b/c", SKILL_V3.replace("created_by: tester", "created_by: 3"))
    write(root, "knowledge/d", knowledge_v3())
    write(root, "foundational_skills/e", SKILL_V1, name="qna.yml")
    write(root, "compositional_skills/f", SKILL_V3, name="notes.yaml")  # not a leaf: not looked at
    write(root, ".git/objects", "not: [valid")  # never inside .git


@pytest.mark.parametrize("given", ["tax", "tax/", "./tax", "ABSOLUTE"])
def test_validate_paths_finds_every_leaf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: str) -> None:
    make_tree(tmp_path / "tax")
    monkeypatch.chdir(tmp_path)
    given = str(tmp_path / "tax") if given == "ABSOLUTE" else given
    reports = validate_paths([given])
    rels = [
        "compositional_skills/a/qna.yaml",
        "compositional_skills/b/c/qna.yaml",
        "foundational_skills/e/qna.yml",
        "knowledge/d/qna.yaml",
    ]
    assert [r.path for r in reports] == [os.path.join(given, rel) for rel in rels]
    assert all(r.path.startswith(given) for r in reports)
    assert [(r.errors, r.warnings) for r in reports] == [(0, 0), (1, 0), (0, 1), (0, 0)]
    bad = reports[1].problems[0]
    assert bad.path == reports[1].path
    assert format_problem(bad, "text") == f"{reports[1].path}:2:13: error: created_by: must be a string, got integer"


def test_validate_paths_keeps_a_file_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_tree(tmp_path / "tax")
    monkeypatch.chdir(tmp_path)
    reports = validate_paths(["tax/compositional_skills/b/c/qna.yaml", "tax/knowledge"])
    assert [r.path for r in reports] == ["tax/compositional_skills/b/c/qna.yaml", "tax/knowledge/d/qna.yaml"]


def test_validate_paths_on_the_examples() -> None:
    reports = validate_paths([str(EXAMPLES)])
    assert sorted(r.path for r in reports) == sorted(str(EXAMPLES / rel) for rel in EXAMPLE_LEAVES)
    assert [r.problems for r in reports] == [[], [], []]


# --- the command ---------------------------------------------------------------------------------------------------


def run_validate(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["taxonomy", "validate", *args])
    return result.exit_code, result.stdout, result.stderr


def test_cli_examples_are_valid() -> None:
    code, out, _ = run_validate(str(EXAMPLES))
    assert code == 0, out
    assert out.splitlines() == ["3 files checked: 3 valid, 0 invalid (0 errors, 0 warnings)"]


def test_cli_warnings_only_exit_0(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, SKILL, SKILL_V3, name="qna.yml")
    code, out, _ = run_validate(f"{SKILL}/qna.yml")
    assert code == 0
    assert out.splitlines() == [
        f"{SKILL}/qna.yml:1:1: warning: rename qna.yml to qna.yaml; InstructLab only reads qna.yaml",
        "1 files checked: 1 valid, 0 invalid (0 errors, 1 warnings)",
    ]


def test_cli_invalid_file_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, SKILL, SKILL_V3.replace("created_by: tester", "created_by: 3"))
    code, out, _ = run_validate(f"{SKILL}/qna.yaml")
    assert code == 1
    assert out.splitlines() == [
        f"{SKILL}/qna.yaml:2:13: error: created_by: must be a string, got integer",
        "1 files checked: 0 valid, 1 invalid (1 errors, 0 warnings)",
    ]


def test_cli_nonexistent_path_exits_2(tmp_path: Path) -> None:
    code, out, err = run_validate(str(tmp_path / "missing" / "qna.yaml"))
    assert code == 2
    assert "does not exist" in out + err


def test_cli_json_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    text = SKILL_V3.replace("created_by: tester", "created_by: 3").replace("Say hello.", "Say hello.  ")
    write(tmp_path, SKILL, text, name="qna.yml")
    code, out, err = run_validate("--format", "json", "compositional_skills")
    assert code == 1
    objects = [json.loads(line) for line in out.splitlines()]
    assert len(objects) == 3
    for obj in objects:
        assert set(obj) == {"path", "line", "column", "level", "message"}
        assert obj["path"] == f"{SKILL}/qna.yml"
    assert [(o["line"], o["column"], o["level"]) for o in objects] == [
        (1, 1, "warning"), (2, 13, "error"), (3, 29, "error"),
    ]
    assert objects[1]["message"] == "created_by: must be a string, got integer"
    assert "1 files checked: 0 valid, 1 invalid (2 errors, 1 warnings)" in err


def test_cli_github_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, SKILL, SKILL_V3.replace("created_by: tester", "created_by: 3"), name="qna.yml")
    code, out, _ = run_validate("--format", "github", f"{SKILL}/qna.yml")
    assert code == 1
    *annotations, summary = out.splitlines()
    assert annotations == [
        f"::warning file={SKILL}/qna.yml,line=1,col=1::rename qna.yml to qna.yaml; InstructLab only reads qna.yaml",
        f"::error file={SKILL}/qna.yml,line=2,col=13::created_by: must be a string, got integer",
    ]
    assert all(a.startswith(("::error file=", "::warning file=")) for a in annotations)
    assert summary.startswith("1 files checked")


def test_github_format_escapes() -> None:
    problem = Problem("a,b:c/qna.yaml", 3, 4, "error", "100% bad\nsecond line")
    assert format_problem(problem, "github") == "::error file=a%2Cb%3Ac/qna.yaml,line=3,col=4::100%25 bad%0Asecond line"
