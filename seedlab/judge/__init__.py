"""The judge: pairwise verdicts measured on labelled pairs, and the self-taught evaluator that trains it."""

from seedlab.judge._evaluate import JudgeScore, chance_line, evaluate_judge, load_pairs, score_line
from seedlab.judge._rounds import JudgeTrainOptions, JudgeTrainResult, render_rounds, shipped, train_judge

__all__ = ["JudgeScore", "JudgeTrainOptions", "JudgeTrainResult", "chance_line", "evaluate_judge", "load_pairs",
           "render_rounds", "score_line", "shipped", "train_judge"]
