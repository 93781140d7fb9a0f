"""The embedded backend: llama-cpp-python runs a GGUF model in this process."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import random
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from seedlab.backends._models import ModelError, check_gguf
from seedlab.backends._types import Request, Result


def available_cores() -> int:
    """Cores this process may run on (cgroup/affinity aware where the OS tells)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


class LlamaCppBackend:
    """One loaded GGUF model (or `slots` copies that decode in parallel), reused across calls."""

    def __init__(self, model_path: Path, model_id: str | None = None, n_ctx: int = 4096, n_batch: int = 512,
                 threads: int = 0, slots: int = 1, adapter: Path | None = None, seed: int = 0) -> None:
        check_gguf(model_path)
        if adapter is not None:
            check_gguf(adapter)
        self.model_id = model_id or model_path.stem
        self.seed = seed
        cores = threads or available_cores()
        per_slot = max(1, cores // slots)
        self._slots: queue.Queue[Any] = queue.Queue()
        self._all: list[Any] = []
        for _ in range(slots):
            llm = _load(model_path, n_ctx, n_batch, per_slot, adapter, seed)
            self._all.append(llm)
            self._slots.put(llm)
        self._grammars: dict[str, Any] = {}
        self._grammar_lock = threading.Lock()
        self.n_ctx = n_ctx

    def complete(self, requests: Sequence[Request]) -> list[Result]:
        jobs = [(r, i) for r in requests for i in range(r.n)]
        if len(self._all) == 1:
            outputs = [self._one(r, i) for r, i in jobs]
        else:
            with ThreadPoolExecutor(max_workers=len(self._all)) as pool:
                outputs = list(pool.map(lambda job: self._one(*job), jobs))
        results, at = [], 0
        for request in requests:
            chunk = outputs[at: at + request.n]
            at += request.n
            results.append(Result(
                texts=[text for text, _, _, _ in chunk],
                prompt_tokens=sum(p for _, p, _, _ in chunk),
                completion_tokens=sum(c for _, _, c, _ in chunk),
                finish_reasons=[f for _, _, _, f in chunk],
            ))
        return results

    def stream(self, request: Request) -> Iterator[str]:
        with self._slot() as llm:
            try:
                for chunk in self._call(llm, request, 0, stream=True):
                    choice = chunk["choices"][0]
                    text = choice.get("text") if request.prompt is not None else choice["delta"].get("content")
                    if text:
                        yield text
            except ValueError as exc:  # a streamed call checks the prompt's size when the first chunk is asked for
                raise self._context_error(exc) from exc

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` under this model's tokenizer."""
        with self._slot() as llm:
            return len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def close(self) -> None:
        for llm in self._all:
            llm.close()
        self._all.clear()

    def _one(self, request: Request, index: int) -> tuple[str, int, int, str]:
        with self._slot() as llm:
            out = self._call(llm, request, index, stream=False)
        choice = out["choices"][0]
        text = choice["text"] if request.prompt is not None else choice["message"]["content"] or ""
        usage = out.get("usage") or {}
        return text, usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0), choice.get("finish_reason") or ""

    def _call(self, llm: Any, request: Request, index: int, stream: bool) -> Any:
        seed = (request.seed if request.seed is not None else random.randrange(2**31)) + index
        options: dict[str, Any] = {
            "temperature": request.temperature, "top_p": request.top_p, "max_tokens": request.max_tokens,
            "stop": request.stop or None, "seed": seed, "stream": stream,
        }
        if request.json_schema is not None:
            options["grammar"] = self._grammar(request.json_schema)
        try:
            if request.prompt is not None:
                return llm.create_completion(request.prompt, **options)
            return llm.create_chat_completion(messages=request.messages, **options)
        except ValueError as exc:  # llama-cpp-python's error for prompts over the context size
            raise self._context_error(exc) from exc

    def _context_error(self, exc: ValueError) -> ModelError:
        return ModelError(f"{self.model_id}: {exc}; shorten the prompt or raise llama_cpp.n_ctx")

    def _grammar(self, schema: dict[str, Any]) -> Any:
        from llama_cpp import LlamaGrammar

        key = json.dumps(schema, sort_keys=True)
        with self._grammar_lock:
            if key not in self._grammars:
                self._grammars[key] = LlamaGrammar.from_json_schema(key, verbose=False)
            return self._grammars[key]

    @contextlib.contextmanager
    def _slot(self) -> Iterator[Any]:
        llm = self._slots.get()
        try:
            yield llm
        finally:
            self._slots.put(llm)


def _load(path: Path, n_ctx: int, n_batch: int, threads: int, adapter: Path | None, seed: int) -> Any:
    from llama_cpp import Llama

    try:
        return Llama(model_path=str(path), n_ctx=n_ctx, n_batch=n_batch, n_ubatch=n_batch, n_threads=threads,
                     n_threads_batch=threads, lora_path=str(adapter) if adapter else None, seed=seed,
                     verbose=False)
    except (ValueError, RuntimeError) as exc:
        what = f"{path}" + (f" with adapter {adapter}" if adapter else "")
        raise ModelError(f"llama.cpp cannot load {what}: damaged or cut short? download it again") from exc
