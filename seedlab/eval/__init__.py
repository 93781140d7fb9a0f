"""Evaluation: did the trained model learn what the contributor taught? Judge-free knowledge scores and
pairwise judge verdicts for skills, base against candidate."""

from seedlab.eval._run import (
           BENCHMARKS,
           EvalReport,
           EvaluateOptions,
           evaluate,
           load_questions,
           render_table,
           uplift_line,
)
from seedlab.eval._score import key_fact_score, key_facts, token_f1

__all__ = ["BENCHMARKS", "EvalReport", "EvaluateOptions", "evaluate", "key_fact_score", "key_facts", "load_questions",
           "render_table", "token_f1", "uplift_line"]
