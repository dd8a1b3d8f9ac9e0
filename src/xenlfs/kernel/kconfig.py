"""A best-effort reader of a kernel tree's Kconfig files, for *explanations* only.

Truth about what a configuration ends up as always comes from the tree's own
scripts/kconfig (`make olddefconfig`, see fix.py); this reader only answers "which symbols
exist here", "what does this one depend on" and "where is it in menuconfig", which conf does
not print for an option it hides. docs/kernel.md says why (kconfiglib cannot parse Linux
>= 5.13, and menuconfig's search is interactive). Where this reader cannot evaluate
something (a $(shell) macro in an expression), it assumes the condition holds, so it never
invents an unmet dependency.
"""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass, field
from pathlib import Path

from xenlfs.kernel.config import KernelConfig

_MACROS = {"SRCARCH": "x86", "ARCH": "x86_64", "HEADER_ARCH": "x86", "KCONFIG_EXT_PREFIX": ""}
_TYPES = ("bool", "tristate", "string", "int", "hex")
_TOKEN = re.compile(r'\s*(&&|\|\||!=|<=|>=|[!=()<>]|"(?:[^"\\]|\\.)*"|\$\([^)]*\)|[A-Za-z0-9_.-]+)')


@dataclass
class Symbol:
    name: str
    type: str | None = None
    prompt: str | None = None
    depends: list[str] = field(default_factory=list)  # of the definition with the prompt
    selected_by: list[str] = field(default_factory=list)
    defined_at: str = ""
    location: tuple[str, ...] = ()


@dataclass
class _Entry:
    kind: str  # config, menuconfig, menu, choice, comment
    name: str = ""
    type: str | None = None
    prompt: str | None = None
    depends: list[str] = field(default_factory=list)
    where: str = ""


@dataclass
class _Level:
    title: str | None  # menu or choice prompt; None for the top level
    depends: list[str]
    chain: list[tuple[str, str]] = field(default_factory=list)  # implicit submenus


@dataclass
class Kconfig:
    symbols: dict[str, Symbol]

    def __contains__(self, name: str) -> bool:
        return name in self.symbols


def _expand(text: str) -> str:
    return re.sub(r"\$\((\w+)\)", lambda m: _MACROS.get(m[1], m[0]), text)


def _unquote(text: str) -> str:
    text = text.strip()
    match = re.match(r'"((?:[^"\\]|\\.)*)"', text)
    return match[1] if match else text


def _split_if(text: str) -> tuple[str, str | None]:
    """'"prompt" if EXPR' → ('"prompt"', 'EXPR'), outside quotes."""
    quoted = False
    for i, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif not quoted and text.startswith(" if ", i - 1) and i > 0:
            return text[: i - 1].strip(), text[i + 2:].strip()
    return text.strip(), None


def _strip_comment(line: str) -> str:
    quoted = False
    for i, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == "#" and not quoted:
            return line[:i]
    return line


