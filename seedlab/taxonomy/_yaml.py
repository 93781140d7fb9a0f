"""Read a YAML file defensively: size, bytes, syntax, aliases and duplicate keys, with line marks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 1 << 20  # a qna.yaml is a few KiB; anything over 1 MiB is a mistake or an attack
MAX_NODES = 200_000  # nodes after alias expansion; "billion laughs" documents reach 10^9

# The C loader is faster and rejects absurd nesting instead of overflowing Python's stack.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Problem:
    """One finding about one file, located at a 1-based line and column."""

    path: str
    line: int
    column: int
    level: str  # "error" or "warning"
    message: str


@dataclass
class Parsed:
    """A parsed YAML document: its text, node tree (for line marks) and plain data."""

    text: str
    root: yaml.Node | None
    data: Any


def read_yaml(path: Path, display: str) -> tuple[Parsed | None, list[Problem]]:
    """Parse one file safely; on any fatal problem return None and the problems found."""

    def fail(message: str, line: int = 1, column: int = 1) -> tuple[None, list[Problem]]:
        return None, [Problem(display, line, column, "error", message)]

    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            return fail(f"file is {size / MAX_BYTES:.1f} MiB; the limit is 1 MiB: split it into smaller leaves")
        raw = path.read_bytes()
    except OSError as exc:
        return fail(f"cannot read file: {exc.strerror or exc}")
    if b"\0" in raw:
        line, column = _position(raw, raw.index(b"\0"))
        return fail("binary content (a NUL byte); a qna.yaml must be UTF-8 text", line, column)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _position(raw, exc.start)
        return fail(f"not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the file as UTF-8", line, column)
    return parse_yaml(text, display)


def parse_yaml(text: str, display: str) -> tuple[Parsed | None, list[Problem]]:
    """Compose, check and construct a YAML document held in memory."""
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = exc.problem or exc.context or "invalid YAML"
        return None, [Problem(display, line, column, "error", f"YAML syntax error: {what}")]
    except (yaml.YAMLError, RecursionError) as exc:
        return None, [Problem(display, 1, 1, "error", f"YAML syntax error: {str(exc).splitlines()[0]}")]
    if root is None:
        return Parsed(text, None, None), []
    if _expanded_size(root) > MAX_NODES:
        message = f"aliases expand to over {MAX_NODES:,} nodes (a 'billion laughs' document); remove the aliases"
        return None, [Problem(display, 1, 1, "error", message)]
    problems = _duplicate_keys(root, display)
    try:
        data = _Loader(text).construct_document(root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problems.append(Problem(display, line, column, "error", f"YAML value error: {exc.problem}"))
        return None, problems
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
        # SafeConstructor can raise plain ValueError on values such as an out-of-range timestamp.
        problems.append(Problem(display, 1, 1, "error", f"YAML value error: {exc}"))
        return None, problems
    return Parsed(text, root, data), problems


def node_at(root: yaml.Node, path: list[Any]) -> yaml.Node:
    """The deepest node that the given key/index path reaches (for line numbers)."""
    node = root
    for step in path:
        child = _child(node, step)
        if child is None:
            break
        node = child
    return node


def key_node(mapping: yaml.Node, key: str) -> yaml.Node | None:
    """The key node of `key` inside a mapping node, to point at the key's own line."""
    if isinstance(mapping, yaml.MappingNode):
        for k, _ in mapping.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return k
    return None


def _child(node: yaml.Node, step: Any) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in reversed(node.value):  # the constructor keeps the last of duplicate keys
            if isinstance(k, yaml.ScalarNode) and k.value == str(step):
                return v
    if isinstance(node, yaml.SequenceNode) and isinstance(step, int) and 0 <= step < len(node.value):
        return node.value[step]
    return None


def _expanded_size(root: yaml.Node) -> int:
    # Aliases make the node graph a DAG: count what a full expansion would build, memoised per node.
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()  # the nodes on the current path: meeting one again means a recursive alias
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        if not children_done and id(node) in open_nodes:
            return MAX_NODES + 1  # `&a [*a]` contains itself: its expansion never ends
        kids = _children(node)
        if children_done or not kids:
            sizes[id(node)] = min(1 + sum(sizes[id(k)] for k in kids), MAX_NODES + 1)
            open_nodes.discard(id(node))
            continue
        open_nodes.add(id(node))
        stack.append((node, True))
        stack.extend((k, False) for k in kids if id(k) not in sizes)
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _duplicate_keys(root: yaml.Node, display: str) -> list[Problem]:
    problems = []
    seen_nodes: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key, _ in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value != "<<":
                    if key.value in first:
                        message = f"duplicate key '{key.value}' (first at line {first[key.value]}): keep one"
                        mark = key.start_mark
                        problems.append(Problem(display, mark.line + 1, mark.column + 1, "error", message))
                    else:
                        first[key.value] = key.start_mark.line + 1
        stack.extend(_children(node))
    return problems


def _position(raw: bytes, offset: int) -> tuple[int, int]:
    line = raw.count(b"\n", 0, offset) + 1
    # Count characters, not bytes, like the parser's marks: "é" before the bad byte is one column.
    column = len(raw[raw.rfind(b"\n", 0, offset) + 1 : offset].decode("utf-8", "replace")) + 1
    return line, column
