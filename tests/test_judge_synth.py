"""The self-taught evaluator's data on FakeBackend: pair synthesis, verdict sampling in both orders, selection of
correct traces (malformed verdicts never count) and the balance of "A is better" against "B is better"."""

from __future__ import annotations

from collections import Counter

from seedlab.backends import FakeBackend, Request
from seedlab.judge._synth import (
    SynthPair,
    Trace,
    Verdicts,
    clean_modified,
    correct_options,
    sample_verdicts,
    select_traces,
    synthesize,
)
from seedlab.judge.judging import PAIR_SCHEMA, parse_pair_verdict


def _teacher(request: Request, _index: int) -> str:
    if request.prompt is not None:  # the few-shot completion that asks for x'
        asked = request.prompt.rsplit("Request: ", 1)[1].split("\n")[0]
        return {"Give three tips for sleeping better.": "New request: Give three tips for waking up early.",
                "Name a red fruit.": "Name a red fruit.",  # the same request: unusable
                "Describe a volcano.": ""}.get(asked, "Write a song about cats.")
    return f"An answer to: {(request.messages or [])[-1]['content']}"


def test_synthesis_writes_modified_instructions_and_both_responses() -> None:
    teacher = FakeBackend(_teacher)
    pairs, dropped = synthesize(teacher, ["Give three tips for sleeping better.", "Name a red fruit.",
                                          "Describe a volcano.", "Write a poem."], answer_tokens=32)
    assert pairs == [
        SynthPair("Give three tips for sleeping better.", "An answer to: Give three tips for sleeping better.",
                  "An answer to: Give three tips for waking up early.", "Give three tips for waking up early."),
        SynthPair("Write a poem.", "An answer to: Write a poem.", "An answer to: Write a song about cats.",
                  "Write a song about cats."),
    ]
    assert dropped == {"modified": 2, "answers": 0}
    answers = [r for r in teacher.requests if r.messages is not None]
    assert {r.max_tokens for r in answers} == {32} and {r.temperature for r in answers} == {0.0}


def test_equal_or_empty_responses_drop_the_pair() -> None:
    teacher = FakeBackend(lambda r, _i: "Name a fish." if r.prompt is not None else "Always the same answer.")
    pairs, dropped = synthesize(teacher, ["Name a bird."], answer_tokens=16)
    assert pairs == [] and dropped == {"modified": 0, "answers": 1}


def test_an_unusable_modification_is_asked_again_with_another_seed() -> None:
    replies = iter(["Name a bird!", "A bird is a sparrow.", "Name a fish."])
    teacher = FakeBackend(lambda r, _i: next(replies) if r.prompt is not None
                          else f"About {(r.messages or [])[-1]['content']}")
    pairs, dropped = synthesize(teacher, ["Name a bird."], answer_tokens=16)
    assert [p.modified for p in pairs] == ["Name a fish."] and dropped == {"modified": 0, "answers": 0}
    seeds = [r.seed for r in teacher.requests if r.prompt is not None]
    assert len(seeds) == 3 and len(set(seeds)) == 3


def test_clean_modified_keeps_a_different_request_of_the_same_form() -> None:
    assert clean_modified('Request: "List two rivers."\nAnd more text', "List two lakes.") == "List two rivers."
    assert clean_modified("List two lakes!", "List two lakes.") is None  # the same request
    assert clean_modified("How do you change a flat tyre?", "How do I change a flat tyre?") is None  # paraphrase
    assert clean_modified("Three animals of a pond: a frog.", "List three animals of a pond.") is None  # an answer
    assert clean_modified("Hi", "List two lakes.") is None
    assert clean_modified("   \n  ", "List two lakes.") is None


PAIR = SynthPair("Q?", "good", "bad", "Q'?")


