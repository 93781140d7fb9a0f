"""The three pipelines as units of work: each unit asks the teacher, checks, and returns candidate records.

A candidate record is a dict: {"id", "passed": [blocks], "drop": [block, reason] | None, "sample": {...} | None}.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from seedlab.backends import Backend
from seedlab.errors import SeedlabError
from seedlab.judge import judging
from seedlab.sdg import _verify as verify
from seedlab.sdg._chunk import Fact
from seedlab.sdg._templates import TemplateSet
from seedlab.taxonomy import KnowledgeLeaf, SkillLeaf

Record = dict[str, Any]
JUDGE_VOTES = 3  # judge samples per item; the median vote decides
# Knowledge samples train on their answers only, as skills do. Loss on the questions too was the first default;
# answers only at the knowledge phase's learning rate 2e-3 learned 14.5 points more of the example document's
# reworded held-out questions and 16.6 more of orsk-ferry's (two seeds each; README, Synthetic data).
KNOWLEDGE_UNMASK = False
KNOWLEDGE_PROVENANCE = ("fact", "document", "chunk", "section")  # what a derived sample keeps of its original


@dataclass
class LeafJob:
    """Everything one leaf's units need."""

    leaf: SkillLeaf | KnowledgeLeaf
    slug: str
    teacher: Backend
    templates: TemplateSet
    pipeline: str  # "full" or "simple" (no judges)
    threshold: int
    seed: int
    provenance: dict[str, Any]
    facts: list[Fact] = field(default_factory=list)  # knowledge only
    anchors: set[str] = field(default_factory=set)  # knowledge only: words that name the subject
    title: str = ""
    facts_left_out: int = 0  # knowledge only: facts a budget or --max-facts left out
    judge: judging.Judge | None = None  # eval.judge when set (a `judge train` judge, say); else the teacher judges

    @property
    def judging(self) -> Backend:
        """The chat model behind a generative judge, which SDG asks with its own templates and votes."""
        return self.judge.backend if isinstance(self.judge, judging.GenerativeJudge) else self.teacher

    @property
    def scalar(self) -> bool:
        return isinstance(self.judge, judging.ScalarJudge)


def unit_seed(job: LeafJob, unit_id: str) -> int:
    """A seed derived from the unit id, so a rerun of a unit asks exactly the same."""
    return (job.seed + int(hashlib.sha256(unit_id.encode()).hexdigest()[:8], 16)) % (2**31)


class _Candidate:
    def __init__(self, cid: str) -> None:
        self.record: Record = {"id": cid, "passed": [], "drop": None, "sample": None}

    def passed(self, block: str) -> None:
        self.record["passed"].append(block)

    def drop(self, block: str, reason: str) -> Record:
        self.record["drop"] = [block, reason]
        return self.record

    def check(self, block: str, reason: str | None, records: list[Record]) -> bool:
        """Record passing `block` (reason None) or being dropped there; True when it passed."""
        if reason:
            records.append(self.drop(block, reason))
            return False
        self.passed(block)
        return True

    @property
    def alive(self) -> bool:
        return self.record["drop"] is None


def _sample(job: LeafJob, messages: list[dict[str, str]], extra: dict[str, Any]) -> dict[str, Any]:
    return {"messages": messages, "metadata": {**job.provenance, **extra}}


# --- skills ----------------------------------------------------------------------------------------------------


@dataclass
class _Item:
    """One candidate on its way through a skill unit."""

    candidate: _Candidate
    context: str | None  # grounded skills only
    request: str = ""
    answer: str = ""
    judge: dict[str, Any] | None = None  # the judges' verdict and rating (full pipeline)


@dataclass
class _SkillUnit:
    """What every step of one skill unit reads, and the records of the candidates it dropped."""

    job: LeafJob
    uid: str
    anchor: int  # the seed example the unit's few-shot examples start from
    shots: list[Any]
    seed: int
    per_call: int
    records: list[Record] = field(default_factory=list)

    @property
    def leaf(self) -> SkillLeaf:
        assert isinstance(self.job.leaf, SkillLeaf)
        return self.job.leaf

    @property
    def task(self) -> str:
        return self.leaf.task_description

    def keep(self, item: _Item, block: str, reason: str | None) -> bool:
        return item.candidate.check(block, reason, self.records)


