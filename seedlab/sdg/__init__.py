"""Synthetic data generation: skills and knowledge pipelines with judges and checks, resumable runs."""

from seedlab.sdg._estimate import LeafPlan, Rates
from seedlab.sdg._preview import preview
from seedlab.sdg._run import CountingBackend, GenerateOptions, RunResult, generate, run_summary
from seedlab.sdg._stats import render_table
from seedlab.sdg._templates import load_templates

__all__ = ["CountingBackend", "GenerateOptions", "LeafPlan", "Rates", "RunResult", "generate", "load_templates",
           "preview", "render_table", "run_summary"]