class _Reader:
    def __init__(self, tree: Path) -> None:
        self.tree = tree
        self.symbols: dict[str, Symbol] = {}
        self.levels: list[_Level] = [_Level(None, [])]
        self.ifs: list[list[str]] = [[]]  # if-conditions, one list per menu level
        self.entry: _Entry | None = None

    def symbol(self, name: str) -> Symbol:
        return self.symbols.setdefault(name, Symbol(name))

    def finish(self) -> None:
        entry, self.entry = self.entry, None
        if entry is None or entry.kind not in ("config", "menuconfig"):
            return
        level = self.levels[-1]
        local = entry.depends + self.ifs[-1]
        # Like menuconfig, an entry goes under a preceding one it plainly depends on.
        refs = {part for dep in local for part in conjuncts(dep)}
        while level.chain and level.chain[-1][0] not in refs:
            level.chain.pop()
        sym = self.symbol(entry.name)
        sym.type = sym.type or entry.type
        if entry.prompt is not None and sym.prompt is None:
            sym.prompt = entry.prompt
            sym.depends = local + [d for lvl in self.levels for d in lvl.depends]
            sym.defined_at = entry.where
            titles = [lvl.title for lvl in self.levels if lvl.title]
            sym.location = (*titles, *(label for _, label in level.chain))
        elif not sym.defined_at:
            sym.depends = local + [d for lvl in self.levels for d in lvl.depends]
            sym.defined_at = entry.where
        if entry.prompt is not None:
            level.chain.append((entry.name, f"{entry.prompt} ({entry.name})"))

    def read(self, path: Path) -> None:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return
        lines = text.replace("\\\n", " ").splitlines()
        help_indent: int | None = None
        for number, raw in enumerate(lines, 1):
            if help_indent is not None:
                width = len(raw.expandtabs(8)) - len(raw.expandtabs(8).lstrip())
                if not raw.strip() or width > help_indent:
                    continue
                help_indent = None
            line = _strip_comment(raw).strip()
            if not line:
                continue
            word, *tail = line.split(None, 1)
            rest = tail[0].strip() if tail else ""
            where = f"{path.relative_to(self.tree)}:{number}"
            if word in ("help", "---help---"):
                help_indent = len(raw.expandtabs(8)) - len(raw.expandtabs(8).lstrip())
            elif word in ("config", "menuconfig"):
                self.finish()
                self.entry = _Entry(word, rest, where=where)
            elif word in ("menu", "choice", "comment"):
                self.finish()
                self.entry = _Entry(word, prompt=_unquote(rest) if rest else None, where=where)
                if word != "comment":
                    self.levels.append(_Level(_unquote(rest) if rest else None, []))
                    self.ifs.append([])
            elif word in ("endmenu", "endchoice"):
                self.finish()
                if len(self.levels) > 1:
                    self.levels.pop()
                    self.ifs.pop()
            elif word == "if":
                self.finish()
                self.ifs[-1].append(rest)
            elif word == "endif":
                self.finish()
                if self.ifs[-1]:
                    self.ifs[-1].pop()
            elif word in ("source", "osource", "rsource", "orsource"):
                self.finish()
                name = _expand(_unquote(rest))
                base = path.parent if word.startswith(("r", "or")) else self.tree
                for found in sorted(glob.glob(str(base / name))):
                    self.read(Path(found))
            elif self.entry is not None:
                self.attribute(word, rest)

    def attribute(self, word: str, rest: str) -> None:
        entry = self.entry
        assert entry is not None
        if word in _TYPES or word in ("def_bool", "def_tristate"):
            entry.type = word.removeprefix("def_").replace("_", "")
            if word in _TYPES and rest:
                prompt, _ = _split_if(rest)
                entry.prompt = _unquote(prompt)
        elif word == "prompt":
            prompt, _ = _split_if(rest)
            entry.prompt = _unquote(prompt)
        elif word == "depends" and rest.startswith("on "):
            depends = rest[3:].strip()
            if entry.kind in ("menu", "choice"):
                self.levels[-1].depends.append(depends)
            else:
                entry.depends.append(depends)
        elif word == "visible" and entry.kind == "menu":
            self.levels[-1].depends.append(rest.removeprefix("if").strip())
        elif word == "select" and entry.kind in ("config", "menuconfig"):
            target, condition = _split_if(rest)
            label = entry.name + (f" if {condition}" if condition else "")
            self.symbol(target).selected_by.append(label)


def read_tree(tree: Path) -> Kconfig:
    reader = _Reader(tree)
    reader.read(tree / "Kconfig")
    reader.finish()
    return Kconfig({n: s for n, s in reader.symbols.items() if s.defined_at})


# ---- expressions ---------------------------------------------------------------------------

_TRI = {"n": 0, "m": 1, "y": 2}


def _tokens(expr: str) -> list[str]:
    tokens, pos = [], 0
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if not match:
            break
        tokens.append(match[1])
        pos = match.end()
    return tokens


