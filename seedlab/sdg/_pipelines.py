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
from seedlab.sdg import _verify as verify
from seedlab.sdg._chunk import Fact
from seedlab.sdg._templates import TemplateSet
from seedlab.taxonomy import KnowledgeLeaf, SkillLeaf

Record = dict[str, Any]
JUDGE_VOTES = 3  # judge samples per item; the median vote decides


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
    judge: Backend | None = None  # eval.judge when set (a `judge train` judge, say); else the teacher judges

    @property
    def judging(self) -> Backend:
        return self.judge or self.teacher


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


def skill_unit(job: LeafJob, unit: int, per_call: int) -> list[Record]:
    """One unit of a skill leaf: new requests (and contexts, when grounded) -> judges -> answers -> judge."""
    leaf = job.leaf
    assert isinstance(leaf, SkillLeaf)
    seeds = leaf.seeds
    anchor, index = unit % len(seeds), unit // len(seeds)
    uid = f"{job.slug}#s{anchor}#{index}"
    shots = [seeds[(anchor + k) % len(seeds)] for k in range(min(3, len(seeds)))]
    task = leaf.task_description
    grounded = leaf.kind == "grounded_skill"
    seed = unit_seed(job, uid)

    pending: list[tuple[_Candidate, str | None, str]] = []  # candidate, context, request
    records: list[Record] = []
    seed_contexts = [s.context or "" for s in seeds]
    seed_requests = [] if grounded else [s.question for s in seeds]  # grounded requests may repeat
    if grounded:  # per_call new contexts, one request about each
        ctx_request = job.templates["context"].completion([{"context": s.context or ""} for s in shots],
                                                          {"task": task}, per_call, seed)
        contexts = []
        for j, text in enumerate(job.teacher.complete([ctx_request])[0].texts):
            candidate, new_context = _Candidate(f"{uid}.{j}"), verify.clean(text)
            if not candidate.check("contexts", verify.check_context(new_context, seed_contexts), records):
                continue
            contexts.append((candidate, new_context))
        template = job.templates["grounded_question"]
        shown = [{"context": s.context or "", "question": s.question} for s in shots]
        asks = [template.completion(shown, {"task": task, "context": c}, 1, seed + 1) for _, c in contexts]
        results = job.teacher.complete(asks) if asks else []
        pending = [(cand, c, verify.clean(r.texts[0])) for (cand, c), r in zip(contexts, results, strict=True)]
    else:
        q_request = job.templates["skill_question"].completion([{"question": s.question} for s in shots],
                                                               {"task": task}, per_call, seed)
        texts = job.teacher.complete([q_request])[0].texts
        pending += [(_Candidate(f"{uid}.{j}"), None, verify.clean(t)) for j, t in enumerate(texts)]

    alive: list[tuple[_Candidate, str | None, str]] = []
    for candidate, context, request in pending:
        if not candidate.check("questions", verify.check_request(request, seed_requests), records):
            continue
        alive.append((candidate, context, request))

    verdicts: list[int | None] = [1] * len(alive)
    if job.pipeline == "full" and alive:
        judge = job.templates["question_judge"]
        requests = [judge.chat([], {"task": task, "question": _user_turn(c, r)}, JUDGE_VOTES, seed + 2,
                               verify.VERDICT_SCHEMA) for _, c, r in alive]
        verdicts = [verify.vote([verify.parse_verdict(t) for t in res.texts])
                    for res in job.judging.complete(requests)]
    answering = []
    for (candidate, context, request), verdict in zip(alive, verdicts, strict=True):
        if verdict is None:
            records.append(candidate.drop("question_judge", "judge_unparseable"))
        elif verdict == 0:
            records.append(candidate.drop("question_judge", "judge_rejected"))
        else:
            if job.pipeline == "full":
                candidate.passed("question_judge")
            answering.append((candidate, context, request))

    answer_template = job.templates["answer"]
    examples = [(_user_turn(s.context, s.question), s.answer) for s in seeds[:5]]
    requests = [answer_template.chat(examples, {"task": task, "question": _user_turn(c, r)}, 1, seed + 3)
                for _, c, r in answering]
    results = job.teacher.complete(requests) if requests else []
    judging = []
    for (candidate, context, request), result in zip(answering, results, strict=True):
        answer = verify.clean(result.texts[0])
        finish = (result.finish_reasons or [""])[0]
        if not candidate.check("answers", verify.check_answer(answer, request, finish), records):
            continue
        judging.append((candidate, context, request, answer))

    ratings: list[tuple[int, str] | None] = [None] * len(judging)
    if job.pipeline == "full" and judging:
        judge = job.templates["pair_judge"]
        requests = [judge.chat([], {"task": task, "question": _user_turn(c, r), "answer": a}, JUDGE_VOTES,
                               seed + 4, verify.RATING_SCHEMA) for _, c, r, a in judging]
        ratings = [verify.median_rating([verify.parse_rating(t) for t in res.texts])
                   for res in job.judging.complete(requests)]
    for (candidate, context, request, answer), rating in zip(judging, ratings, strict=True):
        judge_meta: dict[str, Any] = {"question_verdict": 1}
        if job.pipeline == "full":
            if rating is None:
                records.append(candidate.drop("pair_judge", "judge_unparseable"))
                continue
            if rating[0] < job.threshold:
                records.append(candidate.drop("pair_judge", f"rated_{rating[0]}"))
                continue
            candidate.passed("pair_judge")
            judge_meta.update(rating=rating[0], reason=rating[1])
        messages = [{"role": "user", "content": _user_turn(context, request)}, {"role": "assistant", "content": answer}]
        extra = {"source": "generated", "unmask": False, "seed_index": anchor,
                 "judge": judge_meta if job.pipeline == "full" else None}
        if context:
            extra["context"] = context
        candidate.record["sample"] = _sample(job, messages, extra)
        records.append(candidate.record)
    return records


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
    from seedlab.sdg._text import content_words, split_sentences

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
    target = {"title": job.title, "fact": fact.text}
    q_request = job.templates["knowledge_question"].completion(shots, target, per_call, seed)
    sentences = [f.text for f in job.facts]
    records: list[Record] = []
    answering: list[tuple[_Candidate, str]] = []
    for j, text in enumerate(job.teacher.complete([q_request])[0].texts):
        candidate = _Candidate(f"{uid}.{j}")
        question = verify.clean(text)
        if not candidate.check("standalone", verify.check_standalone(question, job.anchors), records):
            continue
        relevant = verify.check_relevant(question, fact_index, sentences, fact.chunk, job.title)
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
            {"source": "generated", "unmask": True, "checks": checks, "fact": fact.text, "document": fact.path,
             "chunk": fact.chunk_index})
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
                               {"source": "seed", "unmask": True, "seed_index": i}))
    for path, chunk in chunks:
        prompt = f"What does the document about {job.title} say?" if job.title else "What does the document say?"
        out.append(_sample(job, [{"role": "user", "content": prompt}, {"role": "assistant", "content": chunk}],
                           {"source": "document", "unmask": True, "document": path}))
    return out


# Questions that cue one fact by a phrase of its sentence, in rotating forms; the answer is the sentence.
RECALL_FORMS = ("What does {title} have to do with {cue}?", "Tell me about the {cue} of {title}.",
                "What is known about {cue} at {title}?")


def knowledge_recall_samples(job: LeafJob, per_fact: int) -> list[dict[str, Any]]:
    """Teacher-free questions for every fact, so no fact goes unasked even when the teacher writes nothing
    usable for it: each names the subject and a phrase of the sentence, and is answered by the sentence."""
    from seedlab.sdg._text import content_words, cue_phrases

    title = job.title[0].lower() + job.title[1:] if job.title.startswith("The ") else job.title
    common = content_words(job.title)
    out = []
    for i, fact in enumerate(job.facts):
        for k, cue in enumerate(cue_phrases(fact.text, common, per_fact)):
            question = RECALL_FORMS[(i + k) % len(RECALL_FORMS)].format(title=title, cue=cue)
            out.append(_sample(job, [{"role": "user", "content": question[0].upper() + question[1:]},
                                     {"role": "assistant", "content": fact.standalone}],
                               {"source": "recall", "unmask": True, "fact": fact.text, "document": fact.path,
                                "chunk": fact.chunk_index, "cue": cue}))
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
