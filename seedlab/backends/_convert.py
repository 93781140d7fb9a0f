"""Model files converted once and cached by the source file's sha256: GGUF -> Hugging Face weights (the trainer
needs HF), and GGUF -> GGUF of another weight type (what llama.cpp decodes batches fastest in)."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

from seedlab.backends._models import REGISTRY, ModelError, ModelRef, file_sha256, hf_cache_dir
from seedlab.fsutil import disk_full_error

# llama.cpp's file types (enum llama_ftype) that `llama_cpp.weights` may name.
WEIGHT_TYPES = {"q8_0": 7, "f16": 1, "bf16": 32}


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
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        config_path = staging / "config.json"
        data = json.loads(config_path.read_text())
        data.pop("quantization_config", None)
        config_path.write_text(json.dumps(data, indent=2))
        (staging / "seedlab-source.json").write_text(json.dumps({"gguf": str(ref.path), "name": ref.name}))
    except Exception as exc:
        full = disk_full_error(target.parent)  # safetensors reports a full disk as an error of its own
        shutil.rmtree(staging, ignore_errors=True)  # a half-written copy gives its space back
        if full:
            raise full from exc
        raise
    staging.rename(target)  # whole or not at all
    return target


def llama_file(ref: ModelRef, cache: Path, weights: str = "auto") -> Path:
    """The GGUF llama.cpp loads for `ref` under `llama_cpp.weights`: the file itself (`as-is`, or `auto` for a model
    outside the registry), or a copy in another weight type, converted once.

    Why `auto` decodes the default model in Q8_0, not its packaged Q4_1: llama.cpp on x86 has no kernel that
    multiplies Q4_1 weights by many tokens at once, so a batch of 16 sequences cost about 9x one token and batched
    decoding gave 1.9x one stream; in Q8_0 (batched kernels on x86 and ARM) one stream is as fast and 32 sequences
    gave 2.15x, 3.21x with flash attention (README, batched decoding). Q8_0 holds Q4_1's values almost
    exactly (an 8-bit step per block against Q4_1's 4-bit one), for 145 MB instead of 98."""
    if ref.format != "gguf" or weights == "as-is":
        return ref.path
    kind = (REGISTRY[ref.name].decode_as if ref.name in REGISTRY else None) if weights == "auto" else weights
    if kind is None:
        return ref.path
    if kind not in WEIGHT_TYPES:
        known = ", ".join(["auto", "as-is", *WEIGHT_TYPES])
        raise ModelError(f"llama_cpp.weights: {weights!r} is not a weight type seedlab converts to; use one of {known}")
    target = cache / "gguf" / f"{file_sha256(ref.path, cache)[:16]}-{kind}.gguf"
    if not target.is_file():
        _requantize(ref.path, target, WEIGHT_TYPES[kind])
    return target


def _requantize(source: Path, target: Path, file_type: int) -> None:
    """llama.cpp's own quantizer (it dequantises each tensor and quantises it again), into a partial file of this
    process's own that is renamed when whole: two processes converting at once (two servers starting in a new
    home) each write their own, and the last rename leaves the same file."""
    import ctypes
    import os
    import threading

    import llama_cpp

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}.partial")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = file_type
    params.allow_requantize = True
    params.nthread = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    with contextlib.redirect_stderr(io.StringIO()):  # the quantizer logs every tensor
        code = llama_cpp.llama_model_quantize(str(source).encode(), str(partial).encode(), ctypes.byref(params))
    if code != 0 or not partial.is_file():
        full = disk_full_error(target.parent)  # llama.cpp says only "code 1" when the disk fills
        partial.unlink(missing_ok=True)
        if full:
            raise full
        raise ModelError(f"llama.cpp could not convert {source} to another weight type (code {code}); "
                         "set llama_cpp.weights: as-is to load the file as it is")
    partial.replace(target)
