"""The rules of ARCHITECTURE.md, checked on the source: imports never go in a circle, and
steps never import the command line (commands/, cli.py)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

SRC = ROOT / "src"


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / "xenlfs").rglob("*.py")):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The xenlfs modules `name` imports, anywhere in it (also inside functions)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                # `from xenlfs.lab import images` imports the module xenlfs.lab.images.
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {module for module in found if module in known and module != name}


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in sorted(graph[module]):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_the_graph_sees_imports_inside_functions() -> None:
    # cli.py imports the verbs by name (importlib); everything else is a plain import.
    graph = import_graph()
    assert "xenlfs.commands.parser" in graph["xenlfs.cli"]
    assert "xenlfs.commands.lab_options" in graph["xenlfs.commands.lab_demo"]


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_a_cycle_is_found() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_steps_never_import_the_command_line() -> None:
    offenders = {
        module: sorted(target for target in targets
                       if target == "xenlfs.cli" or target.startswith("xenlfs.commands"))
        for module, targets in import_graph().items()
        if module not in ("xenlfs.cli", "xenlfs.__main__")
        and not module.startswith("xenlfs.commands")
    }
    assert {module: targets for module, targets in offenders.items() if targets} == {}
