"""The OpenAI-compatible server over a FakeBackend: shapes, errors, streaming, auth and the prompt log."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from helpers import ServerThread

from seedlab.backends import FakeBackend, ModelError, Request, Result
from seedlab.serve import is_loopback
from seedlab.serve.app import create_app

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
HELLO = [{"role": "user", "content": "hello"}]


def client_for(backend: FakeBackend, log: Path | None = None, api_key: str | None = None) -> TestClient:
    return TestClient(create_app(backend, api_key=api_key, prompt_log=log), raise_server_exceptions=True)


def log_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def sse_events(text: str) -> list[Any]:
    """The data payloads of an event stream, with [DONE] kept as the string."""
    events: list[Any] = []
    for line in text.splitlines():
        if not line:
            continue
        assert line.startswith("data: "), line
        payload = line.removeprefix("data: ")
        events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


def error_of(response: Any) -> str:
    body = response.json()
    assert set(body) == {"error"}
    message = body["error"]["message"]
    assert isinstance(message, str) and message
    return message


# --- well-formed requests ---------------------------------------------------------------------------------------


def test_models_lists_the_backend_model() -> None:
    response = client_for(FakeBackend(model_id="tiny")).get("/v1/models")
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["tiny"]


def test_chat_completion_is_openai_shaped() -> None:
    backend = FakeBackend(model_id="tiny").enqueue("Hi there.")
    response = client_for(backend).post(CHAT, json={"model": "tiny", "messages": HELLO})
    assert response.status_code == 200
    body = response.json()
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert body["model"] == "tiny"
    assert isinstance(body["created"], int)
    assert body["choices"] == [
        {"index": 0, "message": {"role": "assistant", "content": "Hi there."}, "finish_reason": "stop"}]
    usage = body["usage"]
    assert usage["prompt_tokens"] == 1 and usage["completion_tokens"] == 2 and usage["total_tokens"] == 3
    assert backend.requests[0].messages == HELLO
    assert backend.requests[0].prompt is None


def test_completion_with_a_prompt() -> None:
    backend = FakeBackend().enqueue(" world")
    response = client_for(backend).post(COMPLETIONS, json={"prompt": "hello", "max_tokens": 7, "temperature": 0})
    assert response.status_code == 200
    body = response.json()
    assert body["id"].startswith("cmpl-")
    assert body["object"] == "text_completion"
    assert body["choices"] == [{"index": 0, "text": " world", "finish_reason": "stop"}]
    request = backend.requests[0]
    assert request.prompt == "hello" and request.messages is None
    assert request.max_tokens == 7 and request.temperature == 0


def test_n_gives_n_choices() -> None:
    backend = FakeBackend().enqueue("one", "two")
    body = client_for(backend).post(CHAT, json={"messages": HELLO, "n": 2}).json()
    assert [c["message"]["content"] for c in body["choices"]] == ["one", "two"]
    assert [c["index"] for c in body["choices"]] == [0, 1]
    body = client_for(FakeBackend()).post(COMPLETIONS, json={"prompt": "p", "n": 2}).json()
    assert len(body["choices"]) == 2


@pytest.mark.parametrize(("stop", "expected"), [("END", ["END"]), (["a", "b"], ["a", "b"]), (None, [])])
def test_stop_reaches_the_backend(stop: Any, expected: list[str]) -> None:
    backend = FakeBackend()
    response = client_for(backend).post(CHAT, json={"messages": HELLO, "stop": stop})
    assert response.status_code == 200
    assert backend.requests[0].stop == expected


@pytest.mark.parametrize(
    ("response_format", "schema"),
    [
        ({"type": "json_object"}, {"type": "object"}),
        ({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "array"}}}, {"type": "array"}),
        ({"type": "text"}, None),
        (None, None),
    ],
)
def test_response_format_becomes_a_schema(response_format: Any, schema: Any) -> None:
    backend = FakeBackend()
    response = client_for(backend).post(CHAT, json={"messages": HELLO, "response_format": response_format})
    assert response.status_code == 200
    assert backend.requests[0].json_schema == schema


def test_max_completion_tokens_wins() -> None:
    backend = FakeBackend()
    client_for(backend).post(CHAT, json={"messages": HELLO, "max_tokens": 5, "max_completion_tokens": 9})
    assert backend.requests[0].max_tokens == 9


# --- errors: always a 4xx with {"error": {"message": ...}} ------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "fragment"),
    [
        (CHAT, b"{not json", "not valid JSON"),
        (CHAT, b"\xff\xfe", "not valid JSON"),
        (CHAT, b"", "not valid JSON"),
        (CHAT, b"[1, 2]", "invalid request"),
        (CHAT, b'"text"', "invalid request"),
        (CHAT, b"{}", "messages"),
        (CHAT, b'{"messages": []}', "messages"),
        (CHAT, b'{"messages": "hello"}', "messages"),
        (CHAT, b'{"messages": [{"role": "wizard", "content": "hi"}]}', "role"),
        (CHAT, b'{"messages": [{"role": "user"}]}', "content"),
        (CHAT, b'{"messages": [{"role": "user", "content": "hi"}], "temperature": 5}', "temperature"),
        (CHAT, b'{"messages": [{"role": "user", "content": "hi"}], "n": 0}', "n"),
        (CHAT, b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}', "max_tokens"),
        (CHAT, b'{"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "xml"}}',
         "response_format"),
        (CHAT, b'{"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_schema"}}',
         "response_format"),
        (CHAT, b'{"messages": [{"role": "user", "content": "hi"}], "stream": true, "n": 2}', "n=1"),
        (COMPLETIONS, b"{}", "prompt"),
        (COMPLETIONS, b'{"prompt": 3}', "prompt"),
        (COMPLETIONS, b'{"prompt": "p", "stream": true, "n": 2}', "n=1"),
        (COMPLETIONS, b'{"prompt": "p", "max_tokens": 1000000000}', "max_tokens"),
        (CHAT, b'{"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_schema", '
               b'"json_schema": "not a mapping"}}', "response_format"),
        (CHAT, b"[" * 100_000, "nested too deeply"),
    ],
)
def test_bad_requests_answer_400(tmp_path: Path, path: str, body: bytes, fragment: str) -> None:
    backend = FakeBackend()
    log = tmp_path / "log.jsonl"
    response = client_for(backend, log).post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert fragment in error_of(response)
    assert backend.requests == []
    assert log_lines(log) == []  # invalid requests are not logged


def test_a_huge_body_is_refused_before_it_is_read(tmp_path: Path) -> None:
    backend = FakeBackend()
    body = b'{"prompt": "' + b"x" * (5 << 20) + b'"}'
    response = client_for(backend, tmp_path / "log.jsonl").post(COMPLETIONS, content=body)
    assert response.status_code == 413 and "MiB" in error_of(response)
    assert backend.requests == []


def test_form_encoded_json_is_accepted() -> None:
    # curl -d sends application/x-www-form-urlencoded; the body is still parsed as JSON.
    backend = FakeBackend().enqueue("ok")
    response = client_for(backend).post(CHAT, content=json.dumps({"messages": HELLO}),
                                        headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "ok"


def test_unknown_model_is_404_naming_the_served_model(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    response = client_for(FakeBackend(model_id="tiny"), log).post(CHAT, json={"model": "gpt-9", "messages": HELLO})
    assert response.status_code == 404
    message = error_of(response)
    assert "gpt-9" in message and "tiny" in message
    response = client_for(FakeBackend(model_id="tiny"), log).post(COMPLETIONS, json={"model": "x", "prompt": "p"})
    assert response.status_code == 404
    assert log_lines(log) == []


def test_api_key_is_required_when_set() -> None:
    backend = FakeBackend()
    client = client_for(backend, api_key="k")
    for headers in [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer "}, {"Authorization": "k2"}]:
        response = client.post(CHAT, json={"messages": HELLO}, headers=headers)
        assert response.status_code == 401, headers
        assert "API key" in error_of(response)
        assert client.get("/v1/models", headers=headers).status_code == 401
    assert backend.requests == []
    response = client.post(CHAT, json={"messages": HELLO}, headers={"Authorization": "Bearer k"})
    assert response.status_code == 200
    assert client.get("/v1/models", headers={"Authorization": "Bearer k"}).status_code == 200


def test_no_api_key_means_open() -> None:
    response = client_for(FakeBackend()).post(CHAT, json={"messages": HELLO}, headers={"Authorization": "Bearer x"})
    assert response.status_code == 200


class TooLong(FakeBackend):
    """Refuses every prompt the way the llama.cpp backend refuses one over the context size."""

    def complete(self, requests: Sequence[Request]) -> list[Result]:
        raise ModelError("tiny: prompt has 5000 tokens, more than the 4096 context; shorten the prompt")

    def stream(self, request: Request) -> Iterator[str]:
        self.requests.append(request)
        raise ModelError("tiny: prompt has 5000 tokens, more than the 4096 context; shorten the prompt")
        yield ""  # a generator, like the real backends: the error comes with the first piece


@pytest.mark.parametrize("stream", [False, True])
def test_backend_model_error_is_400_with_its_message(stream: bool) -> None:
    client = client_for(TooLong())  # raise_server_exceptions: an escaped exception fails the test
    bodies: list[tuple[str, dict[str, Any]]] = [(CHAT, {"messages": HELLO}), (COMPLETIONS, {"prompt": "p"})]
    for path, body in bodies:
        response = client.post(path, json={**body, "stream": stream})
        assert response.status_code == 400
        assert "shorten the prompt" in error_of(response)


def test_empty_stream_still_finishes() -> None:
    backend = FakeBackend().enqueue("")
    with client_for(backend).stream("POST", CHAT, json={"messages": HELLO, "stream": True}) as response:
        events = sse_events(response.read().decode())
    assert events[-1] == "[DONE]"
    assert events[-2]["choices"][0]["finish_reason"] == "stop"


# --- streaming --------------------------------------------------------------------------------------------------


def test_chat_stream() -> None:
    backend = FakeBackend(model_id="tiny").enqueue("one two three")
    with client_for(backend).stream("POST", CHAT, json={"messages": HELLO, "stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = response.read().decode()
    events = sse_events(text)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "tiny" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1 and chunks[0]["id"].startswith("chatcmpl-")
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    deltas = [c["choices"][0]["delta"].get("content", "") for c in chunks]
    assert "".join(deltas) == "one two three"
    assert len([d for d in deltas if d]) == 3
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None] * (len(chunks) - 1) + ["stop"]
    assert chunks[-1]["choices"][0]["delta"] == {}


def test_completion_stream() -> None:
    backend = FakeBackend().enqueue("alpha beta")
    with client_for(backend).stream("POST", COMPLETIONS, json={"prompt": "p", "stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = response.read().decode()
    events = sse_events(text)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "text_completion" for c in chunks)
    assert "".join(c["choices"][0]["text"] for c in chunks) == "alpha beta"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
    assert backend.requests[0].prompt == "p"


def test_stream_is_logged_once(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    client = client_for(FakeBackend(), log)
    with client.stream("POST", CHAT, json={"messages": HELLO, "stream": True}) as response:
        chunks = [e for e in sse_events(response.read().decode()) if e != "[DONE]"]
    [line] = log_lines(log)
    assert line["id"] == chunks[0]["id"]
    assert line["messages"] == HELLO


# --- prompt log -------------------------------------------------------------------------------------------------


def test_prompt_log_one_line_per_request(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "log.jsonl"  # the folder is created
    client = client_for(FakeBackend(model_id="tiny"), log)
    chat = client.post(CHAT, json={"messages": [{"role": "system", "content": "Be brief."}] + HELLO}).json()
    completion = client.post(COMPLETIONS, json={"prompt": "Once upon"}).json()
    client.post(CHAT, json={"messages": []})  # invalid: not logged
    client.post(CHAT, content=b"nope")  # invalid: not logged
    first, second = log_lines(log)
    assert set(first) == {"id", "time", "endpoint", "model", "messages"}
    assert first["id"] == chat["id"]
    assert first["endpoint"] == "chat" and first["model"] == "tiny"
    assert first["messages"] == [{"role": "system", "content": "Be brief."}] + HELLO
    assert isinstance(first["time"], str) and first["time"]
    assert set(second) == {"id", "time", "endpoint", "model", "prompt"}
    assert second["id"] == completion["id"]
    assert second["endpoint"] == "completions" and second["prompt"] == "Once upon"


def test_prompt_log_keeps_unicode(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    client_for(FakeBackend(), log).post(CHAT, json={"messages": [{"role": "user", "content": "héllo\nwörld ✓"}]})
    [line] = log_lines(log)
    assert line["messages"][0]["content"] == "héllo\nwörld ✓"
    assert len(log.read_text(encoding="utf-8").splitlines()) == 1


def test_no_prompt_log_writes_nothing(tmp_path: Path, seedlab_home: Path) -> None:
    client = client_for(FakeBackend(), None)
    assert client.post(CHAT, json={"messages": HELLO}).status_code == 200
    assert client.post(COMPLETIONS, json={"prompt": "p"}).status_code == 200
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_concurrent_requests_give_whole_log_lines(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    backend = FakeBackend(responder=lambda request, i: f"answer to {(request.messages or [])[0]['content']}")
    questions = [f"question {i} " + "x" * 2000 for i in range(8)]
    with ServerThread(create_app(backend, prompt_log=log)) as url, httpx.Client(timeout=30) as http:

        def ask(question: str) -> httpx.Response:
            return http.post(f"{url}/chat/completions", json={"messages": [{"role": "user", "content": question}]})

        with ThreadPoolExecutor(max_workers=8) as pool:
            responses = list(pool.map(ask, questions))
    assert [r.status_code for r in responses] == [200] * 8
    assert [r.json()["choices"][0]["message"]["content"] for r in responses] == [f"answer to {q}" for q in questions]
    lines = log_lines(log)
    assert len(lines) == 8
    assert sorted(line["messages"][0]["content"] for line in lines) == sorted(questions)
    assert {line["id"] for line in lines} == {r.json()["id"] for r in responses}


# --- is_loopback ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "127.5.5.5", "::1", "localhost"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.1", "example.com", "::", "10.0.0.1", ""])
def test_non_loopback_hosts(host: str) -> None:
    assert not is_loopback(host)


def test_content_given_as_text_parts_is_joined() -> None:
    backend = FakeBackend()
    parts = [{"type": "text", "text": "Hello, "}, {"type": "text", "text": "world"}]
    response = client_for(backend).post("/v1/chat/completions", json={"messages": [{"role": "user", "content": parts}]})
    assert response.status_code == 200
    assert backend.requests[0].messages == [{"role": "user", "content": "Hello, world"}]


def test_the_prompt_log_rotates_and_never_holds_the_api_key(tmp_path: Path) -> None:
    from seedlab.prompts import rotated

    log = tmp_path / "prompts.jsonl"
    client = TestClient(create_app(FakeBackend(), api_key="sk-secret-key", prompt_log=log, log_max_bytes=600,
                                   log_keep=2))
    for k in range(30):
        response = client.post(COMPLETIONS, json={"prompt": f"prompt number {k}"},
                               headers={"Authorization": "Bearer sk-secret-key"})
        assert response.status_code == 200
    files = [log, rotated(log, 1), rotated(log, 2)]
    assert all(f.is_file() and f.stat().st_size <= 600 for f in files) and not rotated(log, 3).exists()
    kept = [row["prompt"] for f in reversed(files) for row in log_lines(f)]
    assert kept == [f"prompt number {k}" for k in range(30 - len(kept), 30)]  # the newest, in order, none torn
    assert all("sk-secret" not in f.read_text() for f in files)


def test_32_clients_mixing_good_and_hostile_requests_get_no_server_error(tmp_path: Path) -> None:
    """A real server on loopback (uvicorn in a thread) and 32 clients at once; `bench/serve_load.py` is the long run
    on the real model."""
    log = tmp_path / "prompts.jsonl"
    app = create_app(FakeBackend(), api_key="k3y", prompt_log=log)
    good = {"Authorization": "Bearer k3y"}
    hostile: list[tuple[dict[str, Any], Any, int]] = [
        (good, b'{"messages": [,', 400),
        (good, {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 10**12}, 400),
        ({"Authorization": "Bearer wrong"}, {"messages": [{"role": "user", "content": "hi"}]}, 401),
        ({}, {"messages": [{"role": "user", "content": "hi"}]}, 401),
        (good, {"messages": [{"role": "user", "content": "hi"}], "model": "../../etc/passwd"}, 404),
    ]

    def one(k: int, base: str) -> tuple[int, int]:
        with httpx.Client(base_url=base, timeout=30) as http:
            if k % 3:
                body = {"messages": [{"role": "user", "content": f"client {k}"}], "stream": k % 2 == 0}
                return http.post("/chat/completions", json=body, headers=good).status_code, 200
            headers, body, expected = hostile[k % len(hostile)]
            sent = http.post("/chat/completions", headers=headers,
                             **({"content": body} if isinstance(body, bytes) else {"json": body}))
            return sent.status_code, expected

    with ServerThread(app) as base, ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(lambda k: one(k, base), range(320)))
    assert all(got == expected for got, expected in results), Counter(results)
    assert len(log_lines(log)) == sum(1 for k in range(320) if k % 3)  # one whole line per answered request


def test_a_prompt_log_that_keeps_no_older_file_still_stays_small(tmp_path: Path) -> None:
    log = tmp_path / "prompts.jsonl"
    client = TestClient(create_app(FakeBackend(), prompt_log=log, log_max_bytes=300, log_keep=0))
    for k in range(20):
        assert client.post(COMPLETIONS, json={"prompt": f"prompt {k}"}).status_code == 200
    assert log.stat().st_size <= 300 and [p.name for p in tmp_path.iterdir()] == ["prompts.jsonl"]
