"""Training: samples -> tokens with loss masks -> phased LoRA loop with checkpoints that resume."""

from seedlab.train._export import convert, requantize, write_compared
from seedlab.train._run import TrainOptions, TrainResult, train

__all__ = ["TrainOptions", "TrainResult", "convert", "requantize", "train", "write_compared"]
