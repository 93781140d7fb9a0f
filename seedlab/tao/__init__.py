"""TAO: tune a model from unlabeled prompts by spending compute at tuning time (candidates, scores, preferences)."""

from seedlab.tao._run import TaoOptions, TaoResult, render_report, run_tao

__all__ = ["TaoOptions", "TaoResult", "render_report", "run_tao"]
