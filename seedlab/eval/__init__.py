"""Evaluation: did the trained model learn what the contributor taught? Judge-free knowledge scores and
pairwise judge verdicts for skills, base against candidate."""

from seedlab.eval._coverage import render as render_coverage
from seedlab.eval._run import (
           BENCHMARKS,
           EvalReport,
           EvaluateOptions,
           Question,
           answer_questions,
           evaluate,
           leaf_questions,
           load_questions,
           render_table,
           uplift_line,
           user_turn,
)
from seedlab.eval._score import key_fact_score, key_facts, token_f1

__all__ = ["BENCHMARKS", "EvalReport", "EvaluateOptions", "Question", "answer_questions", "evaluate",
           "key_fact_score", "key_facts", "leaf_questions", "load_questions", "render_coverage", "render_table",
           "token_f1", "uplift_line", "user_turn"]
