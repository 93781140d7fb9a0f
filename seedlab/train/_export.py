"""`seedlab model convert`: merge a LoRA adapter into its base and write Hugging Face safetensors or a GGUF file.

The GGUF path works on the base model's own GGUF: every tensor is read (de-quantised), the adapter's
low-rank update B·A·(alpha/r) is added where it applies, and the file is written again at f16 or q8_0
with the base's metadata (tokenizer, chat template, hyper-parameters). No torch model is loaded.
"""

from __future__ import annotations

import errno
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from seedlab.backends import ModelError, ModelRef, resolve_model
from seedlab.config import Settings
from seedlab.errors import SeedlabError
from seedlab.fsutil import disk_full_error, read_json_object

QUANTIZE = {"f16": 1, "q8_0": 7}  # name -> general.file_type (llama.cpp's MOSTLY_F16, MOSTLY_Q8_0)


def convert(settings: Settings, adapter: Path, to: str = "gguf", quantize: str = "q8_0", model: str | None = None,
            output: Path | None = None) -> Path:
    """Merge `adapter` into its base model and write it as `to` ("gguf" or "hf"); returns the written path.

    `adapter` may also be the whole model a `--full` run wrote; its weights then replace the base's."""
    config = read_json_object(adapter / "adapter_config.json")
    full = not config and (adapter / "model.safetensors").is_file()
    if not full and (not config or not (adapter / "adapter_model.safetensors").is_file()):
        raise SeedlabError(f"{adapter}: not a PEFT adapter folder (adapter_config.json and "
                           f"adapter_model.safetensors); give the `adapter` folder of a training run")
    base = resolve_model(model or _trained_on(adapter) or settings.config.model.default, settings.models_path)
    if to == "hf" and full:
        raise SeedlabError(f"{adapter} is already a whole Hugging Face model; use it with --model as it is")
    if to == "hf":
        target = output or adapter.parent / f"{adapter.name}-merged-hf"
        _write_hf(settings, base, adapter, target)
        return target
    if base.format != "gguf":
        raise SeedlabError(f"GGUF export merges into the base model's GGUF file, and {base.name} is a Hugging Face "
                           f"folder; use --to hf, or --model a .gguf of the same weights")
    if quantize not in QUANTIZE:
        raise SeedlabError(f"--quantize {quantize}: choose one of {', '.join(QUANTIZE)}")
    target = output or adapter.parent / f"{adapter.name}-merged-{quantize}.gguf"
    if full:
        _write_gguf(base.path, _full_weights(adapter), target, quantize, replace=True)
    else:
        _write_gguf(base.path, _lora_updates(adapter, config), target, quantize)
    return target


COMPARED = "q8_0"  # how runs that compare models write them (see write_compared)


def write_compared(settings: Settings, model: str, target: Path, adapter: Path | None = None) -> Path:
    """`model`, or `adapter` merged into it, as a q8_0 GGUF at `target`. Runs that compare a starting model with
    tuned ones (`judge train`, `tao run`) write every one of them this way, so only the tuning differs."""
    if adapter is None:
        return requantize(settings, model, target, COMPARED)
    return convert(settings, adapter, "gguf", COMPARED, model=model, output=target)


def merged_file(settings: Settings, adapter: Path, model: str | None = None,
                echo: Callable[[str], None] | None = None) -> Path:
    """`adapter` merged into `model` (default: the model it was trained from) as the q8_0 GGUF that judges and
    comparisons load on llama.cpp, written beside the adapter once and again when its weights are newer than the
    file: `<adapter>-merged-q8_0.gguf` (what `model convert` writes by default), or
    `<adapter>-<model file>-merged-q8_0.gguf` when `model` is another file than the one it was trained from."""
    trained = _trained_on(adapter) or settings.config.model.default
    base = resolve_model(model or trained, settings.models_path)
    try:
        own = base if not model else resolve_model(trained, settings.models_path)
    except ModelError:  # the model it was trained from is gone: then `model` is another one
        own = None
    suffix = "" if own is not None and base.path == own.path else f"-{base.path.stem}"
    target = adapter.parent / f"{adapter.name}{suffix}-merged-{COMPARED}.gguf"
    weights = [p for p in (adapter / "adapter_model.safetensors", adapter / "model.safetensors") if p.is_file()]
    if not target.is_file() or any(p.stat().st_mtime > target.stat().st_mtime for p in weights):
        if echo:
            echo(f"merging {adapter} into {target}")
        write_compared(settings, str(base.path), target, adapter)
    return target


