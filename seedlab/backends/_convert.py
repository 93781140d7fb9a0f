"""GGUF -> Hugging Face weights, converted once and cached by the file's sha256 (the trainer needs HF)."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

from seedlab.backends._models import ModelError, ModelRef, hf_cache_dir


def hf_copy(ref: ModelRef, cache: Path) -> Path:
    """A Hugging Face folder for `ref`: the folder itself, or a cached de-quantised copy of the GGUF.

    Every transformers load in seedlab starts here, so this is where transformers' own tqdm bars are switched
    off: seedlab draws its own progress, and a second kind of bar in between reads as noise."""
    import transformers

    transformers.utils.logging.disable_progress_bar()
    if ref.format == "hf":
        return ref.path
    target = hf_cache_dir(ref, cache)
    if (target / "config.json").is_file():
        return target
    import torch

    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    folder, name = str(ref.path.parent), ref.path.name
    try:
        # The GGUF reader draws a plain tqdm bar of its own (not under transformers' switch); the conversion is
        # a few seconds, once per file.
        with contextlib.redirect_stderr(io.StringIO()):
            tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
            loaded = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except (ValueError, OSError, RuntimeError, KeyError) as exc:
        raise ModelError(f"transformers cannot convert {ref.path} ({exc}); is its architecture supported?") from exc
    # A model loaded from GGUF is marked quantised and refuses save/train: rebuild it from its config.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    if loaded.generation_config is not None:
        model.generation_config = loaded.generation_config
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    config_path = staging / "config.json"
    data = json.loads(config_path.read_text())
    data.pop("quantization_config", None)
    config_path.write_text(json.dumps(data, indent=2))
    (staging / "seedlab-source.json").write_text(json.dumps({"gguf": str(ref.path), "name": ref.name}))
    staging.rename(target)  # whole or not at all
    return target
