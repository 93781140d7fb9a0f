"""A deterministic backend for tests: scripted replies, or a reply computed from the request."""

from __future__ import annotations

import dataclasses
import hashlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence

from seedlab.backends._types import Request, Result

Responder = Callable[[Request, int], str]


class FakeBackend:
    """Replies come from `enqueue`d texts first, then from `responder(request, sample_index)`, else an echo."""

    def __init__(self, responder: Responder | None = None, model_id: str = "fake") -> None:
        self.model_id = model_id
        self.responder = responder
        self.queue: deque[str] = deque()
        self.requests: list[Request] = []  # every request seen, for assertions

    def enqueue(self, *texts: str) -> FakeBackend:
        self.queue.extend(texts)
        return self

    def complete(self, requests: Sequence[Request]) -> list[Result]:
        results = []
        for request in requests:
            self.requests.append(request)
            texts = [self._reply(request, i) for i in range(request.n)]
            prompt_words = len(_prompt_text(request).split())
            results.append(Result(texts, prompt_words, sum(len(t.split()) for t in texts), ["stop"] * request.n))
        return results

    def stream(self, request: Request) -> Iterator[str]:
        text = self.complete([dataclasses.replace(request, n=1)])[0].texts[0]
        for i, word in enumerate(text.split(" ")):
            yield word if i == 0 else " " + word

    def close(self) -> None:
        pass

    def _reply(self, request: Request, index: int) -> str:
        if self.queue:
            return self.queue.popleft()
        if self.responder is not None:
            return self.responder(request, index)
        digest = hashlib.sha256(_prompt_text(request).encode()).hexdigest()[:8]
        return f"fake reply {digest} #{index}"


def _prompt_text(request: Request) -> str:
    if request.prompt is not None:
        return request.prompt
    return "\n".join(m.get("content", "") for m in request.messages or [])
