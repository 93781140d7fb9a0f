"""`seedlab data generate`: run every leaf's pipeline into a run directory, resumably, then mix the outputs."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import random
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from seedlab.backends import Backend, Request, Result
from seedlab.config import Settings
from seedlab.errors import SeedlabError
from seedlab.fsutil import new_run_dir, read_json_object, write_text_atomic
from seedlab.judge.judging import Judge, as_judge, judge_identity, open_judge
from seedlab.runs import Progress, finish_run, lock_run
from seedlab.sdg import _pipelines as pipelines
from seedlab.sdg._chunk import approximate_tokens, document_facts, document_title, fact_subject
from seedlab.sdg._estimate import LeafPlan, Rates, apply_budget, leaf_plan, measured_rates, spread_facts
from seedlab.sdg._stats import block_stats, dedupe, main_drop_reason
from seedlab.sdg._templates import TemplateSet, load_templates
from seedlab.taxonomy import KnowledgeLeaf, Leaf, SkillLeaf, changed_leaves, load_leaf
from seedlab.text import content_words, names

SDG_VERSION = 5  # bump when pipeline logic changes, so finished leaves are not reused across versions
KNOWLEDGE_OVERSAMPLE = 3  # candidates asked per wanted knowledge sample (about a third survive the checks)
KNOWLEDGE_MIN_PER_CALL = 4  # questions per fact and round at least: natural phrasings teach what scale 1 does not
SKILL_PER_CALL = 4  # requests sampled per generation call


@dataclass(frozen=True)
class GenerateOptions:
    """What one `data generate` invocation asks for (None: from config)."""

    taxonomy_base: str | None = None
    scale: int | None = None
    pipeline: str | None = None
    workers: int | None = None
    teacher: str | None = None
    endpoint_urls: tuple[str, ...] = ()  # OpenAI-compatible servers (several: requests spread over them)
    max_minutes: float | None = None  # a time budget: knowledge leaves' facts are capped to fit the estimate
    max_facts: int | None = None  # at most this many facts of each knowledge leaf, spread over its documents


@dataclass
class RunResult:
    """Where a run's outputs are and what it produced."""

    run_dir: Path
    stats: dict[str, Any]
    empty_leaves: list[tuple[str, str]] = field(default_factory=list)  # (leaf, main drop reason)


class CountingBackend:
    """Wraps a backend to count generated tokens and the time spent waiting on it."""

    _thread = threading.local()  # requests sent from this thread: a unit runs in one thread, so its own count

    @classmethod
    def thread_requests(cls) -> int:
        return int(getattr(cls._thread, "requests", 0))

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.completion_tokens = 0
        self.requests = 0  # requests sent, each asking for one or more samples
        self.seconds = 0.0
        self._lock = threading.Lock()

    def complete(self, requests: Sequence[Request]) -> list[Result]:
        start = time.perf_counter()
        results = self.inner.complete(requests)
        with self._lock:
            self.seconds += time.perf_counter() - start
            self.completion_tokens += sum(r.completion_tokens for r in results)
            self.requests += len(requests)
        CountingBackend._thread.requests = self.thread_requests() + len(requests)
        return results

    def stream(self, request: Request) -> Iterator[str]:
        return self.inner.stream(request)

    def close(self) -> None:
        self.inner.close()


@dataclass(frozen=True)
class _Plan:
    """A generate run's resolved settings: they enter the run's and every leaf's cache key."""

    scale: int
    pipeline: str  # full | simple
    threshold: int
    seed: int
    max_rounds: int
    replay_fraction: float
    recall_per_fact: int
    span_per_fact: int = 0
    rephrase_per_question: int = 0
    judge: dict[str, Any] | None = None  # the judge's identity when it is not the teacher
    fact_caps: dict[str, int] = field(default_factory=dict)  # leaf -> facts kept under a budget

    @classmethod
    def resolve(cls, settings: Settings, options: GenerateOptions) -> _Plan:
        sdg = settings.config.sdg
        scale = options.scale if options.scale is not None else sdg.scale
        pipeline = options.pipeline or sdg.pipeline
        if scale < 1:
            raise SeedlabError(f"--scale must be at least 1, got {scale}")
        if pipeline not in ("full", "simple"):
            raise SeedlabError(f"--pipeline must be full or simple, got {pipeline!r}")
        return cls(scale, pipeline, sdg.judge_threshold, sdg.seed, sdg.max_rounds, sdg.replay_fraction,
                   sdg.recall_per_fact, sdg.span_per_fact, sdg.rephrase_per_question)

    def key_data(self) -> dict[str, Any]:
        """The plan as it enters keys and run.json; without a judge when none is set, so earlier runs keep
        their keys."""
        data = dataclasses.asdict(self)
        if data["judge"] is None:
            del data["judge"]
        for optional in ("span_per_fact", "rephrase_per_question"):  # off: earlier runs keep their keys
            if not data[optional]:
                del data[optional]
        if not data["fact_caps"]:
            del data["fact_caps"]
        return data


