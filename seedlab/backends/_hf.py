"""Hugging Face folders through transformers: slower than llama.cpp, but runs any HF causal LM."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from seedlab.backends._models import ModelError
from seedlab.backends._types import Request, Result

BATCH = 16  # greedy requests generated together


def pad_token_id(tokenizer: Any) -> int:
    """The id a Hugging Face tokenizer pads with: its pad token, else end-of-sequence (many chat models lack one)."""
    return int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)


def _batchable(request: Request) -> bool:
    return (request.messages is not None and request.n == 1 and request.temperature == 0 and not request.stop
            and request.json_schema is None)


class TransformersBackend:
    """Generates with `model.generate`; JSON-schema constraints need the llama.cpp backend."""

    def __init__(self, path: Path, model_id: str | None = None, adapter: Path | None = None) -> None:
        import torch
        import transformers

        self.model_id = model_id or path.name
        try:
            self._tokenizer: Any = transformers.AutoTokenizer.from_pretrained(path)
            self._model: Any = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        except (OSError, ValueError) as exc:
            raise ModelError(f"transformers cannot load {path} ({exc}); is it a causal language model folder?") from exc
        if adapter is not None:
            from peft import PeftModel

            try:
                self._model = PeftModel.from_pretrained(self._model, str(adapter))
            except (OSError, ValueError, RuntimeError) as exc:
                raise ModelError(f"cannot apply adapter {adapter} to {self.model_id} ({exc})") from exc
            self.model_id = f"{self.model_id}+{adapter.name}"
        self._model.eval()
        self._lock = threading.Lock()
        self._pad_id = pad_token_id(self._tokenizer)

    def complete(self, requests: Sequence[Request]) -> list[Result]:
        results: dict[int, Result] = {}
        greedy = [i for i, r in enumerate(requests) if _batchable(r)]
        for start in range(0, len(greedy), BATCH):
            chunk = greedy[start:start + BATCH]
            results.update(zip(chunk, self._greedy_batch([requests[i] for i in chunk]), strict=True))
        return [results[i] if i in results else self._one(r) for i, r in enumerate(requests)]

    def _greedy_batch(self, requests: list[Request]) -> list[Result]:
        """Greedy chat answers generated together, left-padded: a CPU decodes a batch step in little more time
        than one sequence's step."""
        texts = [self._tokenizer.apply_chat_template(r.messages, add_generation_prompt=True, tokenize=False)
                 for r in requests]
        side, self._tokenizer.padding_side = self._tokenizer.padding_side, "left"
        try:
            inputs = self._tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        finally:
            self._tokenizer.padding_side = side
        longest = max(r.max_tokens for r in requests)
        options = {"max_new_tokens": longest, "do_sample": False, "pad_token_id": self._pad_id}
        output = self._generate(inputs, options, None)
        results = []
        for k, request in enumerate(requests):
            new = output[k][inputs["input_ids"].shape[1]:][: request.max_tokens]
            ended = (new == self._tokenizer.eos_token_id).nonzero()
            length = int(ended[0]) if len(ended) else len(new)
            text = self._tokenizer.decode(new[:length], skip_special_tokens=True)
            prompt = int(inputs["attention_mask"][k].sum())
            used = length + 1 if len(ended) else length  # the end-of-turn token counts, as in one-by-one
            results.append(Result([text], prompt, used, ["length" if used >= request.max_tokens else "stop"]))
        return results

    def stream(self, request: Request) -> Iterator[str]:
        import transformers

        streamer = transformers.TextIteratorStreamer(self._tokenizer, skip_prompt=True, skip_special_tokens=True)
        inputs, options = self._prepare(request, 0)
        worker = threading.Thread(target=self._generate, args=(inputs, options, streamer))
        worker.start()
        yield from streamer
        worker.join()

    def close(self) -> None:
        pass

    def _one(self, request: Request) -> Result:
        texts, finish, prompt_tokens, completion_tokens = [], [], 0, 0
        for index in range(request.n):
            inputs, options = self._prepare(request, index)
            output = self._generate(inputs, options, None)
            new = output[0][inputs["input_ids"].shape[1]:]
            text = self._tokenizer.decode(new, skip_special_tokens=True)
            for stop in request.stop:  # generate() stops after the stop string; trim it like an API would
                text = text.split(stop)[0]
            texts.append(text)
            finish.append("length" if len(new) >= request.max_tokens else "stop")
            prompt_tokens += int(inputs["input_ids"].shape[1])
            completion_tokens += len(new)
        return Result(texts, prompt_tokens, completion_tokens, finish)

    def _prepare(self, request: Request, index: int) -> tuple[Any, dict[str, Any]]:
        import torch

        if request.json_schema is not None:
            raise ModelError("JSON-schema constrained output needs a GGUF model (llama.cpp) or an endpoint")
        if request.prompt is not None:
            inputs = self._tokenizer(request.prompt, return_tensors="pt")
        else:
            inputs = self._tokenizer.apply_chat_template(request.messages, add_generation_prompt=True,
                                                         return_tensors="pt", return_dict=True)
        if request.seed is not None:
            torch.manual_seed(request.seed + index)
        options: dict[str, Any] = {"max_new_tokens": request.max_tokens, "do_sample": request.temperature > 0,
                                   "pad_token_id": self._tokenizer.eos_token_id}
        if request.temperature > 0:
            options.update(temperature=request.temperature, top_p=request.top_p)
        if request.stop:
            options.update(stop_strings=request.stop, tokenizer=self._tokenizer)
        return inputs, options

    def _generate(self, inputs: Any, options: dict[str, Any], streamer: Any) -> Any:
        import torch

        with self._lock, torch.inference_mode():
            return self._model.generate(**inputs, **options, streamer=streamer)