class _Eval:
    """Kconfig's tristate logic: && is min, || is max, ! is 2 - x, comparisons give n or y."""

    def __init__(self, tokens: list[str], config: KernelConfig, kconfig: Kconfig) -> None:
        self.tokens, self.pos, self.config, self.kconfig = tokens, 0, config, kconfig

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def expr(self) -> int:
        value = self.conj()
        while self.peek() == "||":
            self.take()
            value = max(value, self.conj())
        return value

    def conj(self) -> int:
        value = self.unary()
        while self.peek() == "&&":
            self.take()
            value = min(value, self.unary())
        return value

    def unary(self) -> int:
        if self.peek() == "!":
            self.take()
            return 2 - self.unary()
        if self.peek() == "(":
            self.take()
            value = self.expr()
            if self.peek() == ")":
                self.take()
            return value
        left = self.operand()
        if self.peek() in ("=", "!=", "<", ">", "<=", ">="):
            op, right = self.take(), self.operand()
            return 2 if _compare(left, op, right) else 0
        return _TRI.get(left, 2 if left.startswith("$(") else 0)

    def operand(self) -> str:
        token = self.take() if self.peek() is not None else "n"
        if token.startswith('"'):
            return _unquote(token)
        if token in self.kconfig:
            return self.config.get(token)
        if token in _TRI or token.startswith("$(") or not re.fullmatch(r"[A-Z0-9_]+", token):
            return token
        return "n"  # a symbol this tree does not define is n, as in conf


def _compare(left: str, op: str, right: str) -> bool:
    if op == "=":
        return left == right
    if op == "!=":
        return left != right
    try:
        a, b = int(left, 0), int(right, 0)
    except ValueError:
        return False
    return {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]


def evaluate(expr: str, config: KernelConfig, kconfig: Kconfig) -> int:
    """0 (n), 1 (m) or 2 (y)."""
    return _Eval(_tokens(expr), config, kconfig).expr()


def conjuncts(expr: str) -> list[str]:
    """Split an expression at its top-level &&."""
    return _split(expr, "&&")


def disjuncts(expr: str) -> list[str]:
    """Split an expression at its top-level ||."""
    return _split(expr, "||")


def _split(expr: str, operator: str) -> list[str]:
    parts, depth, start = [], 0, 0
    tokens = _tokens(expr)
    if len(tokens) > 2 and tokens[0] == "(" and tokens[-1] == ")":
        inner = _tokens(" ".join(tokens[1:-1]))
        if _balanced(inner):
            tokens = inner
    for i, token in enumerate(tokens):
        depth += token == "("
        depth -= token == ")"
        if token == operator and depth == 0:
            parts.append(" ".join(tokens[start:i]))
            start = i + 1
    parts.append(" ".join(tokens[start:]))
    return [p for p in parts if p]


def _balanced(tokens: list[str]) -> bool:
    depth = 0
    for token in tokens:
        depth += (token == "(") - (token == ")")
        if depth < 0:
            return False
    return depth == 0


def positive_symbols(expr: str, kconfig: Kconfig) -> list[str]:
    """Symbols an expression wants on (not those under '!' or compared to a value)."""
    tokens = _tokens(expr)
    found = []
    for i, token in enumerate(tokens):
        if token not in kconfig:
            continue
        before = tokens[i - 1] if i else ""
        after = tokens[i + 1] if i + 1 < len(tokens) else ""
        if before in ("!", "=", "!=") or after in ("=", "!=", "<", ">", "<=", ">="):
            continue
        found.append(token)
    return found


def annotate(expr: str, config: KernelConfig, kconfig: Kconfig) -> str:
    """menuconfig's style: each symbol followed by its value, 'ACPI [=n] && PCI [=y]'."""
    return " ".join(f"{t} [={config.get(t)}]" if t in kconfig else t for t in _tokens(expr))
