"""The real default model, end to end: chat, constrained JSON, serve over HTTP, GGUF -> HF conversion."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from helpers import serve_process, wait_until_up

from seedlab.backends import DEFAULT_MODEL, ModelError, Request, resolve_model
from seedlab.backends._convert import hf_copy
from seedlab.backends._llamacpp import LlamaCppBackend
from seedlab.backends._openai import OpenAIBackend
from seedlab.cli import cli

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return resolve_model(DEFAULT_MODEL, tmp_path_factory.mktemp("cache")).path


@pytest.fixture(scope="module")
def backend(model_path: Path) -> LlamaCppBackend:
    return LlamaCppBackend(model_path, DEFAULT_MODEL, n_ctx=2048)


def test_chat_one_question_offline() -> None:
    result = CliRunner().invoke(cli, ["model", "chat", "-q", "What is the capital of France?", "--max-tokens", "40"])
    assert result.exit_code == 0, result.output
    assert len(result.output.strip()) > 5 and "Traceback" not in result.output


def test_samples_differ_and_seeds_repeat(backend: LlamaCppBackend) -> None:
    request = Request(messages=[{"role": "user", "content": "Name a colour."}], n=3, temperature=1.0,
                      max_tokens=12, seed=7)
    first, again = backend.complete([request])[0], backend.complete([request])[0]
    assert len(first.texts) == 3 and len(set(first.texts)) > 1
    assert first.texts == again.texts
    assert first.completion_tokens > 0 and first.prompt_tokens > 0


def test_json_schema_constrains_output(backend: LlamaCppBackend) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
              "required": ["city", "population"]}
    request = Request(messages=[{"role": "user", "content": "Describe a city as JSON."}], n=2, json_schema=schema,
                      max_tokens=60, seed=1)
    for text in backend.complete([request])[0].texts:
        data = json.loads(text)
        assert isinstance(data["city"], str) and isinstance(data["population"], int)


def test_parallel_slots_answer_every_request(model_path: Path) -> None:
    slots = LlamaCppBackend(model_path, n_ctx=1024, slots=2)
    requests = [Request(prompt=f"Number {i}:", max_tokens=5, seed=i) for i in range(4)]
    results = slots.complete(requests)
    slots.close()
    assert len(results) == 4 and all(r.completion_tokens > 0 for r in results)


def test_batched_decoding_gives_the_one_stream_outputs(model_path: Path) -> None:
    """Sequences stepped together in one context (continuous batching, more requests than sequences) write what
    one stream writes: greedy chat, a raw prompt with a stop string, JSON under a schema, seeded samples."""
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    requests = [Request(messages=[{"role": "user", "content": f"Write one sentence about {topic}."}], max_tokens=20,
                        temperature=0.0) for topic in ("bees", "the moon", "bread", "maps", "salt")]
    requests += [Request(prompt="Q: What is the capital of France?\nA:", max_tokens=16, temperature=0.0, stop=["\n"]),
                 Request(messages=[{"role": "user", "content": "Give me a person's name in JSON."}], max_tokens=30,
                         temperature=0.0, json_schema=schema),
                 Request(messages=[{"role": "user", "content": "Say hello."}], n=2, max_tokens=12, temperature=0.8,
                         seed=5)]
    one, batched = (LlamaCppBackend(model_path, n_ctx=1024, sequences=n) for n in (1, 3))
    try:
        alone, together = one.complete(requests), batched.complete(requests)
        with pytest.raises(ModelError, match="does not fit the context of 1024"):
            batched.complete([Request(prompt="word " * 1100)])
    finally:
        one.close()
        batched.close()
    assert [r.texts for r in together] == [r.texts for r in alone]
    assert [r.finish_reasons for r in together] == [r.finish_reasons for r in alone]
    assert [r.completion_tokens for r in together] == [r.completion_tokens for r in alone]
    assert together[5].finish_reasons == ["stop"] and "\n" not in together[5].texts[0]
    assert json.loads(together[6].texts[0])["name"]


def test_running_sequences_decode_in_order_with_gaps_filled(model_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """llama.cpp computes a batch of one-stream-per-sequence caches in one pass only when its sequences are
    consecutive and in order: every step batch is, also when short requests finish between long ones (their
    sequences get a throw-away token), and the outputs stay those of one stream."""
    import llama_cpp

    requests = [Request(messages=[{"role": "user", "content": f"Write about {topic}."}], max_tokens=length,
                        temperature=0.0) for topic, length in (("rivers", 24), ("salt", 2), ("owls", 24),
                                                               ("tea", 3), ("snow", 24))]
    one = LlamaCppBackend(model_path, n_ctx=1024)
    alone = one.complete(requests)
    one.close()
    decode, steps = llama_cpp.llama_decode, []

    def recording(ctx: object, batch: llama_cpp.llama_batch) -> int:
        seqs = [batch.seq_id[i][0] for i in range(batch.n_tokens)]
        if len(set(seqs)) == len(seqs):  # one token a sequence: a step
            steps.append((seqs, [bool(batch.logits[i]) for i in range(batch.n_tokens)]))
        return int(decode(ctx, batch))

    monkeypatch.setattr(llama_cpp, "llama_decode", recording)
    batched = LlamaCppBackend(model_path, n_ctx=1024, sequences=5)
    try:
        together = batched.complete(requests)
    finally:
        batched.close()
    assert [r.texts for r in together] == [r.texts for r in alone]
    assert all(seqs == list(range(seqs[0], seqs[0] + len(seqs))) for seqs, _ in steps)
    filled = [(seqs, logits) for seqs, logits in steps if not all(logits)]
    assert filled, "no step ran with a finished sequence between running ones"
    # Only the short requests' sequences ever get a throw-away token.
    assert all({seq for seq, wanted in zip(seqs, logits, strict=True) if not wanted} <= {1, 3}
               for seqs, logits in filled)


def test_the_default_model_decodes_in_q8_0_converted_once(model_path: Path, tmp_path: Path) -> None:
    """`llama_cpp.weights: auto` loads the default model as a Q8_0 copy made once by llama.cpp's quantizer (a later
    call reuses it, and two converting at once, as two servers starting in a new home do, both get it whole);
    `as-is` loads the packaged file; an unknown type is one clear error."""
    from concurrent.futures import ThreadPoolExecutor

    from gguf import GGUFReader

    from seedlab.backends import llama_file

    ref = resolve_model(DEFAULT_MODEL, tmp_path)
    with ThreadPoolExecutor(2) as pool:
        both = list(pool.map(lambda _: llama_file(ref, tmp_path), range(2)))
    converted = both[0]
    assert both[1] == converted != model_path and converted.is_file()
    assert not list(converted.parent.glob("*.partial"))
    assert {t.tensor_type.name for t in GGUFReader(converted).tensors} == {"Q8_0", "F32"}
    made = converted.stat().st_mtime_ns
    assert llama_file(ref, tmp_path) == converted and converted.stat().st_mtime_ns == made
    assert llama_file(ref, tmp_path, "as-is") == model_path
    with pytest.raises(ModelError, match="llama_cpp.weights: 'q3'"):
        llama_file(ref, tmp_path, "q3")
    backend = LlamaCppBackend(converted, DEFAULT_MODEL, n_ctx=512)
    try:
        answer = backend.complete([Request(messages=[{"role": "user", "content": "What is 2 + 3?"}], max_tokens=12,
                                           temperature=0.0)])[0].texts[0]
    finally:
        backend.close()
    assert "5" in answer


def test_a_failed_prompt_leaves_the_running_sequences_intact(model_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A request whose prompt llama.cpp fails to decode gets a ModelError; a sequence running beside it (another
    caller's) still finishes with the one-stream output."""
    import threading

    import llama_cpp

    running = Request(messages=[{"role": "user", "content": "Write two sentences about rivers."}], max_tokens=40,
                      temperature=0.0)
    failing = Request(messages=[{"role": "user", "content": "Name three kinds of cheese, please."}], max_tokens=8,
                      temperature=0.0)
    one = LlamaCppBackend(model_path, n_ctx=1024)
    expected = one.complete([running])[0].texts
    one.close()
    decode, stepped = llama_cpp.llama_decode, threading.Event()

    def faulty(ctx: object, batch: llama_cpp.llama_batch) -> int:
        if batch.n_tokens > 1 and batch.seq_id[0][0] == 1:  # the second sequence's prompt
            return -1
        if batch.n_tokens == 1:
            stepped.set()  # the first request is generating
        return int(decode(ctx, batch))

    monkeypatch.setattr(llama_cpp, "llama_decode", faulty)
    batched = LlamaCppBackend(model_path, n_ctx=1024, sequences=2)
    results: list[list[str]] = []
    worker = threading.Thread(target=lambda: results.append(batched.complete([running])[0].texts))
    worker.start()
    try:
        assert stepped.wait(60)
        with pytest.raises(ModelError, match="could not decode"):
            batched.complete([failing])
    finally:
        worker.join()
        batched.close()
    assert results == [expected]


