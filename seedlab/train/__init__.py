"""Training: samples -> tokens with loss masks -> phased LoRA loop with checkpoints that resume; preference tuning
(DPO, RFT) on the same loop; merging and export.

The public surface: `train` (phases from config or given), `tune` (preference tuning), `load_model` and
`ModelLoader` (how a model is loaded for training, replaceable in tests), `convert`, `requantize` and
`write_compared` (adapters into GGUF or Hugging Face files)."""

from seedlab.train._export import convert, requantize, write_compared
from seedlab.train._model import ModelLoader, load_model
from seedlab.train._preference import TuneConfig, tune
from seedlab.train._run import TrainOptions, TrainResult, train

__all__ = ["ModelLoader", "TrainOptions", "TrainResult", "TuneConfig", "convert", "load_model", "requantize", "train",
           "tune", "write_compared"]
