"""`seedlab data generate`: run every leaf's pipeline into a run directory, resumably, then mix the outputs."""

from __future__ import annotations

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
from seedlab.sdg import _pipelines as pipelines
from seedlab.sdg._chunk import approximate_tokens, document_facts, document_title
from seedlab.sdg._stats import block_stats, dedupe, main_drop_reason
from seedlab.sdg._templates import TemplateSet, load_templates
from seedlab.sdg._text import content_words, names
from seedlab.taxonomy import KnowledgeLeaf, Leaf, SkillLeaf, changed_leaves, load_leaf

SDG_VERSION = 4  # bump when pipeline logic changes, so finished leaves are not reused across versions
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
    endpoint_url: str | None = None


@dataclass
class RunResult:
    """Where a run's outputs are and what it produced."""

    run_dir: Path
    stats: dict[str, Any]
    empty_leaves: list[tuple[str, str]] = field(default_factory=list)  # (leaf, main drop reason)


class CountingBackend:
    """Wraps a backend to count generated tokens and the time spent waiting on it."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.completion_tokens = 0
        self.seconds = 0.0
        self._lock = threading.Lock()

    def complete(self, requests: Sequence[Request]) -> list[Result]:
        start = time.perf_counter()
        results = self.inner.complete(requests)
        with self._lock:
            self.seconds += time.perf_counter() - start
            self.completion_tokens += sum(r.completion_tokens for r in results)
        return results

    def stream(self, request: Request) -> Iterator[str]:
        return self.inner.stream(request)

    def close(self) -> None:
        self.inner.close()


Progress = Callable[[str, int, int], None]  # (leaf, units done, units planned)


def generate(settings: Settings, options: GenerateOptions, teacher: Backend | None = None,
             progress: Progress | None = None, judge: Backend | None = None) -> RunResult:
    """Generate training data for the changed leaves (all, with base 'empty') into a new or resumed run.

    The skills pipeline's judges are `judge`, else eval.judge when config sets one, else the teacher."""
    sdg = settings.config.sdg
    scale = options.scale if options.scale is not None else sdg.scale
    pipeline = options.pipeline or sdg.pipeline
    if scale < 1:
        raise SeedlabError(f"--scale must be at least 1, got {scale}")
    if pipeline not in ("full", "simple"):
        raise SeedlabError(f"--pipeline must be full or simple, got {pipeline!r}")
    taxonomy = settings.taxonomy_path
    diff = changed_leaves(taxonomy, options.taxonomy_base or settings.config.taxonomy.base)
    if not diff.files:
        raise SeedlabError(f"no new or changed leaves in {taxonomy} against {diff.base}; "
                           "use --taxonomy-base empty for the whole tree")
    leaves = [load_leaf(taxonomy, rel, settings.home.cache / "docs") for rel in diff.files]
    templates = load_templates(sdg.templates)
    endpoint = bool(options.endpoint_url or settings.config.endpoint.url)
    identity = _teacher_identity(settings, options)
    owned = teacher is None
    if teacher is None:
        from seedlab.backends import make_backend

        model = options.teacher if endpoint else identity["model"]
        teacher = make_backend(settings, model, options.endpoint_url)
    if endpoint:
        identity["model"] = teacher.model_id
    counting = CountingBackend(teacher)
    workers = options.workers or (settings.config.endpoint.concurrency if endpoint else 1)
    run_options = {"scale": scale, "pipeline": pipeline, "threshold": sdg.judge_threshold, "seed": sdg.seed,
                   "max_rounds": sdg.max_rounds, "replay_fraction": sdg.replay_fraction,
                   "recall_per_fact": sdg.recall_per_fact}
    owned_judge = judge is None and pipeline == "full" and bool(settings.config.eval.judge) and not endpoint
    if owned_judge:
        from seedlab.backends import make_judge

        run_options["judge"] = _judge_identity(settings)  # only when set, so earlier runs keep their keys
        judge = make_judge(settings)
    elif judge is not None:
        run_options["judge"] = {"model": judge.model_id}
    try:
        run = _open_run(settings.datasets_path, leaves, identity, templates, run_options)
        stats: dict[str, Any] = {"leaves": {}, "teacher": identity, "templates": _template_id(templates)}
        for leaf in leaves:
            key = _leaf_key(leaf, identity, templates, run_options)
            stats["leaves"][leaf.path] = _leaf(run, leaf, key, settings, counting, templates, run_options, workers,
                                               identity, progress, judge)
        stats["teacher_tokens"] = counting.completion_tokens
        stats["teacher_seconds"] = round(counting.seconds, 2)
        result = _finish(run, leaves, stats, run_options)
    finally:
        if owned:
            teacher.close()
        if owned_judge and judge is not None:
            judge.close()
    return result


# --- the run directory -------------------------------------------------------------------------------------------


