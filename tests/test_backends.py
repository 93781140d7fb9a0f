"""Backends without a real model: requests, the fake, model references, the OpenAI client, chat and the CLI."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import socket
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import llama_cpp
import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from helpers import ServerThread

from seedlab.backends import (
    DEFAULT_MODEL,
    REGISTRY,
    FakeBackend,
    ModelError,
    Request,
    Result,
    file_sha256,
    list_models,
    make_backend,
    resolve_model,
)
from seedlab.backends._llamacpp import LlamaCppBackend
from seedlab.backends._openai import EndpointError, OpenAIBackend
from seedlab.chat import ask, chat_loop
from seedlab.cli import cli
from seedlab.config import Config, load_settings, write_config
from seedlab.serve.app import create_app

USER = [{"role": "user", "content": "hello"}]
MISSING_MODULE = "seedlab_tests_no_such_module"


def not_installed(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Make registry entries look as if their package were not installed."""
    for name in names:
        monkeypatch.setitem(REGISTRY, name, dataclasses.replace(REGISTRY[name], module=MISSING_MODULE))


def gguf_file(path: Path, body: bytes = b"\x03\x00\x00\x00") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"GGUF" + body)
    return path


# --- Request ----------------------------------------------------------------------------------------------------


def test_request_needs_exactly_one_of_messages_or_prompt() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Request()
    with pytest.raises(ValueError, match="exactly one"):
        Request(messages=USER, prompt="p")
    assert Request(messages=USER).prompt is None
    assert Request(prompt="").messages is None


@pytest.mark.parametrize("n", [0, -1])
def test_request_needs_a_sample(n: int) -> None:
    with pytest.raises(ValueError, match="n must be at least 1"):
        Request(prompt="p", n=n)


# --- FakeBackend ------------------------------------------------------------------------------------------------


def test_fake_uses_queue_then_responder_then_echo() -> None:
    calls: list[tuple[str | None, int]] = []

    def responder(request: Request, index: int) -> str:
        calls.append((request.prompt, index))
        return f"computed {index}"

    backend = FakeBackend(responder).enqueue("first", "second")
    results = backend.complete([Request(prompt="a"), Request(prompt="b", n=2)])
    assert [r.texts for r in results] == [["first"], ["second", "computed 1"]]
    assert calls == [("b", 1)]
    assert backend.complete([Request(prompt="c", n=2)])[0].texts == ["computed 0", "computed 1"]
    assert [r.prompt for r in backend.requests] == ["a", "b", "c"]


def test_fake_echo_is_deterministic() -> None:
    backend = FakeBackend()
    first = backend.complete([Request(prompt="same", n=2)])[0].texts
    again = FakeBackend().complete([Request(prompt="same")])[0].texts
    other = backend.complete([Request(prompt="different")])[0].texts
    assert first[0] == again[0]
    assert first[0] != first[1]  # sample index changes the text
    assert other[0] != first[0]
    chat = backend.complete([Request(messages=USER)])[0].texts[0]
    assert chat == FakeBackend().complete([Request(prompt="hello")])[0].texts[0]  # messages echo their content


def test_fake_records_requests_and_counts_tokens() -> None:
    backend = FakeBackend(model_id="tiny").enqueue("three word reply", "two words")
    request = Request(messages=[{"role": "system", "content": "be brief"}, *USER], n=2, stop=["\n"],
                      json_schema={"type": "object"}, seed=4)
    [result] = backend.complete([request])
    assert backend.model_id == "tiny"
    assert backend.requests == [request]
    assert result == Result(["three word reply", "two words"], 3, 5, ["stop", "stop"])


def test_fake_stream_joins_to_the_reply() -> None:
    backend = FakeBackend().enqueue("  streamed  reply with spaces ")
    pieces = list(backend.stream(Request(prompt="p", seed=3)))
    assert len(pieces) > 3
    assert "".join(pieces) == "  streamed  reply with spaces "
    assert backend.requests[-1].prompt == "p" and backend.requests[-1].seed == 3
    echo = "".join(FakeBackend().stream(Request(messages=USER)))
    assert echo == FakeBackend().complete([Request(messages=USER)])[0].texts[0]
    backend.close()