def generate(settings: Settings, options: GenerateOptions, teacher: Backend | None = None,
             progress: Progress | None = None, judge: Judge | Backend | None = None,
             on_plan: Callable[[list[LeafPlan], Rates], None] | None = None) -> RunResult:
    """Generate training data for the changed leaves (all, with base 'empty') into a new or resumed run.

    The skills pipeline's judges are `judge`, else eval.judge when config sets one, else the teacher. Before any
    request, the planned work per leaf (with budget caps applied) goes to `on_plan`."""
    plan = _Plan.resolve(settings, options)
    taxonomy = settings.taxonomy_path
    diff = changed_leaves(taxonomy, options.taxonomy_base or settings.config.taxonomy.base)
    if not diff.files:
        raise SeedlabError(f"no new or changed leaves in {taxonomy} against {diff.base}; "
                           "use --taxonomy-base empty for the whole tree")
    leaves = [load_leaf(taxonomy, rel, settings.home.cache / "docs") for rel in diff.files]
    templates = load_templates(settings.config.sdg.templates)
    from seedlab.backends import endpoint_urls

    urls = endpoint_urls(settings, options.endpoint_urls)
    endpoint = bool(urls)
    identity = _teacher_identity(settings, options, urls)
    with contextlib.ExitStack() as owned:
        if teacher is None:
            from seedlab.backends import make_backend

            model = options.teacher if endpoint else identity["model"]
            teacher = make_backend(settings, model, urls)
            owned.callback(teacher.close)
        if endpoint:
            identity["model"] = teacher.model_id
        if judge is None and plan.pipeline == "full" and settings.config.eval.judge and not endpoint:
            plan = dataclasses.replace(plan, judge=judge_identity(settings))
            judge = open_judge(settings)
            owned.callback(judge.close)
        elif judge is not None:
            judge = as_judge(judge)
            kind = {} if judge.kind == "generative" else {"kind": judge.kind}  # earlier runs keep their keys
            plan = dataclasses.replace(plan, judge={"model": judge.model_id, **kind})
        # In-process, one unit at a time: its requests' samples still decode together (llama_cpp.sequences), and
        # units in parallel measured no faster on 2 cores while the order they reuse cached prompts in would vary.
        workers = options.workers or (settings.config.endpoint.concurrency if endpoint else 1)
        plans, rates = _estimate(settings, leaves, identity, templates, plan, options)
        plan = dataclasses.replace(plan, fact_caps={p.path: p.fact_cap for p in plans if p.fact_cap is not None})
        if on_plan is not None:
            on_plan(plans, rates)
        run = _open_run(settings.datasets_path, leaves, identity, templates, plan)
        job = _Generation(run, settings, CountingBackend(teacher), judge, templates, plan, identity, workers,
                          progress)
        return job.run(leaves)


def _estimate(settings: Settings, leaves: list[Leaf], identity: dict[str, Any], templates: TemplateSet,
              plan: _Plan, options: GenerateOptions) -> tuple[list[LeafPlan], Rates]:
    """Each leaf's planned requests and seconds (0 when an earlier run's samples are reused), budget applied."""
    if options.max_minutes is not None and options.max_minutes <= 0:
        raise SeedlabError(f"--max-minutes must be above 0, got {options.max_minutes}")
    if options.max_facts is not None and options.max_facts < 1:
        raise SeedlabError(f"--max-facts must be at least 1, got {options.max_facts}")
    rates = measured_rates(settings.datasets_path, str(identity.get("model")))
    sdg = settings.config.sdg
    plans = []
    for leaf in leaves:
        reused = _reusable(settings.datasets_path, Path(), leaf, _leaf_key(leaf, identity, templates, plan)) is not None
        if isinstance(leaf, KnowledgeLeaf):
            units = sum(len(document_facts(d.path, d.text, approximate_tokens, sdg.chunk_tokens, sdg.chunk_overlap)[1])
                        for d in leaf.documents)
        else:
            units = len(leaf.seeds)
        plans.append(leaf_plan(leaf.path, "knowledge" if isinstance(leaf, KnowledgeLeaf) else leaf.kind, units,
                               plan.scale, rates, reused))
    apply_budget(plans, rates, options.max_minutes, options.max_facts)
    return plans, rates