def _open_run(root: Path, leaves: list[Leaf], identity: dict[str, Any], templates: TemplateSet,
              options: dict[str, Any]) -> Path:
    """Resume the newest unfinished run made by the same command, or start a new one."""
    key = _digest({"leaves": sorted(leaf.path for leaf in leaves), "teacher": identity,
                   "templates": _template_id(templates), "options": options, "version": SDG_VERSION})
    for run in sorted(root.glob("*/run.json"), reverse=True):
        info = read_json_object(run)
        if info.get("key") == key and info.get("status") != "finished":
            return run.parent
    run_dir = new_run_dir(root)
    info = {"id": run_dir.name, "created": datetime.now(UTC).isoformat(timespec="seconds"), "status": "running",
            "key": key, "options": options, "teacher": identity, "templates": _template_id(templates),
            "leaves": [leaf.path for leaf in leaves]}
    write_text_atomic(run_dir / "run.json", json.dumps(info, indent=2))
    return run_dir


def _leaf(run: Path, leaf: Leaf, key: str, settings: Settings, teacher: CountingBackend, templates: TemplateSet,
          options: dict[str, Any], workers: int, identity: dict[str, Any], progress: Progress | None,
          judge: Backend | None = None) -> dict[str, Any]:
    folder = run / "leaves" / _slug(leaf.path)
    done = read_json_object(folder / "done.json")
    if done.get("key") == key:
        return done["stats"]
    previous = _reusable(settings.datasets_path, run, leaf, key)
    if previous is not None:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(previous, folder)
        info = read_json_object(folder / "done.json")
        info["stats"]["reused"] = True
        info["stats"]["reused_from"] = previous.parent.parent.name
        write_text_atomic(folder / "done.json", json.dumps(info, indent=2))
        return info["stats"]
    folder.mkdir(parents=True, exist_ok=True)
    if read_json_object(folder / "leaf.json").get("key") != key:  # a journal holds the units of one version of a leaf:
        (folder / "journal.jsonl").unlink(missing_ok=True)  # one edited between a crash and the resume starts afresh
        write_text_atomic(folder / "leaf.json", json.dumps({"leaf": leaf.path, "key": key}))
    provenance = {"leaf": leaf.path, "leaf_kind": leaf.kind, "seed_blob": leaf.blob_id,
                  "taxonomy_commit": leaf.taxonomy_commit, "teacher": identity, "pipeline": options["pipeline"],
                  "templates": _template_id(templates), "sdg_version": SDG_VERSION}
    job = pipelines.LeafJob(leaf, _slug(leaf.path), teacher, templates, options["pipeline"], options["threshold"],
                            options["seed"], provenance, judge=judge)
    journal = _Journal(folder / "journal.jsonl")
    if isinstance(leaf, KnowledgeLeaf):
        samples, extra, seen = _run_knowledge(job, journal, settings, options, workers, progress)
    else:
        samples, extra, seen = _run_skill(job, journal, options, workers, progress)
    blocks = block_stats(journal.records())
    kept, dedupe_stats = dedupe(samples, seen)
    if samples:
        blocks["dedupe"] = dedupe_stats
    stats = {"kind": leaf.kind, "blocks": blocks, "samples": len(kept), "seed_and_document_samples": len(extra),
             "reused": False}
    lines = "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in kept + extra)
    write_text_atomic(folder / "samples.jsonl", lines)
    write_text_atomic(folder / "done.json", json.dumps({"key": key, "stats": stats}, indent=2))
    return stats


