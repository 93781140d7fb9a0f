"""Training: samples -> tokens with loss masks -> phased LoRA loop with checkpoints that resume; preference tuning
(DPO, RFT) and reward models (Bradley-Terry) on the same loop; merging and export.

The public surface: `train` (phases from config or given), `tune` (preference tuning), `load_model` and
`ModelLoader` (how a model is loaded for training, replaceable in tests), `convert`, `requantize`,
`write_compared`, `merged_file` and `compared_base` (adapters into GGUF or Hugging Face files); `start`, `share`,
`stop` for a job that holds the torchrun process group across several trainings (`seedlab build`)."""

from seedlab.train._dist import Ranks, share, start, stop
from seedlab.train._export import compared_base, convert, merged_file, requantize, write_compared
from seedlab.train._model import ModelLoader, load_model
from seedlab.train._preference import TuneConfig, tune
from seedlab.train._reward import RewardConfig, answer_logprobs, fit_reward, likelihood_scores, reward_scores
from seedlab.train._run import TrainOptions, TrainResult, train, trained_on

__all__ = ["ModelLoader", "Ranks", "RewardConfig", "TrainOptions", "TrainResult", "TuneConfig", "answer_logprobs",
           "compared_base", "convert", "fit_reward", "likelihood_scores", "load_model", "merged_file", "requantize",
           "reward_scores", "share", "start", "stop", "train", "trained_on", "tune", "write_compared"]
