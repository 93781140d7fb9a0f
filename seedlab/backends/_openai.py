"""Any OpenAI-compatible server (vLLM, llama.cpp's server, `seedlab model serve`), with concurrent requests."""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from seedlab.backends._models import ModelError
from seedlab.backends._types import Request, Result


class EndpointError(ModelError):
    """The endpoint cannot be reached, refuses the request, or answers something unusable."""

    def __init__(self, message: str, gone: bool = False) -> None:
        super().__init__(message)
        self.gone = gone  # unreachable or failing on its side (5xx): another server of a pool may take the request


class OpenAIBackend:
    """Sends requests with `concurrency` in flight; the client retries 429/5xx with exponential backoff."""

    def __init__(self, url: str, model: str | None = None, api_key_env: str = "OPENAI_API_KEY",
                 concurrency: int = 8, timeout_s: float = 120.0, max_retries: int = 3) -> None:
        import openai

        self.url = url.rstrip("/")
        self.concurrency = max(1, concurrency)
        # The key comes from the environment only, never from a command line that shell history keeps.
        self._client: Any = openai.OpenAI(base_url=self.url, api_key=os.environ.get(api_key_env) or "none",
                                     timeout=timeout_s, max_retries=max_retries)
        self.model_id = model or self._first_model()

    def complete(self, requests: Sequence[Request]) -> list[Result]:
        if len(requests) <= 1:
            return [self._one(r) for r in requests]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(self._one, requests))

    def stream(self, request: Request) -> Iterator[str]:
        with self._errors():
            if request.prompt is not None:
                for chunk in self._client.completions.create(**self._options(request, 1), prompt=request.prompt,
                                                             stream=True):
                    if chunk.choices and chunk.choices[0].text:
                        yield chunk.choices[0].text
                return
            for event in self._client.chat.completions.create(**self._options(request, 1),
                                                              messages=request.messages, stream=True):
                if event.choices and event.choices[0].delta.content:
                    yield event.choices[0].delta.content

    def close(self) -> None:
        self._client.close()

    def _one(self, request: Request) -> Result:
        result = Result(texts=[])
        # Servers that ignore `n` (some do) answer once; ask again until there are n samples.
        while len(result.texts) < request.n:
            missing = request.n - len(result.texts)
            with self._errors():
                if request.prompt is not None:
                    out: Any = self._client.completions.create(**self._options(request, missing, len(result.texts)),
                                                               prompt=request.prompt)
                    texts = [c.text for c in out.choices]
                else:
                    out = self._client.chat.completions.create(**self._options(request, missing, len(result.texts)),
                                                               messages=request.messages)
                    texts = [c.message.content or "" for c in out.choices]
            if not texts:
                raise EndpointError(f"{self.url} answered with no choices; is it an OpenAI-compatible server?")
            result.texts += texts[:missing]
            result.finish_reasons += [c.finish_reason or "" for c in out.choices][:missing]
            if out.usage:
                result.prompt_tokens += out.usage.prompt_tokens
                result.completion_tokens += out.usage.completion_tokens
        return result

    def _options(self, request: Request, n: int, offset: int = 0) -> dict[str, Any]:
        seed = request.seed if request.seed is not None else random.randrange(2**31)
        options: dict[str, Any] = {
            "model": self.model_id, "temperature": request.temperature, "top_p": request.top_p,
            "max_tokens": request.max_tokens, "seed": seed + offset,
        }
        if n > 1:
            options["n"] = n
        if request.stop:
            options["stop"] = request.stop
        if request.json_schema is not None:
            options["response_format"] = {"type": "json_schema",
                                          "json_schema": {"name": "output", "schema": request.json_schema}}
        return options

    def _first_model(self) -> str:
        with self._errors():
            models = list(self._client.models.list())
        if not models:
            raise EndpointError(f"{self.url} lists no models; pass the model name with --model")
        return str(models[0].id)

    def _errors(self) -> contextlib.AbstractContextManager[None]:
        return _translate_errors(self.url)


class EndpointPool:
    """Several servers of one model: each request goes to the next server still up; a server that stops
    answering (connection refused, timeout, 5xx after its retries) is left out and its requests go to the rest."""

    def __init__(self, urls: Sequence[str], model: str | None = None, api_key_env: str = "OPENAI_API_KEY",
                 concurrency: int = 8, timeout_s: float = 120.0, max_retries: int = 3) -> None:
        self.members: list[OpenAIBackend] = []
        self.down: list[str] = []  # why each left-out server was left out
        for url in urls:
            try:  # one retry each: a server that is gone should hand its work over quickly
                self.members.append(OpenAIBackend(url, model, api_key_env, concurrency, timeout_s, min(max_retries, 1)))
            except EndpointError as error:
                if not error.gone:
                    raise
                self.down.append(str(error))
        if not self.members:
            raise EndpointError(f"none of the {len(urls)} endpoints answered: {self.down[0]}")
        models = sorted({m.model_id for m in self.members})
        if len(models) > 1:
            raise EndpointError(f"the endpoints serve different models ({', '.join(models)}); pass --model")
        self.model_id = models[0]
        self.url = ",".join(m.url for m in self.members)
        self.concurrency = concurrency * len(self.members)
        self._up = list(range(len(self.members)))
        self._turn = itertools.count()
        self._lock = threading.Lock()

    def complete(self, requests: Sequence[Request]) -> list[Result]:
        with ThreadPoolExecutor(max_workers=max(1, min(self.concurrency, len(requests)))) as pool:
            return list(pool.map(self._one, requests))

    def stream(self, request: Request) -> Iterator[str]:
        return self.members[self._pick()].stream(request)

    def close(self) -> None:
        for member in self.members:
            member.close()

    def _one(self, request: Request) -> Result:
        while True:
            index = self._pick()
            try:
                return self.members[index]._one(request)
            except EndpointError as error:
                if not error.gone:
                    raise
                self._leave_out(index, error)

    def _pick(self) -> int:
        with self._lock:
            if not self._up:
                raise EndpointError(f"every endpoint stopped answering: {'; '.join(self.down)}", gone=True)
            return self._up[next(self._turn) % len(self._up)]

    def _leave_out(self, index: int, error: EndpointError) -> None:
        with self._lock:
            if index in self._up:
                self._up.remove(index)
                self.down.append(str(error))


@contextlib.contextmanager
def _translate_errors(url: str) -> Iterator[None]:
    """Turn the client's exceptions into one-line EndpointErrors naming the URL and what to do."""
    import openai

    try:
        yield
    except openai.APIConnectionError as exc:
        raise EndpointError(f"cannot reach {url} ({exc.__cause__ or exc}); is the server running?", gone=True) from exc
    except openai.APIStatusError as exc:
        message = f"{url} answered HTTP {exc.status_code}: {_short(exc.message)}"
        raise EndpointError(message, gone=exc.status_code >= 500) from exc
    except (openai.APIError, ValueError, TypeError, AttributeError) as exc:
        message = f"{url} answered something that is not an OpenAI-compatible response ({_short(str(exc))})"
        raise EndpointError(message) from exc


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 200 else text[:197] + "..."