def test_cut_short_model_file_is_one_clear_line(model_path: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(model_path.read_bytes()[: 20 << 20])
    result = CliRunner().invoke(cli, ["model", "chat", "-q", "hi", "--model", str(cut)])
    assert result.exit_code == 1
    assert result.output.startswith("error: llama.cpp cannot load") and result.output.count("\n") == 1


def test_serve_answers_openai_clients_and_logs_prompts(seedlab_home: Path) -> None:
    server, url = serve_process(seedlab_home)
    try:
        wait_until_up(server, url)

        client = OpenAIBackend(url, concurrency=8)
        assert client.model_id == DEFAULT_MODEL
        requests = [Request(messages=[{"role": "user", "content": f"Say the number {i}."}], max_tokens=16, seed=i)
                    for i in range(8)]
        results = client.complete(requests)
        assert len(results) == 8 and all(r.texts[0] for r in results)
        streamed = "".join(client.stream(Request(prompt="One, two,", max_tokens=6, seed=0)))
        assert streamed

        bad_json = httpx.post(f"{url}/chat/completions", content=b"{not json", timeout=10)
        unknown = httpx.post(f"{url}/chat/completions", timeout=10,
                             json={"model": "nope", "messages": [{"role": "user", "content": "hi"}]})
        no_messages = httpx.post(f"{url}/chat/completions", json={"max_tokens": 5}, timeout=10)
        assert (bad_json.status_code, unknown.status_code, no_messages.status_code) == (400, 404, 400)
        assert "not valid JSON" in bad_json.json()["error"]["message"]
        assert server.poll() is None  # still serving after bad input
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert f"serving {DEFAULT_MODEL} at {url}" in output and "Traceback" not in output
    lines = (seedlab_home / "logs" / "prompts.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 9  # 8 chat requests and one completion; invalid requests are not logged
    asked = {r["messages"][0]["content"] for r in records if "messages" in r}
    assert asked == {f"Say the number {i}." for i in range(8)}
    assert all(r["id"] and r["time"] for r in records)


def test_gguf_converts_once_to_hf_and_generates(model_path: Path, seedlab_home: Path) -> None:
    from seedlab.backends._hf import TransformersBackend

    cache = seedlab_home / "cache" / "models"
    ref = resolve_model(DEFAULT_MODEL, cache)
    folder = hf_copy(ref, cache)
    assert (folder / "config.json").is_file() and "quantization_config" not in (folder / "config.json").read_text()
    written = (folder / "model.safetensors").stat().st_mtime_ns
    assert hf_copy(ref, cache) == folder  # cached: the second call converts nothing
    assert (folder / "model.safetensors").stat().st_mtime_ns == written
    hf = TransformersBackend(folder)
    request = Request(messages=[{"role": "user", "content": "Say hello."}], max_tokens=8, seed=0)
    assert hf.complete([request])[0].texts[0].strip()
    # greedy requests run as one left-padded batch, and answer as they would one by one
    greedy = [Request(messages=[{"role": "user", "content": q}], max_tokens=12, temperature=0.0)
              for q in ("What is the capital of France?", "Name a colour.", "Count from one to five, please.")]
    batched = hf.complete(greedy)
    alone = [hf._one(r) for r in greedy]
    assert [r.texts for r in batched] == [r.texts for r in alone]
    assert [r.completion_tokens for r in batched] == [r.completion_tokens for r in alone]
    listing = CliRunner().invoke(cli, ["model", "list"])
    assert "cached" in listing.output


def test_an_adapter_is_evaluated_on_llama_cpp_against_its_base_written_the_same_way(seedlab_home: Path,
                                                                                     tmp_path: Path) -> None:
    """`model evaluate` merges an adapter into a Q8_0 GGUF and writes the base through the same path: with an
    adapter that changes nothing (LoRA's B starts at zero) both answer every question alike, on llama.cpp."""
    import transformers
    from peft import LoraConfig, get_peft_model

    from seedlab.config import load_settings
    from seedlab.eval import EvaluateOptions, evaluate
    from seedlab.workspace import init_workspace

    settings = load_settings()
    init_workspace(settings)
    folder = hf_copy(resolve_model(DEFAULT_MODEL, settings.models_path), settings.models_path)
    model = get_peft_model(transformers.AutoModelForCausalLM.from_pretrained(folder),
                           LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    adapter = tmp_path / "run" / "adapter"
    model.save_pretrained(adapter)
    lines: list[str] = []
    options = EvaluateOptions(str(adapter), taxonomy_base="empty", benchmarks=("knowledge-branch",))
    report = evaluate(settings, options, lines.append)
    assert any(line.startswith("base: ") and "/compared/" in line for line in lines)
    assert any(line.startswith("candidate: ") and "adapter-" in line and line.split()[1].endswith(".gguf")
               for line in lines)
    knowledge = [r for r in report.answers if r["benchmark"] == "knowledge-branch"]
    assert knowledge and all(r["base"]["answer"] == r["candidate"]["answer"] for r in knowledge)
    assert report.uplift["points"] == 0
