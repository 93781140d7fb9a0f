"""The judge: what every judging step shares (`seedlab.judge.judging`), pairwise verdicts measured on labelled
pairs, and the self-taught evaluator that trains it."""

from seedlab.judge._evaluate import JudgeScore, chance_line, evaluate_judge, load_pairs, score_line
from seedlab.judge._rounds import JudgeTrainOptions, JudgeTrainResult, render_rounds, train_judge, trained_judges

__all__ = ["JudgeScore", "JudgeTrainOptions", "JudgeTrainResult", "chance_line", "evaluate_judge", "load_pairs",
           "render_rounds", "score_line", "train_judge", "trained_judges"]