def compared_base(settings: Settings, model: str) -> Path:
    """`model` written as `merged_file` writes an adapter, with no update, once: under the models folder, named
    for the file's size and time so that a changed file is written again."""
    ref = resolve_model(model, settings.models_path)
    stat = ref.path.stat()
    target = settings.models_path / "compared" / f"{ref.path.stem}-{stat.st_size}-{int(stat.st_mtime)}-{COMPARED}.gguf"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        requantize(settings, str(ref.path), target, COMPARED)
    return target


def requantize(settings: Settings, model: str, target: Path, quantize: str = "q8_0") -> Path:
    """The GGUF model written through the same path as a merged adapter, with no update: a baseline whose
    numerics match the models `convert` writes."""
    base = resolve_model(model, settings.models_path)
    if base.format != "gguf":
        raise SeedlabError(f"{base.name} is a Hugging Face folder; a GGUF baseline needs a .gguf model")
    _write_gguf(base.path, {}, target, quantize)
    return target


def _trained_on(adapter: Path) -> str | None:
    """The model a training run was started with (an adapter sits at RUN/adapter or RUN/phase-X/final)."""
    for folder in (adapter.parent, adapter.parent.parent):
        options = read_json_object(folder / "run.json").get("options")
        if isinstance(options, dict):
            return options.get("model")
    return None


def _lora_updates(adapter: Path, config: dict[str, Any]) -> dict[str, Any]:
    """Hugging Face module name (model.layers.0.self_attn.q_proj) -> its dense update (out x in, float32)."""
    from safetensors.numpy import load_file

    if config.get("use_dora") or config.get("peft_type", "LORA") != "LORA":
        raise SeedlabError(f"{adapter}: only plain LoRA adapters can be merged into GGUF")
    rank = int(config["r"])
    scale = float(config["lora_alpha"]) / (rank ** 0.5 if config.get("use_rslora") else rank)
    weights = load_file(str(adapter / "adapter_model.safetensors"))
    updates = {}
    for name, a in weights.items():
        if ".lora_A." not in name:
            continue
        b = weights[name.replace(".lora_A.", ".lora_B.")]
        module = name.split(".lora_A.")[0].removeprefix("base_model.model.")
        updates[module] = (b.astype("float32") @ a.astype("float32")) * scale
    if not updates:
        raise SeedlabError(f"{adapter}: the adapter holds no LoRA weights")
    return updates


def _full_weights(folder: Path) -> dict[str, Any]:
    """Hugging Face module name -> weight (float32) of a whole fine-tuned model."""
    from safetensors.numpy import load_file

    weights = load_file(str(folder / "model.safetensors"))
    return {name.removesuffix(".weight"): value.astype("float32") for name, value in weights.items()
            if name.endswith(".weight")}