# --- the run directory -------------------------------------------------------------------------------------------


def _open_run(root: Path, leaves: list[Leaf], identity: dict[str, Any], templates: TemplateSet, plan: _Plan) -> Path:
    """Resume the newest unfinished run made by the same command, or start a new one."""
    key = _digest({"leaves": sorted(leaf.path for leaf in leaves), "teacher": identity,
                   "templates": _template_id(templates), "options": plan.key_data(), "version": SDG_VERSION})
    for run in sorted(root.glob("*/run.json"), reverse=True):
        info = read_json_object(run)
        if info.get("key") == key and info.get("status") != "finished":
            lock_run(run.parent, "data generate")  # a second `data generate` of the same run stops here
            return run.parent
    run_dir = new_run_dir(root)
    lock_run(run_dir, "data generate")
    info = {"id": run_dir.name, "created": datetime.now(UTC).isoformat(timespec="seconds"), "status": "running",
            "key": key, "options": plan.key_data(), "teacher": identity, "templates": _template_id(templates),
            "leaves": [leaf.path for leaf in leaves]}
    write_text_atomic(run_dir / "run.json", json.dumps(info, indent=2))
    return run_dir


@dataclass
class _Generation:
    """One generate run: where it writes, the models, and the plan every leaf follows."""

    run_dir: Path
    settings: Settings
    teacher: CountingBackend
    judge: Judge | None
    templates: TemplateSet
    plan: _Plan
    identity: dict[str, Any]  # the teacher's, as it enters keys and provenance
    workers: int
    progress: Progress | None

    def run(self, leaves: list[Leaf]) -> RunResult:
        stats: dict[str, Any] = {"leaves": {}, "teacher": self.identity, "templates": _template_id(self.templates)}
        for leaf in leaves:
            stats["leaves"][leaf.path] = self.leaf(leaf)
        stats["teacher_tokens"] = self.teacher.completion_tokens
        stats["teacher_seconds"] = round(self.teacher.seconds, 2)
        return _finish(self.run_dir, leaves, stats, self.plan)

    def leaf(self, leaf: Leaf) -> dict[str, Any]:
        """A leaf's samples: done earlier in this run, copied from an earlier run with the same key, or made."""
        key = _leaf_key(leaf, self.identity, self.templates, self.plan)
        folder = self.run_dir / "leaves" / _slug(leaf.path)
        done = read_json_object(folder / "done.json")
        if done.get("key") == key:
            return done["stats"]
        previous = _reusable(self.settings.datasets_path, self.run_dir, leaf, key)
        if previous is not None:
            return _reuse(previous, folder)
        folder.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        if read_json_object(folder / "leaf.json").get("key") != key:  # a journal holds the units of one version of
            (folder / "journal.jsonl").unlink(missing_ok=True)  # a leaf: one edited between a crash and the resume
            write_text_atomic(folder / "leaf.json", json.dumps({"leaf": leaf.path, "key": key}))  # starts afresh
        provenance = {"leaf": leaf.path, "leaf_kind": leaf.kind, "seed_blob": leaf.blob_id,
                      "taxonomy_commit": leaf.taxonomy_commit, "teacher": self.identity,
                      "pipeline": self.plan.pipeline, "templates": _template_id(self.templates),
                      "sdg_version": SDG_VERSION}
        job = pipelines.LeafJob(leaf, _slug(leaf.path), self.teacher, self.templates, self.plan.pipeline,
                                self.plan.threshold, self.plan.seed, provenance, judge=self.judge)
        journal = _Journal(folder / "journal.jsonl")
        report = partial(self.report, leaf.path)
        if isinstance(leaf, KnowledgeLeaf):
            samples, extra, seen = _run_knowledge(job, journal, self.settings, self.plan, self.workers, report)
        else:
            samples, extra, seen = _run_skill(job, journal, self.plan, self.workers, report)
        blocks = block_stats(journal.records())
        kept, dedupe_stats = dedupe(samples, seen)
        if samples:
            blocks["dedupe"] = dedupe_stats
        stats = {"kind": leaf.kind, "blocks": blocks, "samples": len(kept), "seed_and_document_samples": len(extra),
                 "reused": False, "teacher_requests": journal.requests(),  # a resumed leaf's earlier ones too
                 "seconds": round(time.monotonic() - started, 2), "scale": self.plan.scale}
        if isinstance(leaf, KnowledgeLeaf):
            stats |= {"facts": len(job.facts), "facts_left_out": job.facts_left_out}
        else:
            stats["seeds"] = len(leaf.seeds)
        write_text_atomic(folder / "samples.jsonl", "".join(json.dumps(s, ensure_ascii=False) + "\n"
                                                            for s in kept + extra))
        write_text_atomic(folder / "done.json", json.dumps({"key": key, "stats": stats}, indent=2))
        return stats

    def report(self, leaf: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(leaf, done, total)


def _reuse(previous: Path, folder: Path) -> dict[str, Any]:
    """Copy a finished leaf of an earlier run into this one, marked as reused."""
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(previous, folder)
    info = read_json_object(folder / "done.json")
    info["stats"]["reused"] = True
    info["stats"]["teacher_requests"] = 0  # in this run: the samples were written by the run named below
    info["stats"]["reused_from"] = previous.parent.parent.name
    write_text_atomic(folder / "done.json", json.dumps(info, indent=2))
    return dict(info["stats"])


Report = Callable[[int, int], None]  # (units done, units planned) of one leaf


def _run_skill(job: pipelines.LeafJob, journal: _Journal, plan: _Plan, workers: int,
               report: Report) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    leaf = job.leaf
    assert isinstance(leaf, SkillLeaf)
    target = plan.scale * len(leaf.seeds)
    extra = pipelines.skill_seed_samples(job)
    seen = [s["messages"][0]["content"] for s in extra]
    start = 0
    for round_ in range(plan.max_rounds):
        # Plan from earlier rounds only: a resumed run then plans exactly what an uninterrupted one did.
        accepted = len(dedupe(_samples(journal, round_), seen)[0])
        candidates = len(_records_before(journal, round_))
        count = pipelines.plan_units(target, accepted, candidates, SKILL_PER_CALL, round_)
        if count == 0:
            break
        count = min(count, 4 * target)  # a leaf the teacher cannot serve should not run forever
        units = {f"u{u}": partial(pipelines.skill_unit, job, u, SKILL_PER_CALL) for u in range(start, start + count)}
        _execute(units, journal, workers, round_, report)
        start += count
    return _samples(journal), extra, seen


def _run_knowledge(job: pipelines.LeafJob, journal: _Journal, settings: Settings, plan: _Plan, workers: int,
                   report: Report) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    leaf = job.leaf
    assert isinstance(leaf, KnowledgeLeaf)
    chunks = prepare_knowledge(job, settings, plan.fact_caps.get(leaf.path))
    examples = pipelines.knowledge_examples(leaf)
    extra = pipelines.knowledge_extra_samples(job, chunks) + pipelines.knowledge_recall_samples(
        job, plan.recall_per_fact) + pipelines.knowledge_span_samples(job, plan.span_per_fact)
    seen = [s["messages"][0]["content"] for s in extra if s["metadata"]["source"] == "seed"]
    target = plan.scale * len(examples)
    per_call = min(8, max(KNOWLEDGE_MIN_PER_CALL, math.ceil(target * KNOWLEDGE_OVERSAMPLE / len(job.facts))))
    for round_ in range(plan.max_rounds):
        samples = dedupe(_samples(journal, round_), seen)[0]  # earlier rounds only, as for skills
        if round_ > 0 and len(samples) >= target:
            break
        covered = {s["metadata"]["fact"] for s in samples}
        todo = range(len(job.facts)) if round_ == 0 else [i for i, f in enumerate(job.facts) if f.text not in covered]
        units = {f"f{i}r{round_}": partial(pipelines.knowledge_unit, job, i, round_, per_call, examples)
                 for i in todo}
        if not units:
            break
        _execute(units, journal, workers, round_, report)
    if plan.rephrase_per_question > 0:
        # Each accepted question asked again in other words, after the rounds (so the rounds plan as without).
        by_fact: dict[int, list[dict[str, Any]]] = {}
        index = {f.text: i for i, f in enumerate(job.facts)}
        for sample in dedupe(_samples(journal, plan.max_rounds), seen)[0]:
            by_fact.setdefault(index[sample["metadata"]["fact"]], []).append(sample)
        units = {f"p{i}": partial(pipelines.knowledge_rephrase_unit, job, i, asked, plan.rephrase_per_question)
                 for i, asked in sorted(by_fact.items())}
        _execute(units, journal, workers, plan.max_rounds, report)
    return _samples(journal), extra, seen


def prepare_knowledge(job: pipelines.LeafJob, settings: Settings, fact_cap: int | None) -> list[tuple[str, str]]:
    """Split a knowledge leaf's documents into chunks and facts (at most `fact_cap`, spread), set on `job`; the
    chunks as (document path, text)."""
    leaf = job.leaf
    assert isinstance(leaf, KnowledgeLeaf)
    sdg = settings.config.sdg
    count_tokens = getattr(job.teacher.inner if isinstance(job.teacher, CountingBackend) else job.teacher,
                           "count_tokens", approximate_tokens)
    chunks: list[tuple[str, str]] = []
    for document in leaf.documents:
        doc_chunks, facts = document_facts(document.path, document.text, count_tokens, sdg.chunk_tokens,
                                           sdg.chunk_overlap)
        chunks += [(document.path, c) for c in doc_chunks]
        job.facts += facts
        if not job.title:
            job.title = document_title(document.text, "")
    job.title = job.title or leaf.domain
    named = {n for d in leaf.documents for n in names(d.text)}
    kept = spread_facts(job.facts, fact_cap)
    job.facts_left_out = len(job.facts) - len(kept)
    job.facts = [dataclasses.replace(f, subject=fact_subject(f.section, named, job.title)) for f in kept]
    job.anchors = content_words(job.title) | named
    if not job.facts:
        raise SeedlabError(f"{leaf.path}: its documents hold no sentences to learn from; check document.patterns")
    return chunks


def _execute(units: Mapping[str, Callable[[], list[dict[str, Any]]]], journal: _Journal, workers: int, round_: int,
             report: Callable[[int, int], Any]) -> None:
    """Run the units the journal does not hold yet; each finished unit is one journal line.

    Records carry their unit's place in the plan, so samples sort the same however units interleave."""
    place = {uid: i for i, uid in enumerate(units)}
    todo = [(uid, fn) for uid, fn in units.items() if uid not in journal.units]
    done = len(units) - len(todo)
    report(done, len(units))

    def run(item: tuple[str, Callable[[], list[dict[str, Any]]]]) -> None:
        nonlocal done
        uid, fn = item
        before = CountingBackend.thread_requests()
        records = fn()
        for j, record in enumerate(records):
            record["order"] = [round_, place[uid], j]
        journal.append(uid, records, CountingBackend.thread_requests() - before)
        done += 1
        report(done, len(units))

    if workers <= 1:
        for item in todo:
            run(item)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(run, todo))


