"""The model as the trainer holds it: Hugging Face weights loaded for a reference, with LoRA layers added."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from seedlab.config import Settings, TrainConfig
from seedlab.train._attention import use_short_attention
from seedlab.train._loop import use_bf16

ModelLoader = Callable[[str], tuple[Any, Any]]  # a model reference -> (model, tokenizer); tests pass a tiny one


def load_model(settings: Settings, reference: str, scalar_head: bool = False) -> tuple[Any, Any]:
    """(model, tokenizer) in fp32 for a registry name, .gguf or Hugging Face folder (a GGUF is converted once
    into the cache under `settings`' models folder). With `scalar_head` the language-model head is replaced by a
    new one-number head read at the last token (a reward model's backbone)."""
    import torch
    import transformers

    from seedlab.backends import hf_copy, pad_token_id, resolve_model

    folder = hf_copy(resolve_model(reference, settings.models_path), settings.models_path)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    if not scalar_head:
        return transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32), tokenizer
    model = transformers.AutoModelForSequenceClassification.from_pretrained(folder, num_labels=1,
                                                                            dtype=torch.float32)
    model.config.pad_token_id = pad_token_id(tokenizer)  # the score is read at the last token that is not padding
    return model, tokenizer


def model_loader(settings: Settings, given: ModelLoader | None = None) -> ModelLoader:
    """`given`, else load_model with these settings."""
    return given or (lambda reference: load_model(settings, reference))


def prepare_model(model: Any, config: TrainConfig, full: bool, device: str, task: str = "CAUSAL_LM") -> Any:
    """The model as it trains: LoRA layers added (unless `full`), on `device`, frozen weights in bf16 where
    bf16 autocast runs (autocast would otherwise re-cast them on every step), with the faster attention for short
    rows on CPU. `task` "SEQ_CLS" also trains the scalar head of a reward model."""
    import torch

    if device == "cpu":
        use_short_attention(model)
    core = (model if full else _with_lora(model, config, task)).to(device)
    if device == "cpu" and not full:
        for layer in core.modules():
            _add_in_one_product(layer)
    if use_bf16(device.split(":")[0], config.precision):
        for weight in core.parameters():
            if not weight.requires_grad:
                weight.data = weight.data.to(torch.bfloat16)
    return core


def _with_lora(model: Any, config: TrainConfig, task: str) -> Any:
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=config.target_modules, task_type=task)
    return get_peft_model(model, lora)


def _add_in_one_product(layer: Any) -> None:
    """Give a peft LoRA linear layer a forward that adds its low-rank update to the frozen layer's output in one
    matrix product (addmm: output + scaling x down @ B^T) instead of peft's product, scaling and addition, each a
    pass over the [tokens x outputs] output. Measured on a 2-core bf16 CPU, one 576 -> 1,536 projection of 1,169
    tokens, forward and backward: frozen layer alone 10 ms, with peft's LoRA 14.6, with this 12.4."""
    import types

    from peft.tuners.lora import Linear

    if isinstance(layer, Linear):
        # bound to the layer, so a deep copy of the model binds to its own copy
        layer.forward = types.MethodType(_one_product_forward, layer)  # type: ignore[method-assign]


def _one_product_forward(layer: Any, x: Any, *args: Any, **kwargs: Any) -> Any:
    """The plain case (one adapter, no dropout, not merged, no variant such as DoRA, no extra arguments) in one
    addmm; anything else runs peft's own forward."""
    import torch

    names = layer.active_adapters
    name = names[0] if len(names) == 1 else None
    if (args or kwargs or name is None or layer.disable_adapters or layer.merged or name not in layer.lora_A
            or name in layer.lora_variant or not isinstance(layer.lora_dropout[name], torch.nn.Identity)):
        return type(layer).forward(layer, x, *args, **kwargs)
    result = layer.base_layer(x)
    down = torch.nn.functional.linear(x.reshape(-1, x.shape[-1]), layer.lora_A[name].weight)
    total = torch.addmm(result.reshape(-1, result.shape[-1]), down, layer.lora_B[name].weight.t(),
                        alpha=layer.scaling[name])
    return total.view(result.shape)
