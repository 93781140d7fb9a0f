"""Fuzz the validator: mutated example leaves must give Problems, never an exception."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from seedlab.taxonomy import Problem, validate_file

EXAMPLES = Path(__file__).resolve().parents[1] / "seedlab" / "examples" / "taxonomy"
LEAVES = [
    "compositional_skills/extraction/meetings/action_items/qna.yaml",
    "compositional_skills/writing/rewriting/formal_tone/qna.yaml",
    "knowledge/community/seed_libraries/halvane/qna.yaml",
]
TEXTS = {rel: (EXAMPLES / rel).read_text(encoding="utf-8") for rel in LEAVES}

# Files go to a module-scoped folder: hypothesis runs many examples per test call, function fixtures would be shared.
FUZZ = settings(max_examples=150, deadline=None)

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
)
wrong_values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(),
    st.lists(scalars, max_size=4), st.dictionaries(st.text(max_size=8), scalars, max_size=4),
    st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                         max_size=3), max_leaves=8),
)
junk = st.one_of(
    st.binary(min_size=1, max_size=12),
    st.sampled_from([b"\0", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xef\xbf\xbe", b"\r", b"\t", b"\x85", b"\x1b",
                     b"&a ", b"*a", b"*undefined", b"!!python/object:os.system ", b"{", b"[", b"- ", b": ", b"'",
                     b'"', b"\n  ", b"---\n", b"...\n", b"%YAML 1.1\n", b"? ", b"<<: *a\n", b"\xe2\x80\xa8"]),
)


def node_paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key/index path inside a parsed document, parents before children (junk can make it recursive)."""
    paths: list[tuple[Any, ...]] = []
    if len(prefix) > 8:
        return paths
    children = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else []
    for step, value in children:
        paths.append((*prefix, step))
        paths += node_paths(value, (*prefix, step))
    return paths


def shape(path: tuple[Any, ...]) -> str:
    return ".".join("*" if isinstance(step, int) else str(step) for step in path)


def parent_of(data: Any, path: tuple[Any, ...]) -> Any:
    for step in path[:-1]:
        data = data[step]
    return data


MUTATIONS = ("delete_key", "wrong_type", "truncate", "junk", "duplicate_line", "swap_lines")


def mutate(draw: st.DrawFn, raw: bytes, kinds: tuple[str, ...] = MUTATIONS) -> bytes:
    """One random mutation of the file's bytes."""
    kind = draw(st.sampled_from(kinds))
    if kind in ("delete_key", "wrong_type"):
        try:
            data = yaml.safe_load(raw.decode("utf-8"))
        except (UnicodeDecodeError, yaml.YAMLError):
            data = None
        paths = node_paths(data)
        if kind == "delete_key":
            paths = [p for p in paths if isinstance(parent_of(data, p), dict)]
        if paths and "&" not in raw.decode("utf-8"):  # anchors from junk: the data may be recursive, skip it
            # Pick a shape first (seed_examples[*].context, ...) so rare keys are hit as often as common ones.
            shapes = sorted({shape(p) for p in paths})
            wanted = draw(st.sampled_from(shapes))
            path = draw(st.sampled_from([p for p in paths if shape(p) == wanted]))
            parent = parent_of(data, path)
            if kind == "delete_key":
                del parent[path[-1]]
            else:
                parent[path[-1]] = draw(wrong_values)
            return yaml.safe_dump(data, sort_keys=draw(st.booleans()), allow_unicode=draw(st.booleans())).encode()
        kind = "junk"  # no parsed document to change: fall back to a byte mutation
    if kind == "truncate":
        return raw[: draw(st.integers(0, len(raw)))]
    lines = raw.splitlines(keepends=True) or [b""]
    if kind == "duplicate_line":
        i = draw(st.integers(0, len(lines) - 1))
        return b"".join(lines[: i + 1] + lines[i:])
    if kind == "swap_lines":
        i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
        lines[i], lines[j] = lines[j], lines[i]
        return b"".join(lines)
    at = draw(st.integers(0, len(raw)))
    return raw[:at] + draw(junk) + raw[at:]


@st.composite
def mutated_leaf(
    draw: st.DrawFn, max_mutations: int = 3, leaves: list[str] = LEAVES, kinds: tuple[str, ...] = MUTATIONS
) -> tuple[str, bytes]:
    rel = draw(st.sampled_from(leaves))
    raw = TEXTS[rel].encode("utf-8")
    for _ in range(draw(st.integers(1, max_mutations))):
        raw = mutate(draw, raw, kinds)
    return rel, raw


@pytest.fixture(scope="module")
def fuzz_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def assert_sane(problems: Any, display: str) -> None:
    assert isinstance(problems, list)
    for problem in problems:
        assert isinstance(problem, Problem)
        assert problem.path == display
        assert isinstance(problem.line, int) and problem.line >= 1, problem
        assert isinstance(problem.column, int) and problem.column >= 1, problem
        assert problem.level in ("error", "warning"), problem
        assert isinstance(problem.message, str) and problem.message.strip(), problem
    positions = [(p.line, p.column) for p in problems]
    assert positions == sorted(positions)


def run(root: Path, rel: str, raw: bytes) -> list[Problem]:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw)
    problems = validate_file(path, rel)
    assert_sane(problems, rel)
    return problems


@pytest.mark.parametrize("rel", LEAVES)
def test_unmutated_examples_are_valid(fuzz_root: Path, rel: str) -> None:
    assert run(fuzz_root, rel, TEXTS[rel].encode()) == []


@FUZZ
@given(leaf=mutated_leaf())
def test_mutated_examples_never_raise(fuzz_root: Path, leaf: tuple[str, bytes]) -> None:
    rel, raw = leaf
    run(fuzz_root, rel, raw)


@pytest.mark.parametrize("rel", LEAVES)
def test_changed_keys_and_types_never_raise(fuzz_root: Path, rel: str) -> None:
    # Data-level mutations only, one leaf at a time, so that every key of every leaf gets its turn.
    @FUZZ
    @given(leaf=mutated_leaf(max_mutations=2, leaves=[rel], kinds=("delete_key", "wrong_type")))
    def check(leaf: tuple[str, bytes]) -> None:
        run(fuzz_root, *leaf)

    check()


@FUZZ
@given(leaf=mutated_leaf(max_mutations=1), name=st.sampled_from(["qna.yaml", "qna.yml"]))
def test_single_mutations_keep_positions_inside_the_file(fuzz_root: Path, leaf: tuple[str, bytes], name: str) -> None:
    rel, raw = leaf
    rel = rel.rsplit("/", 1)[0] + "/" + name
    problems = run(fuzz_root, rel, raw)
    lines = max(raw.count(b"\n"), len(raw.decode("utf-8", "replace").splitlines())) + 1
    for problem in problems:
        assert problem.line <= lines, problem


@FUZZ
@given(text=st.text(max_size=300), top=st.sampled_from(["compositional_skills/x", "knowledge/x", "other/x"]))
def test_arbitrary_text_never_raises(fuzz_root: Path, text: str, top: str) -> None:
    run(fuzz_root, f"{top}/qna.yaml", text.encode("utf-8", "surrogatepass"))


@FUZZ
@given(data=wrong_values, top=st.sampled_from(["compositional_skills/x", "knowledge/x"]))
def test_arbitrary_documents_never_raise(fuzz_root: Path, data: Any, top: str) -> None:
    run(fuzz_root, f"{top}/qna.yaml", yaml.safe_dump(data).encode())