class _Journal:
    """Append-only record of finished units: one JSON line each, flushed, so a kill loses only work in flight."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.units: dict[str, list[dict[str, Any]]] = {}
        self.unit_requests: dict[str, int] = {}  # teacher requests each unit made (journals before it: none)
        self._lock = threading.Lock()
        if not path.exists():
            return
        whole = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
                unit, records, requests = entry["unit"], entry["records"], int(entry.get("requests", 0))
                self.units[unit], self.unit_requests[unit] = records, requests
                whole.append(line)
            except (ValueError, KeyError, TypeError, RecursionError):
                continue  # a line cut short by a kill: that unit simply runs again
        if len(whole) != len(self.units) or not path.read_bytes().endswith(b"\n"):
            write_text_atomic(path, "".join(line + "\n" for line in whole))  # drop the torn tail

    def append(self, unit: str, records: list[dict[str, Any]], requests: int = 0) -> None:
        line = json.dumps({"unit": unit, "records": records, "requests": requests}, ensure_ascii=False) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            self.units[unit] = records
            self.unit_requests[unit] = requests

    def requests(self) -> int:
        """Teacher requests of every finished unit, whichever process ran it."""
        return sum(self.unit_requests.values())

    def records(self) -> list[dict[str, Any]]:
        out = [r for records in self.units.values() for r in records]
        return sorted(out, key=lambda r: r.get("order", [0, 0]))


def _records_before(journal: _Journal, round_: int | None) -> list[dict[str, Any]]:
    """The journal's records, or those of rounds before `round_` (a resumed run holds some of later rounds)."""
    records = journal.records()
    return records if round_ is None else [r for r in records if r.get("order", [0])[0] < round_]


