"""Every file seedlab reads from a user, fuzzed: the result is the data or one SeedlabError naming the file, never
another exception. (qna.yaml has its own fuzz test in test_validate_fuzz.py.)"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seedlab.errors import SeedlabError

READS = 200  # inputs per reader; the README's reliability table quotes this
FUZZ = settings(max_examples=READS, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FOLDER = Path(tempfile.mkdtemp(prefix="seedlab-fuzz-"))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
# Rows that look almost right: the keys the readers want, with values of every type.
KEYS = ["messages", "metadata", "prompt", "question", "answer", "key_facts", "chosen", "rejected", "role",
        "content", "kind", "leaf", "unmask", "options", "status", "id"]
near_rows = st.dictionaries(st.sampled_from(KEYS), json_values | st.lists(
    st.dictionaries(st.sampled_from(["role", "content"]), json_values, max_size=2), max_size=3), max_size=5)
lines = st.one_of(
    near_rows.map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=40),
    st.sampled_from(["[" * 5000, '{"a":' * 3000, "1e999999", "NaN", '"\\ud800"', "\x00", '{"prompt": 1e400}']),
)
raw_tail = st.sampled_from([b"", b"\xff\xfe", b"\xc3", b"\x00", b"\n\n", b"\r\n"])


def jsonl(rows: list[str], tail: bytes) -> bytes:
    return "\n".join(rows).encode("utf-8", "surrogatepass") + tail


def survives(read: Callable[[Path], Any], data: bytes, name: str = "input.jsonl") -> None:
    path = FOLDER / name
    path.write_bytes(data)
    try:
        read(path)
    except SeedlabError as exc:
        assert str(path) in str(exc) or path.name in str(exc), f"the error does not name the file: {exc}"


@FUZZ
@given(st.lists(lines, max_size=6), raw_tail)
def test_training_data(rows: list[str], tail: bytes) -> None:
    from seedlab.train._data import load_samples

    survives(load_samples, jsonl(rows, tail))


@FUZZ
@given(st.lists(lines, max_size=6), raw_tail)
def test_held_out_questions(rows: list[str], tail: bytes) -> None:
    from seedlab.eval import load_questions

    survives(load_questions, jsonl(rows, tail))


@FUZZ
@given(st.lists(lines, max_size=6), raw_tail)
def test_judge_pairs(rows: list[str], tail: bytes) -> None:
    from seedlab.judge import load_pairs

    survives(load_pairs, jsonl(rows, tail))


@FUZZ
@given(st.lists(lines, max_size=6), raw_tail)
def test_prompts_and_the_prompt_log(rows: list[str], tail: bytes) -> None:
    from seedlab.prompts import load_prompts

    survives(load_prompts, jsonl(rows, tail))


@FUZZ
@given(st.lists(lines, max_size=6), raw_tail)
def test_general_questions(rows: list[str], tail: bytes) -> None:
    from seedlab.build import load_general

    survives(load_general, jsonl(rows, tail))


CONFIG = yaml.safe_dump({"model": {"default": "smollm2-135m-instruct"}, "train": {"lr": 1e-4, "epochs": 2},
                         "sdg": {"scale": 2, "templates": "default"}, "serve": {"port": 8000}})
yaml_junk = st.sampled_from(["", ": ", "- ", "&a ", "*a", "!!python/object:os.system ", "{", "[", "'", '"', "\t",
                             "\xff", "1e999", "-1", "null", "~", "[1, 2]", "{a: b}", "?", "<<: *a", "%YAML 1.1"])


def mutate(text: str, cuts: list[tuple[int, str]]) -> str:
    for at, piece in cuts:
        at %= len(text) + 1
        text = text[:at] + piece + text[at:]
    return text


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 10_000), yaml_junk | st.text(max_size=6)), max_size=4))
def test_config_yaml(cuts: list[tuple[int, str]]) -> None:
    from seedlab.config import parse_config

    survives(parse_config, mutate(CONFIG, cuts).encode("utf-8", "surrogatepass"), "config.yaml")


TEMPLATES = (Path(__file__).resolve().parents[1] / "seedlab" / "sdg" / "templates" / "default.yaml").read_text()


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 100_000), yaml_junk | st.text(max_size=6)), max_size=4))
def test_template_yaml(cuts: list[tuple[int, str]]) -> None:
    from seedlab.sdg import load_templates

    survives(lambda p: load_templates(str(p)), mutate(TEMPLATES, cuts).encode("utf-8", "surrogatepass"),
             "templates.yaml")


@FUZZ
@given(json_values | near_rows | st.text(max_size=30), raw_tail)
def test_run_json(value: Any, tail: bytes) -> None:
    from seedlab.runs import open_run
    from seedlab.tao import TaoOptions

    run = FOLDER / "runs" / "r1"
    run.mkdir(parents=True, exist_ok=True)
    (run / "run.json").write_bytes(json.dumps(value).encode() + tail)
    try:
        open_run(run.parent, "r1", TaoOptions(), "tao")
    except SeedlabError as exc:
        assert "r1" in str(exc)
    finally:
        from seedlab.runs import release_run

        release_run(run)


def replace_at(data: Any, path: list[int], value: Any) -> Any:
    """`data` with the node that `path` picks (each step an index into a mapping's keys or a list) set to `value`."""
    if not path or not isinstance(data, dict | list) or not data:
        return value
    keys = list(data) if isinstance(data, dict) else list(range(len(data)))
    key = keys[path[0] % len(keys)]
    copy = dict(data) if isinstance(data, dict) else list(data)
    copy[key] = replace_at(data[key], path[1:], value)  # type: ignore[index]
    return copy


@FUZZ
@given(st.lists(st.integers(0, 50), min_size=1, max_size=4), json_values)
def test_template_values_of_every_type(path: list[int], value: Any) -> None:
    from seedlab.sdg import load_templates

    data = replace_at(yaml.safe_load(TEMPLATES), path, value)
    survives(lambda p: load_templates(str(p)), yaml.safe_dump(data).encode(), "templates.yaml")


@FUZZ
@given(st.lists(st.integers(0, 50), min_size=1, max_size=3), json_values)
def test_config_values_of_every_type(path: list[int], value: Any) -> None:
    from seedlab.config import Config, load_settings, parse_config, write_config

    write_config(FOLDER / "full.yaml", Config())
    data = replace_at(yaml.safe_load((FOLDER / "full.yaml").read_text()), path, value)
    survives(parse_config, yaml.safe_dump(data).encode(), "config.yaml")
    del load_settings


SAMPLING = ["model", "temperature", "top_p", "max_tokens", "max_completion_tokens", "n", "stop", "seed", "stream",
            "response_format", "messages", "prompt"]
bodies = st.one_of(
    st.dictionaries(st.sampled_from(SAMPLING), json_values | st.lists(
        st.dictionaries(st.sampled_from(["role", "content", "type", "text"]), json_values, max_size=3), max_size=3)
        | st.dictionaries(st.sampled_from(["type", "json_schema", "schema"]), json_values, max_size=3),
        max_size=6).map(lambda d: json.dumps(d).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=40),
    st.sampled_from([b"[" * 50_000, b'{"messages": [' * 2000, b'{"prompt": "x", "max_tokens": 1e400}']),
)


@FUZZ
@given(st.sampled_from(["/v1/chat/completions", "/v1/completions"]), bodies)
def test_server_request_bodies(path: str, body: bytes) -> None:
    """No body makes the server answer 500: each bad one is a 4xx with OpenAI's error shape."""
    from fastapi.testclient import TestClient

    from seedlab.backends import FakeBackend
    from seedlab.serve.app import create_app

    client = TestClient(create_app(FakeBackend(model_id="fake")))
    response = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code in (200, 400, 404, 413), (response.status_code, response.text[:200])
    if response.status_code != 200:
        assert response.json()["error"]["message"]