def _write_gguf(base: Path, updates: dict[str, Any], target: Path, quantize: str, replace: bool = False) -> None:
    """The base GGUF with `updates` added to its tensors (or, with `replace`, put in their place)."""
    import gguf

    reader = gguf.GGUFReader(base)
    arch = str(reader.fields["general.architecture"].contents())
    blocks = int(reader.fields[f"{arch}.block_count"].contents())
    names = gguf.get_tensor_name_map(_arch_enum(arch), blocks)
    by_gguf = {}
    for module, update in updates.items():
        gguf_name = names.get_name(module)
        if gguf_name is None:
            raise SeedlabError(f"the adapter changes {module}, which has no GGUF counterpart in {arch}")
        by_gguf[gguf_name + ".weight"] = _to_gguf_layout(module, update, reader, arch)
    unmatched = set(by_gguf) - {tensor.name for tensor in reader.tensors}
    if unmatched:
        raise SeedlabError(f"{base}: {len(unmatched)} adapter tensors match no tensor of the base GGUF")
    # The gguf writer checks the room for each tensor and fails with an OSError of no errno: check the whole first
    # (1-D tensors stay float32 and are a rounding error here).
    needed = sum(int(t.n_elements) for t in reader.tensors) * (34 / 32 if quantize == "q8_0" else 2)
    target.parent.mkdir(parents=True, exist_ok=True)
    if shutil.disk_usage(target.parent).free < needed:
        raise OSError(errno.ENOSPC, f"No space left on device ({needed / 1e6:.0f} MB needed)", str(target.parent))
    staging = target.with_name(target.name + ".partial")
    try:
        _write_tensors(reader, by_gguf, staging, arch, quantize, replace)
    except Exception as exc:
        full = disk_full_error(target.parent)
        staging.unlink(missing_ok=True)  # a half-written file gives its space back
        if full:
            raise full from exc
        raise
    staging.replace(target)


def _write_tensors(reader: Any, by_gguf: dict[str, Any], staging: Path, arch: str, quantize: str,
                   replace: bool) -> None:
    """The base's metadata and tensors, with the updates applied, into `staging`."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(staging, arch)
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        value = QUANTIZE[quantize] if key == "general.file_type" else field.contents()
        sub_type = field.types[1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(key, value, field.types[0], sub_type=sub_type)
    for tensor in reader.tensors:
        weight = gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
        if tensor.name in by_gguf:
            weight = by_gguf[tensor.name] if replace else weight + by_gguf[tensor.name]
        if weight.ndim == 1:
            writer.add_tensor(tensor.name, weight)  # norms stay float32, as llama.cpp expects
        elif quantize == "q8_0" and weight.shape[-1] % 32 == 0:  # q8_0 packs rows in blocks of 32
            writer.add_tensor(tensor.name, gguf.quants.quantize(weight, gguf.GGMLQuantizationType.Q8_0),
                              raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            writer.add_tensor(tensor.name, weight.astype(np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _arch_enum(arch: str) -> Any:
    import gguf

    for value, name in gguf.MODEL_ARCH_NAMES.items():
        if name == arch:
            return value
    raise SeedlabError(f"GGUF architecture {arch!r} is unknown to the gguf package")


def _to_gguf_layout(module: str, update: Any, reader: Any, arch: str) -> Any:
    """llama.cpp stores a llama model's q and k rows interleaved per head differently from Hugging Face; the
    update gets the same row permutation the weights had when the GGUF was made."""
    if arch != "llama" or not module.endswith(("q_proj", "k_proj")):
        return update
    key = "head_count" if module.endswith("q_proj") else "head_count_kv"
    heads = int(reader.fields[f"llama.attention.{key}"].contents())
    rows, cols = update.shape
    return update.reshape(heads, 2, rows // heads // 2, cols).swapaxes(1, 2).reshape(rows, cols)


def _write_hf(settings: Settings, base: ModelRef, adapter: Path, target: Path) -> None:
    import torch
    import transformers
    from peft import PeftModel

    from seedlab.backends import hf_copy

    folder = hf_copy(base, settings.models_path)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    merged.save_pretrained(staging, safe_serialization=True)
    transformers.AutoTokenizer.from_pretrained(folder).save_pretrained(staging)
    (staging / "seedlab-merge.json").write_text(json.dumps({"base": str(base.path), "adapter": str(adapter)}))
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
