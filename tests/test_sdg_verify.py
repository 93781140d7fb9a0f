"""Every model-free SDG check and each of its drop reasons, on small fixed strings."""

from __future__ import annotations

import pytest

from seedlab.sdg._verify import (
    best_sentences,
    check_answer,
    check_context,
    check_faithful,
    check_relevant,
    check_request,
    check_standalone,
    clean,
)

LONG = " ".join(["word"] * 121)


def test_clean_strips_whitespace_and_a_repeated_label() -> None:
    assert clean("  Question:  What is it?  ") == "What is it?"
    assert clean("answer: yes") == "yes"
    assert clean("REQUEST:do this") == "do this"
    assert clean("Text: stays") == "Text: stays"  # only request/question/answer labels are stripped
    assert clean("  plain \n") == "plain"


# --- skills -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "seeds", "reason"), [
    ("", [], "empty_or_too_short"),
    ("two words", [], "empty_or_too_short"),
    (LONG, [], "too_long"),
    ("Please write a short poem.\nAnswer: here it is", [], "template_artifact"),
    ("Request: write a short poem please", [], "template_artifact"),
    ("rewrite THIS note, please now!", ["Rewrite this note please now"], "copies_seed"),
    ("Rewrite this message formally please.", ["Rewrite this note please now"], None),
    ("Rewrite this note please now", [], None),  # grounded skills pass no seeds: a repeat is fine
])
def test_check_request(text: str, seeds: list[str], reason: str | None) -> None:
    assert check_request(text, seeds) == reason


def test_check_request_max_words() -> None:
    assert check_request("one two three four", [], max_words=3) == "too_long"
    assert check_request("one two three", [], max_words=3) is None


SEED_CONTEXT = ("Team sync, Monday. Ana will draft the budget by Thursday. Ben reported the server upgrade is done. "
                "Carla will call the supplier on Tuesday.")


@pytest.mark.parametrize(("text", "reason"), [
    ("", "empty_or_too_short"),
    ("Short notes. Ana will call Ben today.", "empty_or_too_short"),
    ("Text: Design review. Dev will export the logo files by Friday and Mia will update the guide.",
     "template_artifact"),
    ("Design review.\nfact: Dev will export the logo files by Friday and Mia will update the guide.",
     "template_artifact"),
    (SEED_CONTEXT.replace("Tuesday", "Wednesday"), "copies_seed"),
    ("Design review. The logo was approved. Dev will export the logo files by Friday. Mia will update the guide.",
     None),
])
def test_check_context(text: str, reason: str | None) -> None:
    assert check_context(text, [SEED_CONTEXT]) == reason


@pytest.mark.parametrize(("answer", "question", "finish", "reason"), [
    ("", "Rewrite this.", "stop", "empty_answer"),
    ("  ...  ", "Rewrite this.", "stop", "empty_answer"),
    ("Could you please send me the", "Rewrite this.", "length", "answer_cut_off"),
    ("Sure.\nRating: 3", "Rewrite this.", "stop", "template_artifact"),
    ("Rewrite this message, please!", "rewrite this message please", "stop", "answer_repeats_request"),
    ("Could you please send me the report by Friday?", "Rewrite: send report friday", "stop", None),
    ("Fine.", "Rewrite this.", "", None),
])
def test_check_answer(answer: str, question: str, finish: str, reason: str | None) -> None:
    assert check_answer(answer, question, finish) == reason


# --- knowledge --------------------------------------------------------------------------------------------------


ANCHORS = {"halvane", "mirela", "kostandin"}


@pytest.mark.parametrize(("question", "reason"), [
    ("When was the Halvane library founded", "not_a_question"),
    ("Halvane library founded?", "not_a_question"),
    ("Why " + " ".join(["Halvane"] * 30) + "?", "too_long"),
    ("It was founded in which year by Halvane?", "not_standalone"),
    ("Their founder was Mirela Kostandin, right?", "not_standalone"),
    ("this library is in Halvane, isn't it?", "not_standalone"),
    ("When was the library founded?", "not_standalone"),  # names no anchor word
    ("When was the Halvane library founded?", None),
    ("Itineraries of the Halvane library visitors?", None),  # 'It' only as a whole word
])
def test_check_standalone(question: str, reason: str | None) -> None:
    assert check_standalone(question, ANCHORS) == reason


def test_check_standalone_without_anchors_needs_no_anchor_word() -> None:
    assert check_standalone("When was the library founded?", set()) is None


SENTENCES = ["The Halvane library was founded in 2009 by Mirela Kostandin.",
             "The Halvane library holds 4,860 seed varieties in a vault.",
             "The vault is kept at minus 18 degrees."]
SOURCE = " ".join(SENTENCES)
TITLE = "The Halvane Seed Library of Ostrel Vey"


