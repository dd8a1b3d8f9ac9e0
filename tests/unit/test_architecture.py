"""The rules of ARCHITECTURE.md, checked on the source: imports never go in a circle, steps
never import the command line (commands/, cli.py), and only the runner starts processes."""

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


# Who may start a process: the one runner, and the agent inside dom0 (a standalone script
# that runs there without xenlfs's runner).
STARTERS = {"xenlfs.run", "xenlfs.lab.agent"}
STARTING = {
    "subprocess": {"run", "Popen", "call", "check_call", "check_output", "getoutput",
                   "getstatusoutput"},
    "os": {"system", "popen", "fork", "forkpty", "posix_spawn", "posix_spawnp", "execl",
           "execle", "execlp", "execlpe", "execv", "execve", "execvp", "execvpe", "spawnl",
           "spawnle", "spawnlp", "spawnlpe", "spawnv", "spawnve", "spawnvp", "spawnvpe"},
    "pty": {"spawn", "fork"},
    "asyncio": {"create_subprocess_exec", "create_subprocess_shell"},
}
# An event loop's own methods, whatever the loop is called.
LOOP_STARTING = {"subprocess_exec", "subprocess_shell"}


def process_starts(source: str) -> list[str]:
    """Where `source` starts a process, as 'line: module.function'."""
    aliases: dict[str, str] = {}  # local name -> module (import subprocess as sp)
    direct: dict[str, str] = {}  # local name -> module.function (from os import system)
    found = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in STARTING:
                    aliases[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module in STARTING:
            for alias in node.names:
                if alias.name in STARTING[node.module]:
                    direct[alias.asname or alias.name] = f"{node.module}.{alias.name}"
                    found.append(f"{node.lineno}: {node.module}.{alias.name}")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute):
            owner = func.value
            module = aliases.get(owner.id) if isinstance(owner, ast.Name) else None
            if module is not None and func.attr in STARTING[module]:
                found.append(f"{node.lineno}: {module}.{func.attr}")
            elif func.attr in LOOP_STARTING:
                found.append(f"{node.lineno}: loop.{func.attr}")
        elif isinstance(func, ast.Name) and func.id in direct:
            found.append(f"{node.lineno}: {direct[func.id]}")
    return sorted(found, key=lambda where: int(where.split(":")[0]))


def test_the_process_check_finds_every_way_to_start_one() -> None:
    source = """\
import asyncio
import os
import pty
import subprocess as sp
from os import execvp as replace

sp.run(["true"])
os.system("true")
os.spawnlp(os.P_WAIT, "true", "true")
pty.spawn(["sh"])
replace("true", ["true"])
asyncio.create_subprocess_exec("true")
asyncio.get_event_loop().subprocess_shell(None, "true")
proc: sp.Popen[bytes] = sp.Popen(["true"])
result = sp.CompletedProcess([], 0)  # building a result starts nothing
"""
    assert process_starts(source) == [
        "5: os.execvp", "7: subprocess.run", "8: os.system", "9: os.spawnlp", "10: pty.spawn",
        "11: os.execvp", "12: asyncio.create_subprocess_exec", "13: loop.subprocess_shell",
        "14: subprocess.Popen"]


def test_only_the_runner_starts_processes() -> None:
    offenders = {name: starts for name, path in modules().items() if name not in STARTERS
                 for starts in [process_starts(path.read_text())] if starts}
    assert offenders == {}, "start processes through xenlfs.run (run.run, run.spawn)"
    assert process_starts((SRC / "xenlfs/run.py").read_text())  # the check sees the runner