SkillStep = Callable[[_SkillUnit, list[_Item]], list[_Item]]


def _write_requests(unit: _SkillUnit, _items: list[_Item]) -> list[_Item]:
    """New requests from few-shot seeds; grounded skills first get new contexts, then one request about each."""
    job, task = unit.job, unit.task
    if unit.leaf.kind != "grounded_skill":
        request = job.templates["skill_question"].completion([{"question": s.question} for s in unit.shots],
                                                             {"task": task}, unit.per_call, unit.seed)
        texts = job.teacher.complete([request])[0].texts
        return [_Item(_Candidate(f"{unit.uid}.{j}"), None, verify.clean(t)) for j, t in enumerate(texts)]
    seed_contexts = [s.context or "" for s in unit.leaf.seeds]
    ctx_request = job.templates["context"].completion([{"context": s.context or ""} for s in unit.shots],
                                                      {"task": task}, unit.per_call, unit.seed)
    items = []
    for j, text in enumerate(job.teacher.complete([ctx_request])[0].texts):
        item = _Item(_Candidate(f"{unit.uid}.{j}"), verify.clean(text))
        if unit.keep(item, "contexts", verify.check_context(item.context or "", seed_contexts)):
            items.append(item)
    template = job.templates["grounded_question"]
    shown = [{"context": s.context or "", "question": s.question} for s in unit.shots]
    asks = [template.completion(shown, {"task": task, "context": i.context or ""}, 1, unit.seed + 1) for i in items]
    for item, result in zip(items, job.teacher.complete(asks) if asks else [], strict=True):
        item.request = verify.clean(result.texts[0])
    return items


def _check_requests(unit: _SkillUnit, items: list[_Item]) -> list[_Item]:
    """Requests that are present, short enough, label-free and no copy of a seed (grounded ones may repeat)."""
    seeds = [] if unit.leaf.kind == "grounded_skill" else [s.question for s in unit.leaf.seeds]
    return [i for i in items if unit.keep(i, "questions", verify.check_request(i.request, seeds))]


def _judge_requests(unit: _SkillUnit, items: list[_Item]) -> list[_Item]:
    """The judge's 0/1 verdict on each request, the median of JUDGE_VOTES samples."""
    template = unit.job.templates["question_judge"]
    requests = [template.chat([], {"task": unit.task, "question": _user_turn(i.context, i.request)}, JUDGE_VOTES,
                              unit.seed + 2, judging.VERDICT_SCHEMA) for i in items]
    results = unit.job.judging.complete(requests) if requests else []
    kept = []
    for item, result in zip(items, results, strict=True):
        verdict = judging.vote([judging.parse_verdict(t) for t in result.texts])
        reason = "judge_unparseable" if verdict is None else "judge_rejected" if verdict == 0 else None
        if unit.keep(item, "question_judge", reason):
            item.judge = {"question_verdict": 1}
            kept.append(item)
    return kept


def _answer(unit: _SkillUnit, items: list[_Item]) -> list[_Item]:
    """The teacher answers each request in the style of the seed answers; cut-off or echoed answers drop."""
    template = unit.job.templates["answer"]
    examples = [(_user_turn(s.context, s.question), s.answer) for s in unit.leaf.seeds[:5]]
    requests = [template.chat(examples, {"task": unit.task, "question": _user_turn(i.context, i.request)}, 1,
                              unit.seed + 3) for i in items]
    kept = []
    for item, result in zip(items, unit.job.teacher.complete(requests) if requests else [], strict=True):
        item.answer = verify.clean(result.texts[0])
        finish = (result.finish_reasons or [""])[0]
        if unit.keep(item, "answers", verify.check_answer(item.answer, item.request, finish)):
            kept.append(item)
    return kept


