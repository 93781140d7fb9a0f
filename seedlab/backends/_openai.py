"""Any OpenAI-compatible server (vLLM, llama.cpp's server, `seedlab model serve`), with concurrent requests."""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from seedlab.backends._models import ModelError
from seedlab.backends._types import Request, Result


class EndpointError(ModelError):
    """The endpoint cannot be reached, refuses the request, or answers something unusable."""


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


@contextlib.contextmanager
def _translate_errors(url: str) -> Iterator[None]:
    """Turn the client's exceptions into one-line EndpointErrors naming the URL and what to do."""
    import openai

    try:
        yield
    except openai.APIConnectionError as exc:
        raise EndpointError(f"cannot reach {url} ({exc.__cause__ or exc}); is the server running?") from exc
    except openai.APIStatusError as exc:
        raise EndpointError(f"{url} answered HTTP {exc.status_code}: {_short(exc.message)}") from exc
    except (openai.APIError, ValueError, TypeError, AttributeError) as exc:
        message = f"{url} answered something that is not an OpenAI-compatible response ({_short(str(exc))})"
        raise EndpointError(message) from exc


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 200 else text[:197] + "..."
