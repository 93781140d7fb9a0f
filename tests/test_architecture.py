"""The import rules docs/ARCHITECTURE.md states, checked on the source: no folder reaches into another folder's
private modules, no stage imports the CLI, the stages' imports form no cycle, and functions stay short."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import seedlab

ROOT = Path(seedlab.__file__).parent
LONGEST = 60  # lines; a longer function is two


def _modules() -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(ROOT.rglob("*.py")):
        yield path, ast.parse(path.read_text(encoding="utf-8"))


def _imports(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, module) of every `from seedlab... import` and `import seedlab...`, lazy ones inside functions too."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("seedlab"):
            yield node.lineno, node.module
        elif isinstance(node, ast.Import):
            yield from ((node.lineno, a.name) for a in node.names if a.name.startswith("seedlab"))


def _unit(path: Path) -> str:
    """The stage a file belongs to: its folder under seedlab/, or the top-level module's name."""
    parts = path.relative_to(ROOT).parts
    return parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")


def test_no_module_imports_another_folders_private_module() -> None:
    found = []
    for path, tree in _modules():
        for line, module in _imports(tree):
            parts = module.split(".")[1:]
            private = next((i for i, p in enumerate(parts) if p.startswith("_") and p != "__main__"), None)
            if private is not None and ROOT.joinpath(*parts[:private]) != path.parent:
                found.append(f"{path.relative_to(ROOT.parent)}:{line} imports {module}")
    assert found == []


def test_no_stage_imports_the_cli_and_stages_form_no_cycle() -> None:
    edges: dict[str, set[str]] = {}
    for path, tree in _modules():
        unit = _unit(path)
        for _line, module in _imports(tree):
            target = module.split(".")[1] if "." in module else "seedlab"
            if target not in (unit, "seedlab"):
                edges.setdefault(unit, set()).add(target)
    assert [u for u, targets in edges.items() if "cli" in targets and u != "__main__"] == []

    def cycle_from(unit: str, path: list[str]) -> list[str] | None:
        for target in sorted(edges.get(unit, ())):
            if target in path:
                return path[path.index(target):] + [target]
            found = cycle_from(target, path + [target])
            if found:
                return found
        return None

    assert [cycle_from(u, [u]) for u in sorted(edges) if cycle_from(u, [u])] == []


def test_functions_stay_short() -> None:
    long = [f"{path.relative_to(ROOT.parent)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for path, tree in _modules() for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno
            and node.end_lineno - node.lineno + 1 > LONGEST]
    assert long == []