def test_best_sentences_weighs_rare_words() -> None:
    best, shared = best_sentences("How many seed varieties are in the Halvane library vault?", SENTENCES)
    assert best == {1} and shared == 5  # 'vault' and 'halvane' are shared with other sentences too
    assert best_sentences("What is the Halvane library?", SENTENCES) == ({0, 1}, 2)
    assert best_sentences("Nothing shared at all?", SENTENCES) == (set(), 0)


@pytest.mark.parametrize(("question", "fact", "reason"), [
    ("When did the Halvane library close its doors?", 0, "unsupported_premise"),
    ("How many seed varieties are in the Halvane library vault?", 0, "asks_another_fact"),
    ("How many seed varieties does the Halvane library hold?", 1, None),  # 'hold' matches 'holds'
    ("In what year did Mirela Kostandin start the Halvane library?", 0, None),  # one word of its own: a paraphrase
    ("Was the Halvane library founded in 2011 by Mirela Kostandin?", 0, "unsupported_premise"),  # a new number
    ("Did Jonas found the Halvane library in 2009?", 0, "unsupported_premise"),  # a new name
    ("What is Mirela known for?", 0, "asks_another_fact"),  # only one shared word
    ("The Halvane library was founded in 2009 by Mirela Kostandin?", 0, "copies_fact"),
    ("In what year was the Halvane library founded by Mirela Kostandin?", 0, None),
    ("How many seed varieties are in the Halvane library vault?", 1, None),
    ("What is kept in the seed library vault?", 1, None),
    ("How many seed varieties are in the Halvane library vault of Ostrel Vey?", 1, None),  # title words
    ("What is the Halvane library?", 0, None),  # a tie for best still points at the fact
    ("What is the Halvane library?", 1, None),
])
def test_check_relevant(question: str, fact: int, reason: str | None) -> None:
    assert check_relevant(question, fact, SENTENCES, SOURCE, TITLE) == reason


def test_check_relevant_title_words_count_as_supported() -> None:
    question = "How many seed varieties are in the Halvane library vault of Ostrel Vey?"
    assert check_relevant(question, 1, SENTENCES, SOURCE) == "unsupported_premise"


FAITH_SOURCE = "The Halvane library was founded in 2009 by Mirela Kostandin. It holds 4,860 seed varieties."


@pytest.mark.parametrize(("answer", "question", "reason"), [
    ("", "When was the Halvane library founded?", "empty_answer"),
    ("The library was not founded in 2009.", "When was the Halvane library founded?", "adds_negation"),
    ("It was never founded by Mirela Kostandin.", "Who founded the Halvane library?", "adds_negation"),
    ("It was founded in 2010.", "When was the Halvane library founded?", "unsupported_number"),
    ("It holds 4,861 seed varieties.", "How many seed varieties does it hold?", "unsupported_number"),
    ("It was founded by Jonas Kostandin.", "Who founded the Halvane library?", "unsupported_name"),
    ("The library grows tall purple tomatoes.", "What does the Halvane library do?", "unsupported_words"),
    ("Mirela Kostandin founded the library.", "When was the Halvane library founded?", "does_not_answer"),
    ("Mirela Kostandin founded the library.", "In what year was the Halvane library founded?", "does_not_answer"),
    ("It holds seed varieties.", "How many seed varieties does the Halvane library hold?", "does_not_answer"),
    ("The library was founded in 2009.", "Who founded the Halvane library?", "does_not_answer"),
    ("It was founded in 2009.", "When was the Halvane library founded?", None),
    ("It holds 4860 seed varieties.", "How many seed varieties does the Halvane library hold?", None),
    ("Mirela Kostandin founded it.", "Who founded the Halvane library?", None),
    ("Mirela founded it.", "Who founded the Halvane library?", None),  # a source name as the first word
    ("It holds 4,860 lovely seed varieties.", "What does the Halvane library hold?", None),  # one extra word
])
def test_check_faithful(answer: str, question: str, reason: str | None) -> None:
    assert check_faithful(answer, question, FAITH_SOURCE) == reason


def test_check_faithful_strict_allows_no_word_beyond_source_and_question() -> None:
    question = "What does the Halvane library hold?"
    assert check_faithful("It holds 4,860 lovely seed varieties.", question, FAITH_SOURCE, strict=True) == (
        "unsupported_words")
    assert check_faithful("It holds 4,860 seed varieties.", question, FAITH_SOURCE, strict=True) is None
    # words of the question are allowed too
    assert check_faithful("It holds seed varieties, the collection.", "What collection does the Halvane library "
                          "hold?", FAITH_SOURCE, strict=True) is None
    # a negation the source itself states is no addition
    assert check_faithful("No variety was lost.", "What was lost?", "No variety was lost.", strict=True) is None