def test_verdicts_are_sampled_half_in_each_order() -> None:
    judge = FakeBackend(lambda r, i: f"sample {i} [[A]]")
    [verdicts] = sample_verdicts(judge, [PAIR], samples=4, temperature=0.8, max_tokens=50)
    first, second = judge.requests
    assert (first.n, second.n, first.temperature, first.max_tokens) == (2, 2, 0.8, 50)
    assert first.json_schema == second.json_schema == PAIR_SCHEMA  # the verdict's form is constrained
    assert "[Answer A]\ngood" in (first.messages or [])[-1]["content"]
    assert "[Answer A]\nbad" in (second.messages or [])[-1]["content"]
    assert verdicts.first == ["sample 0 [[A]]", "sample 1 [[A]]"] and len(verdicts.second) == 2


def test_only_verdicts_that_pick_the_chosen_answer_count_and_malformed_ones_never_do() -> None:
    v = Verdicts(PAIR, first=["good is right [[A]] and more", "[[A]] or [[B]]", "no verdict", "[[B]]"],
                 second=["[[A]]", "[A]", "B is right [[B]]"])
    assert correct_options(v) == {"A": ["good is right [[A]]"], "B": ["B is right [[B]]"]}


def _pair(k: int) -> SynthPair:
    return SynthPair(f"Q{k}?", f"good {k}", f"bad {k}", f"Q{k}'?")


def test_selection_keeps_one_correct_trace_per_pair_balanced_between_a_and_b() -> None:
    verdicts = ([Verdicts(_pair(k), ["[[A]]"], ["[[A]]"]) for k in range(6)]  # correct only as A
                + [Verdicts(_pair(k), ["[[B]]"], ["[[B]]"]) for k in range(6, 8)]  # correct only as B
                + [Verdicts(_pair(k), ["[[A]]"], ["[[B]]"]) for k in range(8, 11)]  # correct in both orders
                + [Verdicts(_pair(k), ["[[B]]", "nothing"], ["[[A]]"]) for k in range(11, 13)])  # never correct
    traces, stats = select_traces(verdicts, seed=3)
    labels = Counter(t.label for t in traces)
    assert labels["A"] == labels["B"] == 5  # the three flexible pairs all went to B, then A was cut to 5
    assert stats == {"pairs": 13, "no_correct": 2, "correct": 11, "kept": 10, "dropped_to_balance": 1}
    assert len({t.prompt for t in traces}) == len(traces)  # one trace per pair
    for t in traces:
        k = int(t.prompt[1:-1])
        assert (t.a, t.b) == ((f"good {k}", f"bad {k}") if t.label == "A" else (f"bad {k}", f"good {k}"))
        assert parse_pair_verdict(t.text) == t.label


def test_selection_is_reproducible_and_changes_with_the_seed() -> None:
    verdicts = [Verdicts(_pair(k), [f"a{k} [[A]]", f"A again {k} [[A]]"], [f"b{k} [[B]]"]) for k in range(20)]
    first, _ = select_traces(verdicts, seed=1)
    assert first == select_traces(verdicts, seed=1)[0]
    assert first != select_traces(verdicts, seed=2)[0]
    assert Counter(t.label for t in first) == {"A": 10, "B": 10}


def test_a_trace_becomes_a_chat_sample_with_the_reply_as_the_assistant_turn() -> None:
    sample = Trace("Q?", "bad", "good", "A is off topic. [[B]]", "B").sample()
    roles = [m["role"] for m in sample["messages"]]
    assert roles == ["system", "user", "assistant"]
    assert sample["messages"][-1]["content"] == "A is off topic. [[B]]"
    assert "[Answer A]\nbad" in sample["messages"][1]["content"]


def test_a_limit_caps_the_kept_traces_and_keeps_them_balanced() -> None:
    verdicts = [Verdicts(_pair(k), ["[[A]]"], ["[[B]]"]) for k in range(30)]
    traces, stats = select_traces(verdicts, seed=0, limit=9)
    assert Counter(t.label for t in traces) == {"A": 4, "B": 4} and stats["kept"] == 8
