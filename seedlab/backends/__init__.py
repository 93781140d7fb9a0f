"""Where text comes from: the embedded llama.cpp model, an OpenAI-compatible endpoint, or a fake for tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from seedlab.backends._convert import hf_copy, llama_file
from seedlab.backends._fake import FakeBackend
from seedlab.backends._hf import pad_token_id
from seedlab.backends._models import (
    DEFAULT_MODEL,
    REGISTRY,
    ModelError,
    ModelRef,
    check_gguf,
    download_model,
    file_sha256,
    list_models,
    resolve_model,
)
from seedlab.backends._types import Backend, Message, Request, Result
from seedlab.config import Settings

__all__ = [
    "DEFAULT_MODEL", "REGISTRY", "Backend", "FakeBackend", "Message", "ModelError", "ModelRef", "Request", "Result",
    "check_gguf", "download_model", "endpoint_urls", "file_sha256", "hf_copy", "is_adapter", "list_models",
    "llama_file", "make_backend", "model_identity", "pad_token_id", "resolve_model",
]


def endpoint_urls(settings: Settings, given: str | Sequence[str] | None = None) -> list[str]:
    """The OpenAI-compatible servers to use: those given (one URL or several), else endpoint.url and
    endpoint.urls from config; empty when the model runs in-process."""
    if given:
        return [given] if isinstance(given, str) else list(given)
    endpoint = settings.config.endpoint
    return ([endpoint.url] if endpoint.url else []) + list(endpoint.urls)


def model_identity(settings: Settings, ref: ModelRef) -> dict[str, str | None]:
    """A model as cache keys name it: its name and the sha256 of the file llama.cpp decodes (the default model's Q8_0
    copy, under `llama_cpp.weights`), so work made with other weights is made again; no hash for a HF folder."""
    if ref.format != "gguf":
        return {"model": ref.name, "sha256": None}
    path = llama_file(ref, settings.models_path, settings.config.llama_cpp.weights)
    return {"model": ref.name, "sha256": file_sha256(path, settings.models_path)}


def make_backend(settings: Settings, model: str | None = None, endpoint_url: str | Sequence[str] | None = None,
                 adapter: Path | None = None, hf: bool = False) -> Backend:
    """The backend the config and options ask for: an endpoint when a URL is set (several: a pool that spreads
    requests and survives one going away), else the model in-process (on transformers when `hf` is set or a
    PEFT adapter is given, else on llama.cpp for a GGUF model)."""
    urls = endpoint_urls(settings, endpoint_url)
    if urls:
        if adapter is not None:
            raise ModelError("--adapter applies to a local model; load the adapter into the server instead")
        from seedlab.backends._openai import EndpointPool, OpenAIBackend

        e = settings.config.endpoint
        if len(urls) == 1:
            return OpenAIBackend(urls[0], model or e.model, e.api_key_env, e.concurrency, e.timeout_s, e.max_retries)
        return EndpointPool(urls, model or e.model, e.api_key_env, e.concurrency, e.timeout_s, e.max_retries)
    ref = resolve_model(model or settings.config.model.default, settings.models_path)
    peft_adapter = adapter is not None and adapter.is_dir()
    if peft_adapter and not is_adapter(adapter):
        raise ModelError(f"{adapter} is a folder without adapter_config.json; give a `model train` adapter")
    if ref.format == "hf" or peft_adapter or hf:
        if adapter is not None and not peft_adapter:
            raise ModelError(f"{adapter}: a Hugging Face model takes a PEFT adapter folder, not a GGUF file")
        from seedlab.backends._hf import TransformersBackend

        # A PEFT adapter trains on Hugging Face weights, so a GGUF base runs from its cached HF copy.
        return TransformersBackend(hf_copy(ref, settings.models_path), ref.name, adapter)
    if adapter is not None and adapter.suffix != ".gguf":
        raise ModelError(f"{adapter}: give a GGUF LoRA file or a PEFT adapter folder")
    from seedlab.backends._llamacpp import LlamaCppBackend

    llama = settings.config.llama_cpp
    path = llama_file(ref, settings.models_path, llama.weights)
    return LlamaCppBackend(path, ref.name, n_ctx=llama.n_ctx, n_batch=llama.n_batch, threads=llama.threads,
                           slots=llama.slots, adapter=adapter, sequences=llama.sequences,
                           flash_attn=llama.flash_attn)


def is_adapter(path: str | Path | None) -> bool:
    """Whether `path` is a PEFT adapter folder (what `model train` writes), not a model."""
    return path is not None and (Path(path) / "adapter_config.json").is_file()

