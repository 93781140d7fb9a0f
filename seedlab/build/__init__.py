"""Maintainer builds: a release of the whole taxonomy that continues the previous one (replayed data, checkpoint
choice, a regression check) into a folder with the merged GGUF, adapter, data, model card and manifest."""

from seedlab.build._choose import RULE, candidate_checkpoints, choose, score_answers
from seedlab.build._regress import GeneralQuestion, Limits, load_general, regression_summary
from seedlab.build._release import verify_release, write_manifest
from seedlab.build._replay import carried, mix_phases, replay_sample, self_replay, with_origin
from seedlab.build._run import BuildOptions, BuildResult, build
from seedlab.build.models import BuildModels

__all__ = ["RULE", "BuildModels", "BuildOptions", "BuildResult", "GeneralQuestion", "Limits", "build",
           "candidate_checkpoints", "carried", "choose", "load_general", "mix_phases", "regression_summary",
           "replay_sample", "score_answers", "self_replay", "verify_release", "with_origin", "write_manifest"]
