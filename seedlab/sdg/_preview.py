"""A few candidates from one leaf's pipeline, as they are made, with their checks: the contributor page's preview."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from seedlab.backends import Backend
from seedlab.config import Settings
from seedlab.judge.judging import Judge, as_judge
from seedlab.sdg import _pipelines as pipelines
from seedlab.sdg._run import KNOWLEDGE_MIN_PER_CALL, SKILL_PER_CALL, GenerateOptions, _Plan, prepare_knowledge
from seedlab.sdg._templates import load_templates
from seedlab.taxonomy import KnowledgeLeaf, Leaf


def preview(settings: Settings, leaf: Leaf, teacher: Backend, judge: Judge | Backend | None = None,
            units: int = 3) -> Iterator[dict[str, Any]]:
    """Run `units` units of the leaf's pipeline (skills: seed anchors; knowledge: facts spread over the documents)
    and yield every candidate record ({"id", "passed", "drop", "sample"}) as its unit finishes. Nothing is written:
    the same pipeline as `data generate`, at the scale of a glance."""
    plan = _Plan.resolve(settings, GenerateOptions())
    templates = load_templates(settings.config.sdg.templates)
    job = pipelines.LeafJob(leaf, "preview", teacher, templates, plan.pipeline, plan.threshold, plan.seed,
                            {"leaf": leaf.path, "leaf_kind": leaf.kind, "preview": True},
                            judge=as_judge(judge) if judge is not None else None)
    if isinstance(leaf, KnowledgeLeaf):
        prepare_knowledge(job, settings, units)
        examples = pipelines.knowledge_examples(leaf)
        for index in range(len(job.facts)):
            yield from pipelines.knowledge_unit(job, index, 0, KNOWLEDGE_MIN_PER_CALL, examples)
        return
    for unit in range(units):
        yield from pipelines.skill_unit(job, unit, SKILL_PER_CALL)