def _samples(journal: _Journal, before_round: int | None = None) -> list[dict[str, Any]]:
    samples = []
    for record in _records_before(journal, before_round):
        if record["sample"] is not None:
            sample = record["sample"]
            sample["metadata"]["id"] = record["id"]
            samples.append(sample)
    return samples


def _finish(run: Path, leaves: list[Leaf], stats: dict[str, Any], plan: _Plan) -> RunResult:
    knowledge: list[dict[str, Any]] = []
    skills: list[dict[str, Any]] = []
    empty = []
    for leaf in leaves:
        lines = (run / "leaves" / _slug(leaf.path) / "samples.jsonl").read_text(encoding="utf-8").splitlines()
        samples = [json.loads(line) for line in lines if line.strip()]
        (knowledge if isinstance(leaf, KnowledgeLeaf) else skills).extend(samples)
        info = stats["leaves"][leaf.path]
        if info["samples"] == 0:
            empty.append((leaf.path, main_drop_reason(info["blocks"])))
    replay_count = round(plan.replay_fraction * len(knowledge))
    replay = random.Random(plan.seed).sample(knowledge, min(replay_count, len(knowledge)))
    replayed = [{"messages": s["messages"], "metadata": {**s["metadata"], "replay": True}} for s in replay]
    write_text_atomic(run / "knowledge.jsonl", "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in knowledge))
    write_text_atomic(run / "skills.jsonl",
                      "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in skills + replayed))
    stats["files"] = {"knowledge.jsonl": len(knowledge), "skills.jsonl": len(skills) + len(replayed),
                      "replayed_knowledge": len(replayed)}
    write_text_atomic(run / "stats.json", json.dumps(stats, indent=2))
    finish_run(run, read_json_object(run / "run.json"))
    return RunResult(run, stats, empty)


# --- keys and small helpers -------------------------------------------------------------------------------------


def _teacher_identity(settings: Settings, options: GenerateOptions, urls: list[str]) -> dict[str, Any]:
    if urls:  # one server keeps the key runs had before pools; a pool is named by its servers
        where = {"endpoint": urls[0]} if len(urls) == 1 else {"endpoints": sorted(urls)}
        return {"model": options.teacher or settings.config.endpoint.model, "sha256": None, **where}
    from seedlab.backends import model_identity, resolve_model

    return model_identity(settings, resolve_model(options.teacher or settings.config.sdg.teacher, settings.models_path))


def _template_id(templates: TemplateSet) -> dict[str, Any]:
    return {"name": templates.name, "version": templates.version}


def _leaf_key(leaf: Leaf, identity: dict[str, Any], templates: TemplateSet, plan: _Plan) -> str:
    documents = (leaf.document_repo, leaf.document_commit) if isinstance(leaf, KnowledgeLeaf) else None
    cap = {"fact_cap": plan.fact_caps[leaf.path]} if leaf.path in plan.fact_caps else {}
    return _digest({"blob": leaf.blob_id, "teacher": identity, "templates": _template_id(templates),
                    "options": {k: v for k, v in plan.key_data().items() if k not in ("replay_fraction", "fact_caps")},
                    "documents": documents, "version": SDG_VERSION, **cap})


def _reusable(root: Path, current: Path, leaf: Leaf, key: str) -> Path | None:
    """A finished leaf with the same key in an earlier run, to copy instead of generating again."""
    for done in sorted(root.glob(f"*/leaves/{_slug(leaf.path)}/done.json"), reverse=True):
        same = done.parent.parent.parent != current and read_json_object(done).get("key") == key
        if same and (done.parent / "samples.jsonl").exists():
            return done.parent
    return None


def _slug(path: str) -> str:
    return path.removesuffix("/qna.yaml").removesuffix("/qna.yml").replace("/", "__")


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def run_summary(run: Path) -> dict[str, Any]:
    """run.json and stats.json of one run, for `data list` and `data show`."""
    return {**read_json_object(run / "run.json"), "stats": read_json_object(run / "stats.json")}