def _rate_answers(unit: _SkillUnit, items: list[_Item]) -> list[_Item]:
    """The judge's 1-3 rating of each pair, the median of JUDGE_VOTES samples; below the threshold drops."""
    template = unit.job.templates["pair_judge"]
    requests = [template.chat([], {"task": unit.task, "question": _user_turn(i.context, i.request),
                                   "answer": i.answer}, JUDGE_VOTES, unit.seed + 4, judging.RATING_SCHEMA)
                for i in items]
    kept = []
    for item, result in zip(items, unit.job.judging.complete(requests) if requests else [], strict=True):
        rating = judging.median_rating([judging.parse_rating(t) for t in result.texts])
        reason = ("judge_unparseable" if rating is None else
                  f"rated_{rating[0]}" if rating[0] < unit.job.threshold else None)
        if unit.keep(item, "pair_judge", reason):
            assert rating is not None and item.judge is not None
            item.judge.update(rating=rating[0], reason=rating[1])
            kept.append(item)
    return kept


def _score_answers(unit: _SkillUnit, items: list[_Item]) -> list[_Item]:
    """A scalar judge's score of each pair, rated 1-3 by its calibrated thresholds; below the threshold drops.
    (A scalar judge scores answers, not requests, so it has no question step.)"""
    judge = unit.job.judge
    assert isinstance(judge, judging.ScalarJudge)
    scores = judge.score([(_user_turn(i.context, i.request), i.answer) for i in items]) if items else []
    kept = []
    for item, score in zip(items, scores, strict=True):
        rating = judge.rating(score)
        if unit.keep(item, "pair_judge", f"rated_{rating}" if rating < unit.job.threshold else None):
            item.judge = {"rating": rating, "score": round(score, 4), "judge": judge.model_id, "kind": judge.kind}
            kept.append(item)
    return kept


# The simple pipeline is the full one without its two judges; with a scalar judge, the full one rates answers only.
SKILL_STEPS: dict[str, tuple[SkillStep, ...]] = {
    "full": (_write_requests, _check_requests, _judge_requests, _answer, _rate_answers),
    "full-scalar": (_write_requests, _check_requests, _answer, _score_answers),
    "simple": (_write_requests, _check_requests, _answer),
}


def skill_unit(job: LeafJob, unit: int, per_call: int) -> list[Record]:
    """One unit of a skill leaf: the pipeline's steps in order, then a sample from each surviving candidate."""
    seeds = job.leaf.seeds
    anchor, index = unit % len(seeds), unit // len(seeds)
    uid = f"{job.slug}#s{anchor}#{index}"
    shots = [seeds[(anchor + k) % len(seeds)] for k in range(min(3, len(seeds)))]
    state = _SkillUnit(job, uid, anchor, shots, unit_seed(job, uid), per_call)
    items: list[_Item] = []
    for step in SKILL_STEPS[f"{job.pipeline}-scalar" if job.pipeline == "full" and job.scalar else job.pipeline]:
        items = step(state, items)
    for item in items:
        messages = [{"role": "user", "content": _user_turn(item.context, item.request)},
                    {"role": "assistant", "content": item.answer}]
        extra = {"source": "generated", "unmask": False, "seed_index": anchor, "judge": item.judge}
        if item.context:
            extra["context"] = item.context
        item.candidate.record["sample"] = _sample(job, messages, extra)
        state.records.append(item.candidate.record)
    return state.records


def _user_turn(context: str | None, request: str) -> str:
    return f"{context.strip()}\n\n{request}" if context else request


def skill_seed_samples(job: LeafJob) -> list[dict[str, Any]]:
    """The contributor's own examples, as training samples."""
    leaf = job.leaf
    assert isinstance(leaf, SkillLeaf)
    return [_sample(job, [{"role": "user", "content": _user_turn(s.context, s.question)},
                          {"role": "assistant", "content": s.answer}],
                    {"source": "seed", "unmask": False, "seed_index": i, "judge": None})
            for i, s in enumerate(leaf.seeds)]


# --- knowledge -------------------------------------------------------------------------------------------------


