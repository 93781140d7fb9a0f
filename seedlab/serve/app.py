"""An OpenAI-compatible HTTP server over any backend, logging every request's prompt for TAO."""

from __future__ import annotations

import hmac
import itertools
import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from seedlab.backends import Backend, ModelError
from seedlab.backends import Request as GenRequest
from seedlab.prompts import rotated

MAX_BODY = 4 << 20  # bytes of a request body; a long prompt is tens of KiB
MAX_TOKENS = 1 << 16  # an answer longer than any context window seedlab serves is a mistake, refused up front


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[TextPart]  # some clients send a list of text parts

    def plain(self) -> dict[str, str]:
        text = self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)
        return {"role": self.role, "content": text}


class _Sampling(BaseModel):
    model_config = ConfigDict(extra="ignore")  # OpenAI clients send fields we do not use

    model: str | None = None
    temperature: float = Field(0.7, ge=0, le=2)
    top_p: float = Field(0.95, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS)
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS)
    n: int = Field(1, ge=1, le=16)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    response_format: dict[str, Any] | None = None

    def generation(self, **target: Any) -> GenRequest:
        stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return GenRequest(**target, n=self.n, temperature=self.temperature, top_p=self.top_p,
                          max_tokens=self.max_completion_tokens or self.max_tokens or 256, stop=stop,
                          json_schema=_schema_of(self.response_format), seed=self.seed)


class ChatBody(_Sampling):
    messages: list[ChatMessage] = Field(min_length=1)


class CompletionBody(_Sampling):
    prompt: str


_Body = TypeVar("_Body", bound=_Sampling)