# --- model references -------------------------------------------------------------------------------------------


def test_default_registry_model_resolves(tmp_path: Path) -> None:
    ref = resolve_model(DEFAULT_MODEL, tmp_path)
    assert ref.name == DEFAULT_MODEL
    assert ref.format == "gguf"
    assert ref.path.is_file() and ref.path.suffix == ".gguf"
    assert ref.path.read_bytes()[:4] == b"GGUF"


def test_gguf_file_and_hf_folder_resolve(tmp_path: Path) -> None:
    model = gguf_file(tmp_path / "m.gguf")
    ref = resolve_model(str(model), tmp_path / "cache")
    assert (ref.format, ref.path, ref.name) == ("gguf", model, str(model))
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    ref = resolve_model(str(folder), tmp_path / "cache")
    assert (ref.format, ref.path) == ("hf", folder)


def test_folder_without_config_json(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as info:
        resolve_model(str(tmp_path), tmp_path / "cache")
    assert str(tmp_path) in str(info.value) and "config.json" in str(info.value)
    assert "Hugging Face model folder" in str(info.value)


def test_file_that_is_not_gguf(tmp_path: Path) -> None:
    fake = tmp_path / "x.gguf"
    fake.write_bytes(b"hello")
    with pytest.raises(ModelError) as info:
        resolve_model(str(fake), tmp_path / "cache")
    message = str(info.value)
    assert str(fake) in message and "not a GGUF model file" in message and "give a .gguf file" in message
    assert "\n" not in message


@pytest.mark.parametrize("ref", ["nope", "{tmp}/missing.gguf", "{tmp}/missing/folder"])
def test_unknown_reference(tmp_path: Path, ref: str) -> None:
    ref = ref.format(tmp=tmp_path)
    with pytest.raises(ModelError) as info:
        resolve_model(ref, tmp_path / "cache")
    message = str(info.value)
    assert repr(ref) in message
    assert DEFAULT_MODEL in message and "gemma3-270m" in message  # the registry names to choose from
    assert ".gguf file" in message and "folder" in message


@pytest.mark.parametrize("name", [DEFAULT_MODEL, "gemma3-270m"])
def test_registry_model_not_installed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str) -> None:
    not_installed(monkeypatch, name)
    with pytest.raises(ModelError) as info:
        resolve_model(name, tmp_path)
    assert f"`seedlab model download {name}`" in str(info.value)
    assert "not downloaded" in str(info.value)


def test_file_sha256_is_remembered(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"some bytes" * 1000)
    cache = tmp_path / "cache"
    digest = file_sha256(path, cache)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    index = (cache / "sha256.json").read_text()
    assert str(path.resolve()) in index and digest in index

    # Other bytes of the same size under the same mtime: the remembered digest comes back, so it was not read.
    stat = path.stat()
    path.write_bytes(b"other byte" * 1000)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert file_sha256(path, cache) == digest

    # Same size, new content, a different mtime: hashed again.
    path.write_bytes(b"SOME BYTES" * 1000)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    changed = file_sha256(path, cache)
    assert changed == hashlib.sha256(path.read_bytes()).hexdigest() != digest
    # Only the mtime changes: hashed again, same digest.
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2 * 10**9))
    assert file_sha256(path, cache) == changed
    # A damaged index is rebuilt rather than fatal.
    (cache / "sha256.json").write_text("{not json")
    assert file_sha256(path, cache) == changed