def knowledge_examples(leaf: KnowledgeLeaf) -> list[dict[str, str]]:
    """Few-shot (fact, question, answer) triples: each seed pair with the seed-context sentence it rests on."""
    from seedlab.text import content_words, split_sentences

    examples = []
    for seed in leaf.seeds:
        sentences = split_sentences(seed.context) or [seed.context.strip()]
        for qa in seed.qna:
            asked = content_words(qa.question + " " + qa.answer)
            fact = max(sentences, key=lambda s: len(asked & content_words(s)))
            examples.append({"fact": fact, "question": qa.question.strip(), "answer": qa.answer.strip()})
    return examples


def knowledge_unit(job: LeafJob, fact_index: int, round_: int, per_call: int,
                   examples: list[dict[str, str]]) -> list[Record]:
    """One fact of a document: questions that it answers -> standalone -> relevancy -> answer -> faithfulness."""
    fact = job.facts[fact_index]
    uid = f"{job.slug}#f{fact_index}#r{round_}"
    seed = unit_seed(job, uid)
    shots = [examples[(fact_index + k) % len(examples)] for k in range(min(3, len(examples)))]
    target = {"title": fact.subject or job.title, "fact": fact.text}
    q_request = job.templates["knowledge_question"].completion(shots, target, per_call, seed)
    sentences = [f.text for f in job.facts]
    records: list[Record] = []
    answering: list[tuple[_Candidate, str]] = []
    for j, text in enumerate(job.teacher.complete([q_request])[0].texts):
        candidate = _Candidate(f"{uid}.{j}")
        question = verify.clean(text)
        if not candidate.check("standalone", verify.check_standalone(question, job.anchors), records):
            continue
        relevant = verify.check_relevant(question, fact_index, sentences, fact.chunk, target["title"])
        if not candidate.check("relevancy", relevant, records):
            continue
        answering.append((candidate, question))

    answer_template = job.templates["knowledge_answer"]
    requests = [answer_template.completion(shots, {**target, "question": q}, 2, seed + 1) for _, q in answering]
    results = job.teacher.complete(requests) if requests else []
    for (candidate, question), result in zip(answering, results, strict=True):
        # The first of two sampled answers that states only what the fact itself says; failing both,
        # the fact sentence (with the one before it when it opens with a pronoun) is the answer.
        answer, answer_source = None, "fact"
        for text in result.texts:
            if verify.check_faithful(verify.clean(text), question, fact.text, strict=True) is None:
                answer, answer_source = verify.clean(text), "teacher"
                break
        answer = answer or fact.standalone
        if not candidate.check("faithfulness", verify.check_faithful(answer, question, fact.chunk), records):
            continue
        checks = {"standalone": True, "relevancy": True, "faithfulness": True, "answer_source": answer_source}
        candidate.record["sample"] = _sample(
            job, [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
            {"source": "generated", "unmask": KNOWLEDGE_UNMASK, "checks": checks, "fact": fact.text,
             "document": fact.path, "chunk": fact.chunk_index, "section": list(fact.section)})
        records.append(candidate.record)
    return records


def knowledge_rephrase_unit(job: LeafJob, fact_index: int, asked: list[dict[str, Any]], per_question: int
                            ) -> list[Record]:
    """The accepted teacher questions of one fact, each asked again in other words by the teacher, with the same
    answer: a new wording must still read on its own and differ from the question it rewords."""
    template = job.templates.templates.get("knowledge_rephrase")
    if template is None:
        raise SeedlabError(f"template set {job.templates.name!r} has no knowledge_rephrase template; add one or "
                           "set sdg.rephrase_per_question: 0")
    uid = f"{job.slug}#p{fact_index}"
    seed = unit_seed(job, uid)
    requests = [template.completion([], {"question": s["messages"][0]["content"]}, per_question, seed + k)
                for k, s in enumerate(asked)]
    records: list[Record] = []
    for k, (sample, result) in enumerate(zip(asked, job.teacher.complete(requests), strict=True)):
        original = sample["messages"][0]["content"]
        for j, text in enumerate(result.texts):
            candidate = _Candidate(f"{uid}.{k}.{j}")
            question = verify.clean(text)
            if not candidate.check("rephrase", verify.check_rewording(question, original), records):
                continue
            if not candidate.check("standalone", verify.check_standalone(question, job.anchors), records):
                continue
            meta = {key: value for key, value in sample["metadata"].items() if key in KNOWLEDGE_PROVENANCE}
            candidate.record["sample"] = _sample(
                job, [{"role": "user", "content": question}, sample["messages"][1]],
                {**meta, "source": "rephrased", "unmask": KNOWLEDGE_UNMASK, "rephrases": original})
            records.append(candidate.record)
    return records


def knowledge_extra_samples(job: LeafJob, chunks: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """The seed pairs and the document itself (one sample per chunk), so the student reads the source too."""
    leaf = job.leaf
    assert isinstance(leaf, KnowledgeLeaf)
    out = []
    for i, seed in enumerate(leaf.seeds):
        for qa in seed.qna:
            out.append(_sample(job, [{"role": "user", "content": qa.question.strip()},
                                     {"role": "assistant", "content": qa.answer.strip()}],
                               {"source": "seed", "unmask": KNOWLEDGE_UNMASK, "seed_index": i}))
    for path, chunk in chunks:
        prompt = f"What does the document about {job.title} say?" if job.title else "What does the document say?"
        out.append(_sample(job, [{"role": "user", "content": prompt}, {"role": "assistant", "content": chunk}],
                           {"source": "document", "unmask": KNOWLEDGE_UNMASK, "document": path}))
    return out


# Questions that cue one fact by a phrase of its sentence, in rotating forms; the answer is the sentence.
RECALL_FORMS = ("What does {title} have to do with {cue}?", "Tell me about the {cue} of {title}.",
                "What is known about {cue} at {title}?")


def knowledge_recall_samples(job: LeafJob, per_fact: int) -> list[dict[str, Any]]:
    """Teacher-free questions for every fact, so no fact goes unasked even when the teacher writes nothing
    usable for it: each names the subject and a phrase of the sentence, and is answered by the sentence."""
    from seedlab.text import content_words, cue_phrases

    out = []
    for i, fact in enumerate(job.facts):
        subject = fact.subject or job.title
        title = subject[0].lower() + subject[1:] if subject.startswith("The ") else subject
        common = content_words(subject) | content_words(job.title)
        for k, cue in enumerate(cue_phrases(fact.text, common, per_fact)):
            question = RECALL_FORMS[(i + k) % len(RECALL_FORMS)].format(title=title, cue=cue)
            out.append(_sample(job, [{"role": "user", "content": question[0].upper() + question[1:]},
                                     {"role": "assistant", "content": fact.standalone}],
                               {"source": "recall", "unmask": KNOWLEDGE_UNMASK, "fact": fact.text,
                                "document": fact.path, "chunk": fact.chunk_index, "cue": cue,
                                "section": list(fact.section)}))
    return out


def knowledge_span_samples(job: LeafJob, per_fact: int) -> list[dict[str, Any]]:
    """Teacher-free questions that ask for one name, date or quantity of a sentence, answered by that alone:
    the short direct answers beside the recall questions' whole sentences (see seedlab.text.answer_spans)."""
    from seedlab.text import answer_spans, content_words

    out: list[dict[str, Any]] = []
    if per_fact < 1:
        return out
    for fact in job.facts:
        subject = fact.subject or job.title
        common = content_words(subject) | content_words(job.title)
        before = fact.standalone[:len(fact.standalone) - len(fact.text)].strip()  # the sentence a pronoun needs
        for question, answer in answer_spans(fact.text, common, per_fact, subject):
            if before and not question.startswith(subject):
                question = f"{before} {question}"
            out.append(_sample(job, [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
                               {"source": "span", "unmask": KNOWLEDGE_UNMASK, "fact": fact.text, "document": fact.path,
                                "chunk": fact.chunk_index, "section": list(fact.section)}))
    return out


def plan_units(target: int, accepted: int, candidates: int, per_call: int, round_: int,
               first_yield: float = 0.35) -> int:
    """How many more units a round needs to reach `target`, from the yield seen so far."""
    needed = target - accepted
    if needed <= 0:
        return 0
    rate = accepted / candidates if candidates else first_yield
    return max(1, math.ceil(needed / max(rate, 0.05) / per_call))


Unit = Callable[[], list[Record]]