def _run_skill(job: pipelines.LeafJob, journal: _Journal, options: dict[str, Any], workers: int,
               progress: Progress | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    leaf = job.leaf
    assert isinstance(leaf, SkillLeaf)
    target = options["scale"] * len(leaf.seeds)
    extra = pipelines.skill_seed_samples(job)
    seen = [s["messages"][0]["content"] for s in extra]
    start = 0
    for round_ in range(options["max_rounds"]):
        # Plan from earlier rounds only: a resumed run then plans exactly what an uninterrupted one did.
        accepted = len(dedupe(_samples(journal, round_), seen)[0])
        candidates = len(_records_before(journal, round_))
        count = pipelines.plan_units(target, accepted, candidates, SKILL_PER_CALL, round_)
        if count == 0:
            break
        count = min(count, 4 * target)  # a leaf the teacher cannot serve should not run forever
        units = {f"u{u}": partial(pipelines.skill_unit, job, u, SKILL_PER_CALL) for u in range(start, start + count)}
        _execute(units, journal, workers, round_, lambda d, t: progress and progress(leaf.path, d, t))
        start += count
    return _samples(journal), extra, seen


def _run_knowledge(job: pipelines.LeafJob, journal: _Journal, settings: Settings, options: dict[str, Any],
                   workers: int, progress: Progress | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]],
                                                                      list[str]]:
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
    job.anchors = content_words(job.title) | {n for d in leaf.documents for n in names(d.text)}
    if not job.facts:
        raise SeedlabError(f"{leaf.path}: its documents hold no sentences to learn from; check document.patterns")
    examples = pipelines.knowledge_examples(leaf)
    extra = pipelines.knowledge_extra_samples(job, chunks) + pipelines.knowledge_recall_samples(
        job, options.get("recall_per_fact", 0))
    seen = [s["messages"][0]["content"] for s in extra if s["metadata"]["source"] == "seed"]
    target = options["scale"] * len(examples)
    per_call = min(8, max(KNOWLEDGE_MIN_PER_CALL, math.ceil(target * KNOWLEDGE_OVERSAMPLE / len(job.facts))))
    for round_ in range(options["max_rounds"]):
        samples = dedupe(_samples(journal, round_), seen)[0]  # earlier rounds only, as for skills
        if round_ > 0 and len(samples) >= target:
            break
        covered = {s["metadata"]["fact"] for s in samples}
        todo = range(len(job.facts)) if round_ == 0 else [i for i, f in enumerate(job.facts) if f.text not in covered]
        units = {f"f{i}r{round_}": partial(pipelines.knowledge_unit, job, i, round_, per_call, examples)
                 for i in todo}
        if not units:
            break
        _execute(units, journal, workers, round_, lambda d, t: progress and progress(leaf.path, d, t))
    return _samples(journal), extra, seen


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
        records = fn()
        for j, record in enumerate(records):
            record["order"] = [round_, place[uid], j]
        journal.append(uid, records)
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
        self._lock = threading.Lock()
        if not path.exists():
            return
        whole = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
                self.units[entry["unit"]] = entry["records"]
                whole.append(line)
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a kill: that unit simply runs again
        if len(whole) != len(self.units) or not path.read_bytes().endswith(b"\n"):
            write_text_atomic(path, "".join(line + "\n" for line in whole))  # drop the torn tail

    def append(self, unit: str, records: list[dict[str, Any]]) -> None:
        line = json.dumps({"unit": unit, "records": records}, ensure_ascii=False) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            self.units[unit] = records

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


def _finish(run: Path, leaves: list[Leaf], stats: dict[str, Any], options: dict[str, Any]) -> RunResult:
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
    replay_count = round(options["replay_fraction"] * len(knowledge))
    replay = random.Random(options["seed"]).sample(knowledge, min(replay_count, len(knowledge)))
    replayed = [{"messages": s["messages"], "metadata": {**s["metadata"], "replay": True}} for s in replay]
    write_text_atomic(run / "knowledge.jsonl", "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in knowledge))
    write_text_atomic(run / "skills.jsonl",
                      "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in skills + replayed))
    stats["files"] = {"knowledge.jsonl": len(knowledge), "skills.jsonl": len(skills) + len(replayed),
                      "replayed_knowledge": len(replayed)}
    write_text_atomic(run / "stats.json", json.dumps(stats, indent=2))
    info = read_json_object(run / "run.json")
    info.update(status="finished", finished=datetime.now(UTC).isoformat(timespec="seconds"))
    write_text_atomic(run / "run.json", json.dumps(info, indent=2))
    return RunResult(run, stats, empty)


# --- keys and small helpers -------------------------------------------------------------------------------------


def _teacher_identity(settings: Settings, options: GenerateOptions) -> dict[str, Any]:
    if options.endpoint_url or settings.config.endpoint.url:
        return {"model": options.teacher or settings.config.endpoint.model, "sha256": None,
                "endpoint": options.endpoint_url or settings.config.endpoint.url}
    from seedlab.backends import file_sha256, resolve_model

    ref = resolve_model(options.teacher or settings.config.sdg.teacher, settings.models_path)
    sha = file_sha256(ref.path, settings.models_path) if ref.format == "gguf" else None
    return {"model": ref.name, "sha256": sha}


def _judge_identity(settings: Settings) -> dict[str, Any]:
    """eval.judge as it enters the cache keys: a model with its file hash, or an adapter folder."""
    from seedlab.backends import file_sha256, resolve_model

    ref = str(settings.config.eval.judge)
    if (Path(ref) / "adapter_config.json").is_file():
        weights = Path(ref) / "adapter_model.safetensors"
        return {"adapter": ref, "mtime": weights.stat().st_mtime if weights.exists() else None}
    model = resolve_model(ref, settings.models_path)
    return {"model": model.name, "sha256": file_sha256(model.path, settings.models_path)
            if model.format == "gguf" else None}


def _template_id(templates: TemplateSet) -> dict[str, Any]:
    return {"name": templates.name, "version": templates.version}


def _leaf_key(leaf: Leaf, identity: dict[str, Any], templates: TemplateSet, options: dict[str, Any]) -> str:
    documents = (leaf.document_repo, leaf.document_commit) if isinstance(leaf, KnowledgeLeaf) else None
    return _digest({"blob": leaf.blob_id, "teacher": identity, "templates": _template_id(templates),
                    "options": {k: v for k, v in options.items() if k != "replay_fraction"}, "documents": documents,
                    "version": SDG_VERSION})


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


