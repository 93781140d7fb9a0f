"""What every backend takes and returns."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": "..."}


@dataclass(frozen=True)
class Request:
    """One generation request: chat `messages`, or a raw `prompt` for base models; `n` samples."""

    messages: list[Message] | None = None
    prompt: str | None = None
    n: int = 1
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 256
    stop: list[str] = field(default_factory=list)
    json_schema: dict[str, Any] | None = None  # constrain the output to JSON matching this schema
    seed: int | None = None  # sample i uses seed + i, so n samples differ yet reruns repeat

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("a Request needs exactly one of messages or prompt")
        if self.n < 1:
            raise ValueError(f"n must be at least 1, got {self.n}")


@dataclass
class Result:
    """The `n` texts generated for one request, with token counts."""

    texts: list[str]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reasons: list[str] = field(default_factory=list)


class Backend(Protocol):
    """Where text comes from. `complete` is the batch path every stage uses; `stream` serves chat."""

    model_id: str

    def complete(self, requests: Sequence[Request]) -> list[Result]:
        """Answer every request, in order."""
        ...

    def stream(self, request: Request) -> Iterator[str]:
        """Yield the text of one sample of one request as it is generated."""
        ...

    def close(self) -> None:
        """Free the model or connections."""
        ...
