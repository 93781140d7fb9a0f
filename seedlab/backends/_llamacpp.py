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

from seedlab.backends._batched import BatchDecoder, Job
from seedlab.backends._models import ModelError, check_gguf
from seedlab.backends._types import Request, Result


def available_cores() -> int:
    """Cores this process may run on (cgroup/affinity aware where the OS tells)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


class LlamaCppBackend:
    """One loaded GGUF model, reused across calls: `complete` decodes up to `sequences` samples together in one
    batch (see _batched.py); `stream` uses one of `slots` model copies, so that many chats can stream at once."""

    def __init__(self, model_path: Path, model_id: str | None = None, n_ctx: int = 4096, n_batch: int = 512,
                 threads: int = 0, slots: int = 1, adapter: Path | None = None, seed: int = 0,
                 sequences: int = 1, flash_attn: bool = True) -> None:
        if sequences < 1 or slots < 1:
            raise ModelError(f"llama_cpp.sequences ({sequences}) and llama_cpp.slots ({slots}) must be at least 1")
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
            llm = _load(model_path, n_ctx, n_batch, per_slot, adapter, seed, flash_attn)
            self._all.append(llm)
            self._slots.put(llm)
        self._grammars: dict[str, Any] = {}
        self._grammar_lock = threading.Lock()
        self.n_ctx = n_ctx
        self._formatter: Any = None
        self._decoder: BatchDecoder | None = None
        if sequences > 1:
            self._formatter = _chat_formatter(self._all[0])
            self._decoder = BatchDecoder(self._all[0], sequences, n_ctx, n_batch, cores, adapter)

    def complete(self, requests: Sequence[Request]) -> list[Result]:
        jobs = [(r, i) for r in requests for i in range(r.n)]
        if self._decoder is not None and (self._formatter is not None or all(r.prompt is not None for r in requests)):
            outputs = self._batched(jobs)
        elif len(self._all) == 1:
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
        if self._decoder is not None:
            self._decoder.close()
        for llm in self._all:
            llm.close()
        self._all.clear()

    def _batched(self, jobs: list[tuple[Request, int]]) -> list[tuple[str, int, int, str]]:
        assert self._decoder is not None
        batch = [self._job(request, index) for request, index in jobs]
        return [(o.text, o.prompt_tokens, o.completion_tokens, o.finish_reason) for o in self._decoder.run(batch)]

    def _job(self, request: Request, index: int) -> Job:
        """A request's sample as the decoder takes it: the prompt as llama-cpp-python would tokenise it."""
        llm, stop = self._all[0], list(request.stop)
        if request.prompt is not None:
            tokens = llm.tokenize(request.prompt.encode("utf-8"), add_bos=True, special=True)
        else:
            assert self._formatter is not None
            formatted = self._formatter(messages=request.messages)
            tokens = llm.tokenize(formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True)
            stop += [formatted.stop] if isinstance(formatted.stop, str) else list(formatted.stop or [])
        grammar = self._grammar(request.json_schema) if request.json_schema is not None else None
        return Job(tokens, request.max_tokens, request.temperature, request.top_p, self._seed(request, index), stop,
                   grammar)

    def _seed(self, request: Request, index: int) -> int:
        return (request.seed if request.seed is not None else random.randrange(2**31)) + index

    def _one(self, request: Request, index: int) -> tuple[str, int, int, str]:
        with self._slot() as llm:
            out = self._call(llm, request, index, stream=False)
        choice = out["choices"][0]
        text = choice["text"] if request.prompt is not None else choice["message"]["content"] or ""
        usage = out.get("usage") or {}
        return text, usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0), choice.get("finish_reason") or ""

    def _call(self, llm: Any, request: Request, index: int, stream: bool) -> Any:
        seed = self._seed(request, index)
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


def _chat_formatter(llm: Any) -> Any:
    """The chat formatter llama-cpp-python uses for a model whose GGUF carries a chat template (None otherwise:
    its chat requests then run one at a time through `create_chat_completion`)."""
    import llama_cpp
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llm.metadata.get("tokenizer.chat_template")
    if llm.chat_format != "chat_template.default" or not template:
        return None
    vocab = llama_cpp.llama_model_get_vocab(llm.model)

    def text(token: int) -> str:
        return llama_cpp.llama_vocab_get_text(vocab, token).decode("utf-8") if token != -1 else ""

    return Jinja2ChatFormatter(template=template, eos_token=text(llm.token_eos()), bos_token=text(llm.token_bos()),
                               stop_token_ids=[llm.token_eos()])


def _load(path: Path, n_ctx: int, n_batch: int, threads: int, adapter: Path | None, seed: int,
          flash_attn: bool) -> Any:
    from llama_cpp import Llama

    try:
        return Llama(model_path=str(path), n_ctx=n_ctx, n_batch=n_batch, n_ubatch=n_batch, n_threads=threads,
                     n_threads_batch=threads, lora_path=str(adapter) if adapter else None, seed=seed,
                     flash_attn=flash_attn, verbose=False)
    except (ValueError, RuntimeError) as exc:
        what = f"{path}" + (f" with adapter {adapter}" if adapter else "")
        raise ModelError(f"llama.cpp cannot load {what}: damaged or cut short? download it again") from exc
