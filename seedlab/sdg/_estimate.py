"""The cost of a generate run before it is paid: teacher requests and minutes per leaf, from the rates measured in
this home's earlier runs (defaults measured on a 2-core CPU otherwise), and a budget turned into fact caps."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Measured on a 2-core AMD EPYC (avx512_bf16) with the default teacher, example taxonomy, scale 1 (2026-12-04):
# 100 teacher requests in a 155.6 s generate stage; the knowledge leaf made 45 requests for its 21 facts; the
# three skill leaves 25-34 requests for 5-6 seed examples each.
DEFAULT_SECONDS_PER_REQUEST = 1.56
DEFAULT_REQUESTS_PER_FACT = 2.1
DEFAULT_REQUESTS_PER_SEED = 5.9


@dataclass
class Rates:
    """Teacher cost rates and where they come from."""

    seconds_per_request: float = DEFAULT_SECONDS_PER_REQUEST
    requests_per_fact: float = DEFAULT_REQUESTS_PER_FACT
    requests_per_seed: float = DEFAULT_REQUESTS_PER_SEED
    source: str = "defaults measured on a 2-core CPU"


@dataclass
class LeafPlan:
    """One leaf's planned work: facts (knowledge) or seed examples (skills), requests and seconds."""

    path: str
    kind: str
    units: int  # facts of a knowledge leaf's documents, seed examples of a skill leaf
    requests: int
    seconds: float
    reused: bool = False
    fact_cap: int | None = None  # the facts kept under a budget or --max-facts (None: all)

    @property
    def left_out(self) -> int:
        return self.units - self.fact_cap if self.fact_cap is not None else 0


def measured_rates(datasets: Path, teacher_model: str) -> Rates:
    """The rates of the newest finished run with the same teacher that made requests and recorded its leaves'
    facts and wall seconds; the defaults where there is none."""
    for stats_file in sorted(datasets.glob("*/stats.json"), reverse=True):
        try:
            stats = json.loads(stats_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(stats, dict) or (stats.get("teacher") or {}).get("model") != teacher_model:
            continue
        made = [v for v in (stats.get("leaves") or {}).values()
                if isinstance(v, dict) and not v.get("reused") and v.get("teacher_requests") and v.get("seconds")]
        requests = sum(v["teacher_requests"] for v in made)
        if not requests:
            continue
        rates = Rates(sum(v["seconds"] for v in made) / requests, source=f"run {stats_file.parent.name}")
        knowledge = [v for v in made if v.get("kind") == "knowledge" and v.get("facts")]
        if knowledge:
            rates.requests_per_fact = sum(v["teacher_requests"] for v in knowledge) / sum(v["facts"] for v in knowledge)
        skills = [v for v in made if v.get("kind") != "knowledge" and v.get("seeds")]
        if skills:
            rates.requests_per_seed = sum(v["teacher_requests"] / v.get("scale", 1) for v in skills) / sum(
                v["seeds"] for v in skills)
        return rates
    return Rates()


def leaf_plan(path: str, kind: str, units: int, scale: int, rates: Rates, reused: bool) -> LeafPlan:
    """A leaf's requests and seconds: knowledge asks about every fact once whatever the scale; skills grow with
    the scale."""
    if reused:
        return LeafPlan(path, kind, units, 0, 0.0, reused=True)
    per = rates.requests_per_fact if kind == "knowledge" else rates.requests_per_seed * scale
    requests = math.ceil(units * per)
    return LeafPlan(path, kind, units, requests, requests * rates.seconds_per_request)


def apply_budget(plans: list[LeafPlan], rates: Rates, max_minutes: float | None, max_facts: int | None) -> None:
    """Cap knowledge leaves' facts: at `max_facts` each, then all by one ratio so the run fits `max_minutes`
    (skill leaves cannot be cut; a budget they alone pass leaves each knowledge leaf one fact)."""
    knowledge = [p for p in plans if p.kind == "knowledge" and not p.reused]
    for p in knowledge:
        if max_facts is not None and p.units > max_facts:
            _cap(p, max_facts, rates)
    if max_minutes is None:
        return
    budget = max_minutes * 60 - sum(p.seconds for p in plans if p not in knowledge)
    spend = sum(p.seconds for p in knowledge)
    if spend > budget and spend > 0:
        ratio = max(budget, 0.0) / spend
        for p in knowledge:
            _cap(p, max(1, math.floor((p.fact_cap or p.units) * ratio)), rates)


def _cap(plan: LeafPlan, facts: int, rates: Rates) -> None:
    plan.fact_cap = min(facts, plan.units)
    plan.requests = math.ceil(plan.fact_cap * rates.requests_per_fact)
    plan.seconds = plan.requests * rates.seconds_per_request


def spread_facts(facts: list[Any], cap: int | None) -> list[Any]:
    """`cap` facts taken evenly over the whole document, first and last included (not its first pages)."""
    if cap is None or cap >= len(facts):
        return facts
    if cap == 1:
        return facts[:1]
    return [facts[round(i * (len(facts) - 1) / (cap - 1))] for i in range(cap)]
