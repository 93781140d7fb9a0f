"""SDG building blocks without a model: text helpers, chunking, prompt templates and drop statistics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from seedlab.errors import SeedlabError
from seedlab.sdg._chunk import approximate_tokens, chunk_document, document_facts, document_title
from seedlab.sdg._stats import BLOCK_ORDER, block_stats, dedupe, main_drop_reason, render_table
from seedlab.sdg._templates import REQUIRED, Template, load_templates
from seedlab.text import (
    answer_spans,
    content_words,
    cue_phrases,
    names,
    normalise,
    numbers,
    rouge_l,
    split_sentences,
    words,
)


def word_count(text: str) -> int:
    return len(text.split())


# --- _text ------------------------------------------------------------------------------------------------------


def test_words_are_lower_cased_with_numbers_normalised() -> None:
    assert words("Hello, World! It's 4,860 seeds at 3.4 tonnes.") == [
        "hello", "world", "it's", "4860", "seeds", "at", "3.4", "tonnes"]
    assert words("seed-cleaning, 7 and 1,940.") == ["seed-cleaning", "7", "and", "1940"]
    assert words("") == [] and words("... !!") == []


def test_content_words_drop_stopwords_and_single_letters() -> None:
    assert content_words("The library holds 4,860 seed varieties in a vault.") == {
        "library", "holds", "4860", "seed", "varieties", "vault"}
    assert content_words("It is what it is, x y z.") == set()


def test_numbers_are_normalised() -> None:
    assert numbers("In 2023 the library lent 9,317 packets to 1,204 members.") == {"2023", "9317", "1204"}
    assert numbers("Today the library holds 4,860 seed varieties.") == {"4860"}
    assert numbers("A yield of 3.4 tonnes, 7 days.") == {"3.4", "7"}
    assert numbers("no digits here") == set()


def test_names_are_capitalised_words_after_the_first_of_a_sentence() -> None:
    text = "The botanist Mirela Kostandin met Jonas. Then Ana left. Yesterday It rained."
    assert names(text) == {"mirela", "kostandin", "jonas", "ana"}  # "It" is a stopword; first words never count
    assert names("Lowercase only here.") == set()


def test_split_sentences_on_punctuation_headings_list_items_and_blank_lines() -> None:
    text = ("# Title\n\nFirst sentence here. Second one! Third (with 2 parts)?\n"
            "- item one\n- item two\n* star item\n\nA paragraph\nthat wraps. \"Quoted\" start.")
    assert split_sentences(text) == [
        "First sentence here.", "Second one!", "Third (with 2 parts)?", "item one", "item two", "star item",
        "A paragraph that wraps.", "\"Quoted\" start."]
    assert split_sentences("") == []
    assert split_sentences("no end punctuation") == ["no end punctuation"]
    assert split_sentences("e.g. this stays whole. Version 2 follows.") == ["e.g. this stays whole.",
                                                                            "Version 2 follows."]


def test_split_sentences_keeps_the_text_right_under_a_heading() -> None:
    text = "# Title\nThe text right under it. More text.\n## Part two\nSecond part text."
    assert split_sentences(text) == ["The text right under it.", "More text.", "Second part text."]


def test_normalise_is_words_only() -> None:
    assert normalise("  Rewrite THIS, please!  ") == "rewrite this please"
    assert normalise("4,860 seeds.") == normalise("4860 seeds")


def test_rouge_l_exact_partial_and_zero() -> None:
    assert rouge_l("the cat sat", "The cat sat.") == 1.0
    assert rouge_l("the cat sat", "the cat ran") == pytest.approx(2 / 3)
    # LCS "a c" of lengths 4 and 2: precision 2/4, recall 2/2 -> F1 2/3
    assert rouge_l("a b c d", "a c") == pytest.approx(2 / 3)
    assert rouge_l("alpha beta", "gamma delta") == 0.0
    assert rouge_l("", "anything") == 0.0 and rouge_l("anything", "") == 0.0


# --- _chunk -----------------------------------------------------------------------------------------------------


def five_word_sentences(n: int) -> str:
    return " ".join(f"Fact {i} is stated here." for i in range(n))


def test_cue_phrases_skip_numbers_names_glue_and_the_subject() -> None:
    common = {"halvane", "seed", "library"}
    sentence = "The Halvane Seed Library kept 15 percent relative humidity in the vault for Petra Vallin."
    assert cue_phrases(sentence, common) == ["kept", "percent", "relative humidity", "vault"]
    assert cue_phrases("The library's emblem is green.", common) == ["emblem", "green"]


def test_cue_phrases_spread_over_a_long_sentence() -> None:
    sentence = "Alpha beta, gamma delta, epsilon zeta, theta iota, kappa lambda."
    assert cue_phrases(sentence, set(), 3) == ["alpha beta", "epsilon zeta", "kappa lambda"]
    assert cue_phrases(sentence, set(), 1) == ["alpha beta"]
    assert cue_phrases("It was 12.", set()) == []


def test_answer_spans_ask_for_one_name_date_or_quantity_answered_alone() -> None:
    common = {"halvane", "seed", "library"}
    sentence = ("It was founded on 14 March 2009 by the botanist Mirela Kostandin and the retired ferry captain "
                "Jonas Aberlund.")
    pairs = answer_spans(sentence, common, limit=3, subject="The Halvane Seed Library")
    assert pairs == [
        ("The Halvane Seed Library was founded on what date by the botanist Mirela Kostandin and the retired ferry "
         "captain Jonas Aberlund?", "14 March 2009."),
        ("The Halvane Seed Library was founded on 14 March 2009 by the botanist whom and the retired ferry captain "
         "Jonas Aberlund?", "Mirela Kostandin."),
        ("The Halvane Seed Library was founded on 14 March 2009 by the botanist Mirela Kostandin and the retired "
         "ferry captain what?", "Jonas Aberlund."),
    ]
    # a number with the plural noun it counts (an adjective before it kept); a year after "in"; the subject not asked
    assert answer_spans("In 2023 the Halvane Seed Library lent 9,317 packets to 31 local gardeners.", common, 4) == [
        ("In what year the Halvane Seed Library lent 9,317 packets to 31 local gardeners?", "2023."),
        ("In 2023 the Halvane Seed Library lent how many packets to 31 local gardeners?", "9,317 packets."),
        ("In 2023 the Halvane Seed Library lent 9,317 packets to how many local gardeners?", "31 local gardeners."),
    ]
    assert answer_spans("Children under 14 join for free.", common) == []  # "14 join": no noun counted
    assert answer_spans("| Route | Vessel |", common) == []  # a table row
    assert len(answer_spans(sentence, common, limit=1)) == 1


def test_chunk_document_respects_max_tokens() -> None:
    text = five_word_sentences(7)
    chunks = chunk_document(text, word_count, max_tokens=10, overlap=0)
    assert chunks == ["Fact 0 is stated here. Fact 1 is stated here.", "Fact 2 is stated here. Fact 3 is stated here.",
                      "Fact 4 is stated here. Fact 5 is stated here.", "Fact 6 is stated here."]
    assert all(word_count(c) <= 10 for c in chunks)
    assert chunk_document("", word_count) == []


def test_chunk_overlap_repeats_trailing_sentences_of_the_previous_chunk() -> None:
    text = five_word_sentences(6)
    chunks = chunk_document(text, word_count, max_tokens=15, overlap=5)
    assert all(word_count(c) <= 15 for c in chunks)
    assert chunks[0] == "Fact 0 is stated here. Fact 1 is stated here. Fact 2 is stated here."
    for previous, current in zip(chunks, chunks[1:], strict=False):
        assert split_sentences(current)[0] == split_sentences(previous)[-1]  # one 5-token sentence repeated
    assert chunks[-1].endswith("Fact 5 is stated here.")
    # every sentence appears somewhere, in order
    seen = [s for c in chunks for s in split_sentences(c)]
    assert list(dict.fromkeys(seen)) == split_sentences(text)
    # an overlap too small for any sentence repeats nothing
    assert chunk_document(text, word_count, max_tokens=15, overlap=4) == [
        "Fact 0 is stated here. Fact 1 is stated here. Fact 2 is stated here.",
        "Fact 3 is stated here. Fact 4 is stated here. Fact 5 is stated here."]


def test_a_sentence_longer_than_a_chunk_stands_alone() -> None:
    long = "This " + " ".join(["word"] * 18) + " ends."
    text = f"Short one here now. {long} Another short one here."
    for overlap in (0, 48):
        assert chunk_document(text, word_count, max_tokens=10, overlap=overlap) == [
            "Short one here now.", long, "Another short one here."]


def test_approximate_tokens() -> None:
    assert approximate_tokens("") == 1
    assert approximate_tokens("one two three four five six seven eight nine ten") == 13


def test_document_facts_lists_each_sentence_once_with_its_first_chunk() -> None:
    text = five_word_sentences(5) + " Too short here."  # under five words: not a fact
    chunks, facts = document_facts("doc.md", text, word_count, max_tokens=10, overlap=5)
    assert chunks == chunk_document(text, word_count, 10, 5)
    assert len(chunks) == 5  # 0 1 | 1 2 | 2 3 | 3 4 | 4 short
    assert [f.text for f in facts] == [f"Fact {i} is stated here." for i in range(5)]
    assert [f.chunk_index for f in facts] == [0, 0, 1, 2, 3]
    for fact in facts:
        assert fact.path == "doc.md"
        assert fact.chunk == chunks[fact.chunk_index] and fact.text in fact.chunk
        assert fact.standalone == fact.text


def test_standalone_prepends_the_previous_sentence_for_a_pronoun_start() -> None:
    text = ("The Halvane library opened in 2009. It holds many old seed varieties. "
            "Members may borrow twelve packets. Their seeds come back at harvest time.")
    _, facts = document_facts("d.md", text, word_count, max_tokens=100, overlap=0)
    by_text = {f.text: f.standalone for f in facts}
    assert by_text["It holds many old seed varieties."] == ("The Halvane library opened in 2009. "
                                                            "It holds many old seed varieties.")
    assert by_text["Their seeds come back at harvest time."] == ("Members may borrow twelve packets. "
                                                                 "Their seeds come back at harvest time.")
    assert by_text["Members may borrow twelve packets."] == "Members may borrow twelve packets."
    # a pronoun-led sentence that opens its chunk has nothing before it to borrow
    _, alone = document_facts("d.md", "It holds many old seed varieties.", word_count)
    assert alone[0].standalone == "It holds many old seed varieties."


def test_document_title_is_the_first_h1_else_the_fallback() -> None:
    assert document_title("# The Halvane Seed Library\n\nText.", "x") == "The Halvane Seed Library"
    assert document_title("Intro.\n## Sub\n#  Main title  \n", "x") == "Main title"
    assert document_title("No heading here.", "Community seed libraries") == "Community seed libraries"


# --- _templates -------------------------------------------------------------------------------------------------


def test_default_templates_load_with_a_version_and_every_required_template() -> None:
    for name in ("default", "auto"):
        templates = load_templates(name)
        assert templates.name == "default" and templates.version >= 1
        for key in REQUIRED:
            assert templates[key].kind in ("completion", "chat")
    default = load_templates("default")
    assert default["question_judge"].kind == "chat" and default["skill_question"].kind == "completion"


def test_completion_builds_header_examples_and_query() -> None:
    template = Template(kind="completion", header="Task: {task}\n\n", example="Q: {question}\n", query="Q:",
                        stop=["\n"], max_tokens=20, temperature=0.5)
    request = template.completion([{"question": "one?"}, {"question": "two?"}], {"task": "Ask."}, 3, 42)
    assert request.prompt == "Task: Ask.\n\nQ: one?\nQ: two?\nQ:"
    assert request.messages is None and request.json_schema is None
    assert (request.n, request.seed, request.stop, request.max_tokens, request.temperature) == (3, 42, ["\n"], 20,
                                                                                                  0.5)
    request.stop.append("x")
    assert template.stop == ["\n"]  # the request has its own copy


def test_chat_builds_system_example_turns_and_user() -> None:
    template = Template(kind="chat", system="{task} Be brief.", user="Request: {question}", max_tokens=9)
    schema = {"type": "object"}
    request = template.chat([("q1", "a1"), ("q2", "a2")], {"task": "Answer.", "question": "q3"}, 2, 7, schema)
    assert request.messages == [
        {"role": "system", "content": "Answer. Be brief."},
        {"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q2"}, {"role": "assistant", "content": "a2"},
        {"role": "user", "content": "Request: q3"}]
    assert request.prompt is None and request.json_schema == schema
    assert (request.n, request.seed, request.max_tokens) == (2, 7, 9)
    plain = Template(kind="chat", system="S").chat([], {"question": "hi"}, 1, 0)
    assert plain.messages == [{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}]
    assert plain.json_schema is None


def default_yaml() -> dict[str, Any]:
    import yaml

    text = (Path(__file__).parents[1] / "seedlab" / "sdg" / "templates" / "default.yaml").read_text()
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def test_a_yaml_template_file_of_the_same_shape_loads(tmp_path: Path) -> None:
    import yaml

    data = default_yaml()
    data["name"], data["version"] = "mine", 7
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(data))
    templates = load_templates(str(path))
    assert (templates.name, templates.version) == ("mine", 7)
    assert templates["answer"] == load_templates("default")["answer"]


@pytest.mark.parametrize("case", ["unknown_key", "missing", "not_a_set", "no_version", "bad_version", "list",
                                  "empty", "no_kind", "bad_yaml"])
def test_a_bad_template_file_raises_seedlab_error_naming_it(tmp_path: Path, case: str) -> None:
    import yaml

    data = default_yaml()
    expected = {"unknown_key": "unknown key 'promt'", "missing": "missing templates ['pair_judge']",
                "bad_yaml": "not valid YAML", "not_a_set": "not a template set"}
    if case == "unknown_key":
        data["templates"]["answer"]["promt"] = "x"
    elif case == "missing":
        del data["templates"]["pair_judge"]
    elif case == "no_version":
        del data["version"]
    elif case == "bad_version":
        data["version"] = "one"
    elif case == "no_kind":
        del data["templates"]["answer"]["kind"]
    text = yaml.safe_dump(data)
    if case == "not_a_set":
        text = "just a string\n"
    elif case == "list":
        text = "- a\n- b\n"
    elif case == "empty":
        text = ""
    elif case == "bad_yaml":
        text = "name: [unclosed\n"
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(SeedlabError) as info:
        load_templates(str(path))
    assert str(path) in str(info.value) and "\n" not in str(info.value)  # one line for the CLI's error:
    assert expected.get(case, "") in str(info.value)


def test_unknown_set_name_and_missing_file_raise(tmp_path: Path) -> None:
    with pytest.raises(SeedlabError, match="no template set 'nope'"):
        load_templates("nope")
    missing = tmp_path / "absent.yaml"
    with pytest.raises(SeedlabError, match="cannot read template set") as info:
        load_templates(str(missing))
    assert str(missing) in str(info.value)


# --- _stats -----------------------------------------------------------------------------------------------------


def record(passed: list[str], drop: list[str] | None = None) -> dict[str, Any]:
    return {"id": "x", "passed": passed, "drop": drop, "sample": None}


def test_block_stats_counts_in_kept_and_dropped_by_reason_in_block_order() -> None:
    records = [
        record(["contexts", "questions"], ["answers", "empty_answer"]),
        record(["contexts", "questions", "answers"]),
        record([], ["contexts", "empty_or_too_short"]),
        record([], ["contexts", "empty_or_too_short"]),
        record(["contexts"], ["questions", "copies_seed"]),
        record(["contexts"], ["custom_block", "odd"]),
    ]
    stats = block_stats(records)
    assert list(stats) == ["contexts", "questions", "answers", "custom_block"]  # known blocks first, in order
    assert stats["contexts"] == {"in": 6, "kept": 4, "dropped": {"empty_or_too_short": 2}}
    assert stats["questions"] == {"in": 3, "kept": 2, "dropped": {"copies_seed": 1}}
    assert stats["answers"] == {"in": 2, "kept": 1, "dropped": {"empty_answer": 1}}
    assert stats["custom_block"] == {"in": 1, "kept": 0, "dropped": {"odd": 1}}
    assert block_stats([]) == {}
    assert BLOCK_ORDER[-1] == "dedupe"


def sample(user: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": "a"}], "metadata": {}}


def test_dedupe_drops_exact_and_near_duplicates_of_seeds_and_earlier_samples() -> None:
    seeds = ["Rewrite this note about the broken printer formally."]
    samples = [
        sample("rewrite THIS note, about the broken printer formally!"),  # exact copy of a seed (normalised)
        sample("Rewrite this note about the broken office printer formally."),  # near copy of the seed
        sample("Summarise the quarterly sales figures for the board."),
        sample("Summarise the quarterly sales figures for the board members."),  # near copy of the one before
        sample("Summarise the quarterly sales figures for the board."),  # exact copy of an earlier sample
        sample("Translate the lunch menu into plain English."),
    ]
    kept, stats = dedupe(samples, seeds)
    assert [s["messages"][0]["content"] for s in kept] == ["Summarise the quarterly sales figures for the board.",
                                                           "Translate the lunch menu into plain English."]
    assert stats == {"in": 6, "kept": 2, "dropped": {"exact_duplicate": 2, "near_duplicate": 2}}
    assert dedupe([], seeds) == ([], {"in": 0, "kept": 0, "dropped": {}})
    assert dedupe(samples[:1], [])[0] == samples[:1]


def test_main_drop_reason_is_the_most_frequent_drop() -> None:
    blocks = {"questions": {"in": 9, "kept": 6, "dropped": {"too_long": 1, "copies_seed": 2}},
              "pair_judge": {"in": 6, "kept": 1, "dropped": {"rated_1": 5}}}
    assert main_drop_reason(blocks) == "pair_judge: rated_1 (5)"
    assert main_drop_reason({"questions": {"in": 0, "kept": 0, "dropped": {}}}) == "no candidates were generated"
    assert main_drop_reason({}) == "no candidates were generated"


def test_render_table_lists_every_leaf_and_block() -> None:
    from rich.console import Console

    stats = {"leaves": {"a/qna.yaml": {"blocks": {"questions": {"in": 3, "kept": 2, "dropped": {"too_long": 1}}},
                                       "samples": 2},
                        "b/qna.yaml": {"blocks": {}, "samples": 4, "reused": True}}}
    console = Console(width=200, record=True)
    console.print(render_table(stats))
    text = console.export_text()
    assert "a/qna.yaml" in text and "too_long: 1" in text and "= samples" in text
    assert "b/qna.yaml" in text and "= reused" in text
