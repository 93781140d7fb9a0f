"""The judge: pairwise verdicts measured on labelled pairs (the self-taught training loop builds on this)."""

from seedlab.judge._evaluate import JudgeScore, evaluate_judge, load_pairs, score_line

__all__ = ["JudgeScore", "evaluate_judge", "load_pairs", "score_line"]