def test_list_models(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    not_installed(monkeypatch, "gemma3-270m")
    extra = gguf_file(tmp_path / "mine.gguf")
    rows = {row.name: row for row in list_models(tmp_path / "cache", [DEFAULT_MODEL, str(extra)])}
    assert list(rows) == [DEFAULT_MODEL, "gemma3-270m", str(extra)]
    default = rows[DEFAULT_MODEL]
    path = resolve_model(DEFAULT_MODEL, tmp_path).path
    assert default.format == "gguf" and default.size == path.stat().st_size
    assert default.sha256 is not None and len(default.sha256) == 64
    assert default.hf_cached is False
    gemma = rows["gemma3-270m"]
    assert gemma.size is None and gemma.sha256 is None
    assert "not downloaded" in gemma.description
    mine = rows[str(extra)]
    assert mine.size == 8 and mine.sha256 == hashlib.sha256(extra.read_bytes()).hexdigest()
    assert mine.description == "configured default"


# --- make_backend -----------------------------------------------------------------------------------------------


@pytest.fixture
def no_model_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(llama_cpp, "Llama", refuse)  # the library's own entry point


@pytest.mark.usefixtures("no_model_loading")
def test_make_backend_refuses_adapter_with_endpoint(tmp_path: Path) -> None:
    adapter = gguf_file(tmp_path / "lora.gguf")
    with pytest.raises(ModelError, match="--adapter applies to a local model"):
        make_backend(load_settings(), "m", "http://127.0.0.1:9/v1", adapter)
    settings = load_settings()
    settings.config.endpoint.url = "http://127.0.0.1:9/v1"
    with pytest.raises(ModelError, match="--adapter"):
        make_backend(settings, "m", None, adapter)


@pytest.mark.usefixtures("no_model_loading")
def test_make_backend_refuses_adapter_with_hf_folder(tmp_path: Path) -> None:
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    with pytest.raises(ModelError, match="takes a PEFT adapter folder, not a GGUF file"):
        make_backend(load_settings(), str(folder), None, gguf_file(tmp_path / "lora.gguf"))


@pytest.mark.usefixtures("no_model_loading")
def test_make_backend_refuses_a_folder_that_is_no_adapter(tmp_path: Path) -> None:
    model = gguf_file(tmp_path / "m.gguf")
    adapter = tmp_path / "peft"
    adapter.mkdir()
    with pytest.raises(ModelError) as info:
        make_backend(load_settings(), str(model), None, adapter)
    assert str(adapter) in str(info.value) and "adapter_config.json" in str(info.value)
    with pytest.raises(ModelError, match="GGUF LoRA file"):
        make_backend(load_settings(), str(model), None, tmp_path / "adapter.safetensors")


@pytest.mark.usefixtures("no_model_loading")
def test_make_backend_with_endpoint_uses_the_endpoint_config() -> None:
    settings = load_settings()
    settings.config.endpoint.concurrency = 3
    backend = make_backend(settings, "served", "http://127.0.0.1:9/v1/")
    assert isinstance(backend, OpenAIBackend)
    assert backend.model_id == "served" and backend.url == "http://127.0.0.1:9/v1" and backend.concurrency == 3
    backend.close()


# --- LlamaCppBackend's error translation, with a stand-in for the loaded model -------------------------------------


class StandInLlama:
    """Answers like llama-cpp-python: a streamed call checks the prompt only when the first chunk is asked for."""

    def __init__(self, too_long: bool) -> None:
        self.too_long = too_long

    def create_chat_completion(self, messages: list[dict[str, str]], stream: bool, **options: Any) -> Any:
        def chunks() -> Iterator[dict[str, Any]]:
            if self.too_long:
                raise ValueError("Requested tokens (5000) exceed context window of 4096")
            for piece in ["Hel", "lo", ""]:
                yield {"choices": [{"delta": {"content": piece}}]}

        if stream:
            return chunks()
        if self.too_long:
            raise ValueError("Requested tokens (5000) exceed context window of 4096")
        return {"choices": [{"message": {"content": "Hello"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 1}}

    def close(self) -> None:
        pass


@pytest.mark.parametrize("too_long", [False, True])
def test_llamacpp_too_long_prompt_is_a_model_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                   too_long: bool) -> None:
    monkeypatch.setattr(llama_cpp, "Llama", lambda **_kwargs: StandInLlama(too_long))
    backend = LlamaCppBackend(gguf_file(tmp_path / "m.gguf"), "tiny")
    request = Request(messages=USER)
    if not too_long:
        assert "".join(backend.stream(request)) == "Hello"
        assert backend.complete([request])[0].texts == ["Hello"]
        return
    with pytest.raises(ModelError, match="tiny: Requested tokens .* shorten the prompt"):
        list(backend.stream(request))
    with pytest.raises(ModelError, match="shorten the prompt"):
        backend.complete([request])
    assert backend._slots.qsize() == 1  # the model copy went back to its slot
    backend.close()


# --- OpenAIBackend against the real HTTP server ------------------------------------------------------------------


def test_openai_backend_against_the_server() -> None:
    fake = FakeBackend(model_id="served").enqueue("chat answer", "raw answer", "a", "b", "c", "streamed reply here")
    with ServerThread(create_app(fake)) as url:
        backend = OpenAIBackend(url, max_retries=0)
        assert backend.model_id == "served"  # from /v1/models
        chat, raw = backend.complete([Request(messages=USER)]) + backend.complete([Request(prompt="Once")])
        assert chat.texts == ["chat answer"] and chat.finish_reasons == ["stop"]
        assert chat.prompt_tokens == 1 and chat.completion_tokens == 2
        assert raw.texts == ["raw answer"]
        assert fake.requests[1].prompt == "Once" and fake.requests[1].messages is None
        [three] = backend.complete([Request(messages=USER, n=3)])
        assert three.texts == ["a", "b", "c"]
        pieces = list(backend.stream(Request(messages=USER)))
        assert len(pieces) == 3 and "".join(pieces) == "streamed reply here"
        raw_pieces = list(backend.stream(Request(prompt="Once")))
        assert "".join(raw_pieces) == FakeBackend().complete([Request(prompt="Once")])[0].texts[0]
        backend.close()


def test_openai_backend_sends_options() -> None:
    fake = FakeBackend()
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    with ServerThread(create_app(fake)) as url:
        backend = OpenAIBackend(url, "fake", max_retries=0)
        backend.complete([Request(messages=USER, json_schema=schema, stop=["\n", "END"], temperature=0.1,
                                  max_tokens=12, seed=7)])
        backend.close()
    [request] = fake.requests
    assert request.json_schema == schema
    assert request.stop == ["\n", "END"]
    assert (request.temperature, request.max_tokens, request.seed) == (0.1, 12, 7)


def test_openai_backend_keeps_order_under_concurrency() -> None:
    fake = FakeBackend(responder=lambda request, index: f"answer to {request.prompt}")
    prompts = [f"prompt {i}" for i in range(8)]
    with ServerThread(create_app(fake)) as url:
        backend = OpenAIBackend(url, concurrency=8, max_retries=0)
        results = backend.complete([Request(prompt=p) for p in prompts])
        backend.close()
    assert [r.texts for r in results] == [[f"answer to {p}"] for p in prompts]
    assert sorted(r.prompt or "" for r in fake.requests) == prompts


class FailsOnce(FakeBackend):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.lock = threading.Lock()

    def complete(self, requests: Sequence[Request]) -> list[Result]:
        with self.lock:
            self.calls += 1
            first = self.calls == 1
        if first:
            raise RuntimeError("a transient failure")  # the server answers HTTP 500
        return super().complete(requests)


def test_openai_backend_retries_server_errors() -> None:
    fake = FailsOnce()
    fake.enqueue("made it")
    with ServerThread(create_app(fake)) as url:
        backend = OpenAIBackend(url, "fake", max_retries=2)
        assert backend.complete([Request(messages=USER)])[0].texts == ["made it"]
        backend.close()
    assert fake.calls == 2


def test_openai_backend_gives_up_on_server_errors() -> None:
    with ServerThread(create_app(FailsOnce())) as url:
        backend = OpenAIBackend(url, "fake", max_retries=0)
        with pytest.raises(EndpointError, match="answered HTTP 500"):
            backend.complete([Request(messages=USER)])


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_openai_backend_unreachable() -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    with pytest.raises(EndpointError) as info:
        OpenAIBackend(url, max_retries=0)
    assert f"cannot reach {url}" in str(info.value) and "is the server running?" in str(info.value)
    backend = OpenAIBackend(url, "m", max_retries=0)  # a named model: nothing is asked until a request
    with pytest.raises(EndpointError, match="cannot reach"):
        backend.complete([Request(prompt="p")])
    with pytest.raises(EndpointError, match="cannot reach"):
        list(backend.stream(Request(prompt="p")))


def answering(make: Any) -> FastAPI:
    app = FastAPI()

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    def anything(path: str) -> Response:
        response: Response = make()
        return response

    return app


@pytest.mark.parametrize(
    "make",
    [lambda: PlainTextResponse("hello, I am a web page"), lambda: JSONResponse({"unexpected": True}),
     lambda: JSONResponse([1, 2, 3])],
    ids=["text", "object", "array"],
)
def test_openai_backend_not_openai(make: Any) -> None:
    with ServerThread(answering(make)) as url:
        backend = OpenAIBackend(url, "m", max_retries=0)
        for request in [Request(prompt="p"), Request(messages=USER)]:
            with pytest.raises(EndpointError) as info:
                backend.complete([request])
            assert "not an OpenAI-compatible response" in str(info.value) and url in str(info.value)
        with pytest.raises(EndpointError, match=r"not an OpenAI-compatible response|lists no models"):
            OpenAIBackend(url, max_retries=0)


@pytest.mark.parametrize("status", [404, 500])
def test_openai_backend_names_the_http_status(status: int) -> None:
    with ServerThread(answering(lambda: JSONResponse({"detail": "nope"}, status))) as url:
        with pytest.raises(EndpointError, match=f"answered HTTP {status}"):
            OpenAIBackend(url, max_retries=0)
        with pytest.raises(EndpointError, match=f"answered HTTP {status}"):
            OpenAIBackend(url, "m", max_retries=0).complete([Request(prompt="p")])


def test_openai_backend_reads_the_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeBackend().enqueue("secret answer")
    with ServerThread(create_app(fake, api_key="k")) as url:
        monkeypatch.delenv("SEEDLAB_TEST_KEY", raising=False)
        with pytest.raises(EndpointError, match="answered HTTP 401"):
            OpenAIBackend(url, api_key_env="SEEDLAB_TEST_KEY", max_retries=0)
        monkeypatch.setenv("SEEDLAB_TEST_KEY", "wrong")
        with pytest.raises(EndpointError, match="answered HTTP 401"):
            OpenAIBackend(url, "fake", api_key_env="SEEDLAB_TEST_KEY", max_retries=0).complete([Request(prompt="p")])
        monkeypatch.setenv("SEEDLAB_TEST_KEY", "k")
        backend = OpenAIBackend(url, api_key_env="SEEDLAB_TEST_KEY", max_retries=0)
        assert backend.complete([Request(messages=USER)])[0].texts == ["secret answer"]
    assert len(fake.requests) == 1


# --- chat -------------------------------------------------------------------------------------------------------


class Script:
    """Input lines for chat_loop; `left` holds the lines it never read."""

    def __init__(self, *lines: str | None) -> None:
        self.left = list(lines)

    def __call__(self) -> str | None:
        assert self.left, "read past the end of the script"
        return self.left.pop(0)


def test_chat_loop_history_clear_and_exit() -> None:
    backend = FakeBackend(model_id="tiny").enqueue("answer one", "answer two", "answer three")
    out: list[str] = []
    read = Script("hi", "", "   ", "more", "/clear", "again", " /exit ", "never read")
    chat_loop(backend, "Be brief.", 32, 0.2, read, out.append, seed=5)
    system = {"role": "system", "content": "Be brief."}
    assert [r.messages for r in backend.requests] == [
        [system, {"role": "user", "content": "hi"}],
        [system, {"role": "user", "content": "hi"}, {"role": "assistant", "content": "answer one"},
         {"role": "user", "content": "more"}],
        [system, {"role": "user", "content": "again"}],
    ]
    assert all(r.seed == 5 for r in backend.requests)
    assert read.left == ["never read"]
    text = "".join(out)
    assert text.startswith("Chatting with tiny.")
    assert "answer one\n" in text and "answer two\n" in text and "answer three\n" in text
    assert "(conversation cleared)" in text


def test_chat_loop_ends_at_end_of_input() -> None:
    backend = FakeBackend()
    out: list[str] = []
    chat_loop(backend, None, 32, 0.2, Script("hello", None), out.append)
    assert [r.messages for r in backend.requests] == [USER]  # no system message when none is given
    chat_loop(backend, None, 32, 0.2, Script(None), out.append)
    assert len(backend.requests) == 1


def test_ask_streams_the_answer() -> None:
    backend = FakeBackend().enqueue(" an answer in pieces ")
    out: list[str] = []
    history = [{"role": "system", "content": "sys"}]
    answer = ask(backend, history, "question?", 16, 0.0, out.append, seed=2)
    assert answer == "an answer in pieces"
    assert len(out) > 2 and "".join(out) == " an answer in pieces \n"
    assert out[-1] == "\n"
    assert backend.requests[0].messages == history + [{"role": "user", "content": "question?"}]
    assert history == [{"role": "system", "content": "sys"}]  # the caller's history is not changed


# --- CLI --------------------------------------------------------------------------------------------------------


def test_cli_chat_with_a_file_that_is_not_gguf(tmp_path: Path) -> None:
    path = tmp_path / "not-gguf"
    path.write_bytes(b"hello")
    result = CliRunner().invoke(cli, ["model", "chat", "-q", "hi", "--model", str(path)])
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and result.output.count("\n") == 1
    assert str(path) in result.output and "not a GGUF model file" in result.output
    assert "Traceback" not in result.output


def test_cli_chat_with_an_unknown_model() -> None:
    result = CliRunner().invoke(cli, ["model", "chat", "-q", "hi", "--model", "nope"])
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and result.output.count("\n") == 1
    assert "'nope'" in result.output and DEFAULT_MODEL in result.output and "gemma3-270m" in result.output
    assert "Traceback" not in result.output


def test_cli_chat_with_an_unreachable_endpoint(seedlab_home: Path) -> None:
    config = Config()
    config.endpoint.max_retries = 0  # no backoff: fail at once
    write_config(seedlab_home / "config.yaml", config)
    url = f"http://127.0.0.1:{closed_port()}/v1"
    result = CliRunner().invoke(cli, ["model", "chat", "-q", "hi", "--endpoint-url", url])
    assert result.exit_code == 1
    assert result.output.startswith(f"error: cannot reach {url}") and "Traceback" not in result.output


def test_cli_chat_through_an_endpoint() -> None:
    fake = FakeBackend(model_id="served").enqueue("hello from the server")
    with ServerThread(create_app(fake)) as url:
        result = CliRunner().invoke(cli, ["model", "chat", "-q", "hi", "--system", "sys", "--endpoint-url", url])
    assert result.exit_code == 0, result.output
    assert result.output == "hello from the server\n"
    assert fake.requests[0].messages == [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}]


def test_cli_model_list() -> None:
    result = CliRunner().invoke(cli, ["model", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["name", "format", "size"]
    [row] = [line for line in lines if line.startswith(DEFAULT_MODEL)]
    assert row.split()[1] == "gguf"
    assert " MiB " in row and int(row.split()[2]) > 0
    assert any(line.startswith("gemma3-270m") for line in lines)


def test_chat_loop_survives_a_model_error() -> None:
    class Failing(FakeBackend):
        def stream(self, request: Request) -> Iterator[str]:
            if len(request.messages or []) > 1:
                raise ModelError("prompt too long")
            yield from super().stream(request)

    backend = Failing().enqueue("first answer", "third answer")
    lines = iter(["one", "two", "/clear", "three", None])
    out: list[str] = []
    chat_loop(backend, None, 16, 0.0, lambda: next(lines), out.append)
    text = "".join(out)
    assert "error: prompt too long; /clear starts over" in text
    assert "first answer" in text and "third answer" in text