class ApiError(Exception):
    """An error answered in OpenAI's shape: {"error": {"message", "type", "code"}}."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


class PromptLog:
    """Appends one JSON line per request; a lock keeps lines whole under concurrent requests. Past `max_bytes` the
    file rotates: prompts.jsonl -> prompts.jsonl.1 -> ... -> .`keep` (the oldest is dropped)."""

    def __init__(self, path: Path, max_bytes: int = 0, keep: int = 3) -> None:
        self.path, self.max_bytes, self.keep = path, max_bytes, keep
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            if self.max_bytes and self.path.exists() and self.path.stat().st_size + len(line) > self.max_bytes:
                self._rotate()
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()

    def _rotate(self) -> None:
        if self.keep <= 0:
            self.path.unlink()  # no older files kept: the log starts again
            return
        for older in range(self.keep, 0, -1):
            source = self.path if older == 1 else rotated(self.path, older - 1)
            if source.exists():
                source.replace(rotated(self.path, older))


def create_app(backend: Backend, api_key: str | None = None, prompt_log: Path | None = None,
               log_max_bytes: int = 0, log_keep: int = 3) -> FastAPI:
    """The FastAPI app serving `backend` under /v1; the prompt log rotates past `log_max_bytes` (0: never)."""
    app = FastAPI(title="seedlab", docs_url=None, redoc_url=None)
    log = PromptLog(prompt_log, log_max_bytes, log_keep) if prompt_log else None

    @app.exception_handler(ApiError)
    def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": {"message": exc.message, "type": exc.kind, "code": exc.status}}, exc.status)

    @app.middleware("http")
    async def _auth(request: Request, call_next: Any) -> Any:
        size = request.headers.get("content-length", "0")
        if not size.isdigit() or int(size) > MAX_BODY:
            error = {"message": f"request body over {MAX_BODY >> 20} MiB", "type": "invalid_request_error",
                     "code": 413}
            return JSONResponse({"error": error}, 413)
        if api_key is not None:
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given.encode(), api_key.encode()):
                error = {"message": "missing or wrong API key", "type": "authentication_error", "code": 401}
                return JSONResponse({"error": error}, 401)
        return await call_next(request)

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": backend.model_id, "object": "model", "owned_by": "seedlab"}]}

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(request: Request) -> Any:
        body = await _parse(request, ChatBody)
        request_id = f"chatcmpl-{uuid.uuid4().hex}"
        messages = [m.plain() for m in body.messages]
        generation = _prepare(backend, body, log, request_id, "chat", {"messages": messages}, messages=messages)
        if body.stream:
            pieces = await run_in_threadpool(_start_stream, backend, generation)
            return _sse(_chat_chunks(backend, pieces, request_id))
        result = await run_in_threadpool(_complete, backend, generation)
        choices = [{"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": reason or "stop"}
                   for i, (text, reason) in enumerate(zip(result.texts, _reasons(result), strict=True))]
        return _envelope(request_id, "chat.completion", backend.model_id, choices, result)

    @app.post("/v1/completions", response_model=None)
    async def completions(request: Request) -> Any:
        body = await _parse(request, CompletionBody)
        request_id = f"cmpl-{uuid.uuid4().hex}"
        generation = _prepare(backend, body, log, request_id, "completions", {"prompt": body.prompt},
                              prompt=body.prompt)
        if body.stream:
            pieces = await run_in_threadpool(_start_stream, backend, generation)
            return _sse(_completion_chunks(backend, pieces, request_id))
        result = await run_in_threadpool(_complete, backend, generation)
        choices = [{"index": i, "text": text, "finish_reason": reason or "stop"}
                   for i, (text, reason) in enumerate(zip(result.texts, _reasons(result), strict=True))]
        return _envelope(request_id, "text_completion", backend.model_id, choices, result)

    return app


def _prepare(backend: Backend, body: _Sampling, log: PromptLog | None, request_id: str, endpoint: str,
             record: dict[str, Any], **target: Any) -> GenRequest:
    """The generation a request asks for, checked against what this server serves; the prompt logged."""
    if body.model not in (None, backend.model_id):
        raise ApiError(404, f"model {body.model!r} not found; this server serves {backend.model_id!r}",
                       "not_found_error")
    if body.stream and body.n > 1:
        raise ApiError(400, "streaming answers one sample; use n=1 with stream=true")
    generation = body.generation(**target)
    if log is not None:
        log.append({"id": request_id, "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                    "endpoint": endpoint, "model": backend.model_id, **record})
    return generation


async def _parse(request: Request, model: type[_Body]) -> _Body:
    """The JSON body as `model`, whatever the Content-Type (curl -d sends form encoding)."""
    raw = bytearray()
    async for part in request.stream():  # counted as it arrives: a chunked body has no Content-Length to check
        raw += part
        if len(raw) > MAX_BODY:
            raise ApiError(413, f"request body over {MAX_BODY >> 20} MiB")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the body is not valid JSON ({exc})") from exc
    except RecursionError as exc:
        raise ApiError(400, "the body is JSON nested too deeply") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        raise ApiError(400, f"invalid request: {where}: {first.get('msg', 'invalid')}") from exc


def _schema_of(response_format: dict[str, Any] | None) -> dict[str, Any] | None:
    if not response_format or response_format.get("type") == "text":
        return None
    if response_format.get("type") == "json_object":
        return {"type": "object"}
    if response_format.get("type") == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if isinstance(schema, dict):
            return schema
    raise ApiError(400, "response_format must be text, json_object, or json_schema with a schema")


def _complete(backend: Backend, generation: GenRequest) -> Any:
    try:
        return backend.complete([generation])[0]
    except ModelError as exc:
        raise ApiError(400, str(exc)) from exc


def _start_stream(backend: Backend, generation: GenRequest) -> Iterator[str]:
    # Take the first piece before answering, so an error such as a too-long prompt is a 400, not a cut stream.
    pieces = iter(backend.stream(generation))
    try:
        first = next(pieces, None)
    except ModelError as exc:
        raise ApiError(400, str(exc)) from exc
    return pieces if first is None else itertools.chain([first], pieces)


def _reasons(result: Any) -> list[str]:
    return list(result.finish_reasons) + ["stop"] * (len(result.texts) - len(result.finish_reasons))


def _envelope(request_id: str, kind: str, model: str, choices: list[dict[str, Any]], result: Any) -> dict[str, Any]:
    usage = {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
             "total_tokens": result.prompt_tokens + result.completion_tokens}
    return {"id": request_id, "object": kind, "created": int(time.time()), "model": model, "choices": choices,
            "usage": usage}


def _sse(events: Iterator[dict[str, Any]]) -> StreamingResponse:
    def lines() -> Iterator[str]:
        for event in events:
            yield f"data: {json.dumps(event, ensure_ascii=False)}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(lines(), media_type="text/event-stream")


def _chat_chunks(backend: Backend, pieces: Iterator[str], request_id: str) -> Iterator[dict[str, Any]]:
    def chunk(delta: dict[str, str], finish: str | None) -> dict[str, Any]:
        return {"id": request_id, "object": "chat.completion.chunk", "created": int(time.time()),
                "model": backend.model_id, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    yield chunk({"role": "assistant"}, None)
    for piece in pieces:
        yield chunk({"content": piece}, None)
    yield chunk({}, "stop")


def _completion_chunks(backend: Backend, pieces: Iterator[str], request_id: str) -> Iterator[dict[str, Any]]:
    for piece in pieces:
        yield {"id": request_id, "object": "text_completion", "created": int(time.time()), "model": backend.model_id,
               "choices": [{"index": 0, "text": piece, "finish_reason": None}]}
    yield {"id": request_id, "object": "text_completion", "created": int(time.time()), "model": backend.model_id,
           "choices": [{"index": 0, "text": "", "finish_reason": "stop"}]}
