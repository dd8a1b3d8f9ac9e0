"""xl guest config files, read exactly as Xen's libxlu reads them (Xen 4.17).

The grammar, learnt from tools/libs/util/libxlu_cfg_{l.l,y.y}.c and xl.cfg(5):
  file       := statement* [assignment]          (the last line may lack its newline)
  statement  := assignment (NEWLINE | ';') | NEWLINE | ';'
  assignment := IDENT ('=' | '+=') value
  value      := STRING | NUMBER | '[' NEWLINE* [value NEWLINE* (',' NEWLINE* value NEWLINE*)*
                [',' NEWLINE*]] ']'
Identifiers are lower case ([a-z][._0-9a-z]*); numbers ([0-9][0-9a-fx]*) are kept as strings
and only converted by whoever reads the key; a comment runs from '#' to the newline and counts
as one, so a comment on a last line without a newline is an error (all but a lone '#':
the scanner drops a bad byte that is the file's very last). Any other character
(a carriage return, an upper-case letter, '(' ...) is a lexical error, and libxlu refuses the
whole file on the first error. `+=` appends to the value assigned so far; the last assignment
wins. Every value keeps its line and column so checks can point at it.
"""

from __future__ import annotations

import gc
import os
import re
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from xenlfs.errors import SourceError


class Pos(NamedTuple):  # one per value: a tuple costs half a dataclass
    line: int
    col: int


@dataclass(frozen=True, slots=True)
class Atom:
    """A string or a number: libxlu keeps both as text. Its place is kept as two numbers, not a
    Pos: a list of a million numbers is a million Atoms."""

    text: str
    line: int
    col: int
    number: bool = False

    @property
    def pos(self) -> Pos:
        return Pos(self.line, self.col)


@dataclass(frozen=True, slots=True)
class List:
    items: tuple[Value, ...]
    pos: Pos


Value = Atom | List


@dataclass(frozen=True)
class Assignment:
    name: str
    op: str  # "=" or "+="
    value: Value
    pos: Pos
    start: int  # offsets of the statement in the text, for the editor
    end: int


@dataclass(frozen=True)
class Config:
    path: str
    text: str
    assignments: tuple[Assignment, ...]
    values: Mapping[str, Value]  # what xl sees for each key: last assignment, += applied
    ops: Mapping[str, str]  # the operator of the assignment that produced values[key]
    last: Mapping[str, Assignment]  # each key's last assignment

    def where(self, name: str) -> Assignment:
        """The last assignment of `name` (where xl's value for it comes from)."""
        return self.last[name]

    def string(self, name: str) -> str | None:
        value = self.values.get(name)
        return value.text if isinstance(value, Atom) else None

    def plain(self) -> dict[str, object]:
        return {k: plain(v) for k, v in self.values.items()}


def plain(value: Value) -> object:
    """Strings and nested lists of them; a loop, not recursion: xl allows lists ~5000 deep."""
    if isinstance(value, Atom):
        return value.text
    top: list[object] = []
    work: list[tuple[List, list[object]]] = [(value, top)]
    while work:
        lst, out = work.pop()
        for item in lst.items:
            if isinstance(item, Atom):
                out.append(item.text)
            else:
                inner: list[object] = []
                out.append(inner)
                work.append((item, inner))
    return top


def flat(value: Value) -> tuple[str, ...]:
    """A value as one flat tuple ('[' and ']' around list items, a string as "s:TEXT"), to
    compare values of any depth without recursion."""
    out: list[str] = []
    work: list[Value | str] = [value]
    while work:
        item = work.pop()
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, Atom):
            out.append("s:" + item.text)
        else:
            out.append("[")
            work.append("]")
            work.extend(reversed(item.items))
    return tuple(out)


# --- lexer -------------------------------------------------------------------------------

# Blanks are taken with the word after them: one match per word.
_TOKENS = re.compile(r"""[ \t]*(?:
    (?P<IDENT>[a-z][._0-9a-z]*)
  | (?P<NUMBER>[0-9][0-9a-fx]*)
  | (?P<ADD>\+=)
  | (?P<PUNCT>[,\[\]=;])
  | (?P<NEWLINE>\n|\#[^\n]*\n)
  | (?P<QUOTE>['"])
)""", re.VERBOSE)
_BLANKS = re.compile(r"[ \t]*")


class Token(NamedTuple):  # a tuple: the lexer makes one per word, and tuples are made fast
    kind: str  # IDENT NUMBER STRING NEWLINE EOF or the punctuation itself
    text: str  # for STRING: the dequoted value
    start: int
    end: int
    line: int
    col: int

    @property
    def pos(self) -> Pos:
        return Pos(self.line, self.col)


def _explain_bad_char(text: str, i: int, path: str) -> tuple[str, str]:
    c = text[i]
    if c == "\ufeff" and i == 0:
        return ("the file starts with a UTF-8 byte order mark (bytes EF BB BF), which xl "
                "rejects", f"remove it: sed -i '1s/^\\xEF\\xBB\\xBF//' {path}")
    if c == "\0" or 0xDC80 <= ord(c) <= 0xDCFF:
        byte = 0 if c == "\0" else ord(c) - 0xDC00
        what = "a NUL byte" if c == "\0" else f"byte 0x{byte:02X}, which is not UTF-8 text"
        return (f"{what}: this does not look like a text file",
                "give the path of the guest's xl config file (a text file)")
    if c == "\r":
        return ("carriage return: the file has Windows (CRLF) line endings, which xl rejects",
                f"convert it to Unix line endings: sed -i 's/\\r$//' {path} (or dos2unix)")
    if c == "#":
        return ("comment on the last line without a newline at its end: xl rejects this",
                "end the file with a newline")
    if c in "'\"":
        return (f"string not closed: no matching {c} before the end of the line",
                f"close the string with {c}; a string cannot span lines")
    word_match = re.match(r"[^\s=,;\[\]#'\"]+", text[i:])
    word = word_match[0] if word_match else c
    in_value = "=" in text[text.rfind("\n", 0, i) + 1:i]
    if c == "-" and re.fullmatch(r"-[0-9][0-9a-fx]*", word):
        return (f"'{word}': a negative number must be quoted in xl configs",
                f'write "{word}"')
    if in_value and (c.isalpha() or c in "/."):
        return (f"'{word}' is not quoted: xl values are \"strings\", numbers or [lists]",
                f'write "{word}"')
    if c.isupper():
        return (f"'{word}': xl key names are lower case", f"write '{word.lower()}'")
    if c in "+-.():":
        return (f"'{c}' is not allowed here: xl config files are not Python",
                "write key = value with a quoted string, a whole number or a [list]")
    if not c.isprintable():
        return (f"control character U+{ord(c):04X} is not allowed here",
                "remove it; the file may not be a text file")
    if ord(c) > 0x7F:
        return (f"'{c}' (U+{ord(c):04X}) is not allowed here: outside \"strings\" xl reads "
                "only ASCII", "use it only inside a quoted string")
    return (f"character '{c}' is not allowed here", "quote the value: key = \"...\"")


def _dequote(raw: str, path: str, pos: Pos) -> str:
    """libxlu's escapes: \\" \\' \\\\ \\a \\b \\f \\n \\r \\t \\v. Its numeric escapes are
    quirky: \\xHH is always refused, and an 'octal' escape (\\ then 0-7 then 1-2 more
    characters read as decimal) is accepted but produces no character at all."""
    body = raw[1:-1]
    if "\\" not in body:
        return body
    out: list[str] = []
    i = 0
    simple = {'"': '"', "'": "'", "\\": "\\", "a": "\a", "b": "\b", "f": "\f", "n": "\n",
              "r": "\r", "t": "\t", "v": "\v"}
    while i < len(body):
        if body[i] != "\\":
            j = body.find("\\", i)
            j = len(body) if j < 0 else j
            out.append(body[i:j])
            i = j
            continue
        nc = body[i + 1]
        at = Pos(pos.line, pos.col + 1 + i)
        if nc in simple:
            out.append(simple[nc])
            i += 2
        elif nc == "x":
            raise SourceError(path, at.line, at.col, "xl cannot read the \\x escape",
                              "write the character itself instead of \\x..")
        elif "0" <= nc <= "7":
            numbuf = (body[i + 2:] + raw[-1])[:3]
            used = _strtoul10_length(numbuf)
            if used <= 1:
                raise SourceError(path, at.line, at.col,
                                  "xl cannot read this backslash-number escape",
                                  "write the character itself")
            i += 2 + used  # the digits are consumed; libxlu emits nothing for them
        else:
            raise SourceError(path, at.line, at.col, f"unknown escape \\{nc} in a string",
                              "write \\\\ for a backslash; known: \\n \\t \\\" \\' \\\\")
    return "".join(out)


def _strtoul10_length(s: str) -> int:
    """How many characters C's strtoul(s, &ep, 10) consumes (0 if it converts nothing)."""
    m = re.match(r"[ \t\n\v\f\r]*[+-]?[0-9]+", s)
    return len(m[0]) if m else 0


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


_STRING_STOPS = {q: re.compile(f"[{q}\\\\\n]") for q in "'\""}


def _string_end(text: str, i: int) -> int | None:
    """Where the string opening at text[i] ends (after its quote), or None if it does not end
    on its line. A loop over escapes, not one regex: a regex repetition per character costs
    memory in proportion to the string, 100 times over."""
    stop, j = _STRING_STOPS[text[i]], i + 1
    while True:
        m = stop.search(text, j)
        if m is None or m[0] == "\n":
            return None
        if m[0] != "\\":
            return m.end()
        if m.end() >= len(text) or text[m.end()] == "\n":
            return None
        j = m.end() + 1


def tokens(text: str, path: str) -> Iterator[Token]:
    line, line_start, i, size = 1, 0, 0, len(text)
    match = _TOKENS.match
    while i < size:
        m = match(text, i)
        if m is None:
            i = _BLANKS.match(text, i).end()  # type: ignore[union-attr]  # always matches
            if i == size:
                break
        kind = m.lastgroup if m is not None else None
        start = m.start(kind) if m is not None and kind is not None else i
        col = start - line_start + 1
        if kind == "QUOTE":
            string_end = _string_end(text, start)
            if string_end is not None:
                raw = text[start:string_end]
                if "\0" in raw:
                    raise SourceError(path, line, col + raw.index("\0"), "a NUL byte inside "
                                      "a string (xl crashes on it)", "remove it; the file may "
                                      "not be a text file")
                yield Token("STRING", _dequote(raw, path, Pos(line, col)), start, string_end,
                            line, col)
                i = string_end
                continue
            kind = None
        if kind is None:
            if start == size - 1 and len(_bytes(text[start])) == 1:
                break  # libxlu's scanner drops one bad byte at the very end without a word
            what, fix = _explain_bad_char(text, start, path)
            raise SourceError(path, line, col, what, fix or None)
        end = m.end()  # type: ignore[union-attr]  # a kind means a match
        word = text[start:end]
        if kind == "NEWLINE":
            yield Token("NEWLINE", word, start, end, line, col)
            line, line_start = line + 1, end
        elif kind in ("IDENT", "NUMBER"):
            yield Token(kind, word, start, end, line, col)
        else:
            yield Token(word, word, start, end, line, col)
        i = end
    yield Token("EOF", "", i, i, line, i - line_start + 1)


# --- parser ------------------------------------------------------------------------------

STACK_LIMIT = 10_000  # libxlu_cfg_y.c: YYMAXDEPTH


class _Parser:
    def __init__(self, text: str, path: str) -> None:
        self.path = path
        # One token at a time: a list of them all would hold ~200 bytes per token.
        self.tokens = tokens(text, path)
        self.tok = next(self.tokens)
        self.prev_end = 0

    def advance(self) -> Token:
        tok = self.tok
        self.prev_end = tok.end
        if tok.kind != "EOF":
            self.tok = next(self.tokens)
        return tok

    def fail(self, what: str, fix: str | None = None) -> SourceError:
        tok = self.tok
        shown = {"NEWLINE": "end of line", "EOF": "end of file"}.get(tok.kind)
        found = "a string" if tok.kind == "STRING" else shown or f"'{tok.text}'"
        return SourceError(self.path, tok.pos.line, tok.pos.col, f"{what}, found {found}", fix)

    def skip_newlines(self, size: int = 0) -> None:
        """Skip newlines; `size` is xl's stack size while it holds one (see value)."""
        while self.tok.kind == "NEWLINE":
            if size >= STACK_LIMIT:
                self.grow(size)
            self.advance()

    def value(self) -> Value:
        """One value. Lists are read with a loop, not recursion, so no depth can hurt us.

        libxlu's bison parser gives up ("memory exhausted") once its stack holds 10,000
        entries; `size` follows that stack as libxlu_cfg_y.y fills it, so xl's limit (4996
        lists in lists, fewer when items come before them) is ours too. The stack is at most
        3 entries above `size`, so it is only checked entry by entry near the limit."""
        frames: list[tuple[Token, list[Value], int]] = []  # '[', its items, stack size there
        size = 4  # xl's stack before the value: the start state, stmts, IDENT, '='
        while True:
            tok = self.tok
            near = size + 4 >= STACK_LIMIT
            if tok.kind == "[":
                if near:
                    self.grow(size + 2)  # '[' nlok
                self.advance()
                frames.append((tok, [], size))
                size += 2
                self.skip_newlines(size + 1)
                if self.tok.kind != "]":
                    continue
                if near:
                    self.grow(size + 2)  # valuelist ']'
                self.advance()
                size = frames.pop()[2]
                value: Value = List((), tok.pos)
            elif tok.kind == "STRING" or tok.kind == "NUMBER":
                if near:
                    self.grow(size + 1)
                self.advance()
                value = Atom(tok.text, tok.line, tok.col, tok.kind == "NUMBER")
            elif tok.kind == "IDENT":
                raise self.fail("expected a value (a quoted string, a number or a [list])",
                                f'quote it: "{tok.text}"')
            else:
                raise self.fail("expected a value (a quoted string, a number or a [list])",
                                "put the value on the same line as the '='")
            # A value is complete (on xl's stack at size + 1): it ends the assignment, or it
            # is an item of the innermost open list.
            while frames:
                start, items, outer = frames[-1]
                items.append(value)
                near = outer + 7 >= STACK_LIMIT
                if near:
                    self.grow(size + 2)  # value nlok
                if self.tok.kind == "NEWLINE":
                    self.skip_newlines(size + 3)
                size = outer + 3  # '[' nlok values
                if self.tok.kind == ",":
                    if near:
                        self.grow(size + 2)  # ',' nlok
                    self.advance()
                    if self.tok.kind == "NEWLINE":
                        self.skip_newlines(size + 3)
                    if self.tok.kind != "]":
                        size += 2
                        break  # the next item
                elif self.tok.kind != "]":
                    raise self.fail("expected ',' or ']' in the list",
                                    "separate list items with commas and close the list with ]")
                if near:
                    self.grow(size + 1)  # ']' after valuelist
                self.advance()
                frames.pop()
                size = outer
                value = List(tuple(items), start.pos)
            else:
                return value

    def grow(self, size: int) -> None:
        if size >= STACK_LIMIT:
            pos = self.tok.pos
            raise SourceError(self.path, pos.line, pos.col, "lists nested too deep: xl's "
                              "parser runs out of stack (\"memory exhausted\")",
                              "nest lists less deeply (xl stops near 5000 levels)")

    def parse(self) -> list[Assignment]:
        out: list[Assignment] = []
        while self.tok.kind != "EOF":
            tok = self.tok
            if tok.kind in ("NEWLINE", ";"):
                self.advance()
                continue
            if tok.kind != "IDENT":
                raise self.fail("expected a setting name (key = value)",
                                "start each line with a lower-case key name")
            self.advance()
            if self.tok.kind not in ("=", "+="):
                raise self.fail(f"expected '=' after '{tok.text}'", f"write {tok.text} = VALUE")
            op = self.advance().kind
            value = self.value()
            end = self.prev_end
            if self.tok.kind not in ("NEWLINE", ";", "EOF"):
                fix = ("xl numbers have no units: write a plain number (memory is in MiB)"
                       if isinstance(value, Atom) and value.number and self.tok.kind == "IDENT"
                       else "put one setting per line, or separate them with ';'")
                raise self.fail("expected the end of the setting", fix)
            out.append(Assignment(tok.text, op, value, tok.pos, tok.start, end))
        return out


def _effective(path: str, assignments: list[Assignment]) -> tuple[dict[str, Value],
                                                                   dict[str, str],
                                                                   dict[str, Assignment]]:
    """What xl sees for each key. The pieces that += adds are gathered and joined once at
    the end: joined at each +=, 100,000 of them took minutes."""
    values: dict[str, Value] = {}  # the value, or the first piece of a key added to
    added: dict[str, list[Value]] = {}  # the pieces += added after it
    ops: dict[str, str] = {}
    last: dict[str, Assignment] = {}
    for a in assignments:
        value = a.value
        prev = values.get(a.name)
        if a.op == "+=" and prev is not None:
            if isinstance(prev, Atom) != isinstance(value, Atom):
                kinds = ("a list" if isinstance(value, List) else "a string",
                         "a list" if isinstance(prev, List) else "a string")
                raise SourceError(path, a.value.pos.line, a.value.pos.col,
                                  f"'{a.name} +=' adds {kinds[0]} to {kinds[1]}",
                                  "use the same kind of value as the earlier assignment")
            added.setdefault(a.name, []).append(value)
        else:
            values[a.name] = value
            added.pop(a.name, None)
        ops[a.name] = a.op
        last[a.name] = a
    for name, pieces in added.items():
        first, end = values[name], pieces[-1]
        if isinstance(first, Atom) and isinstance(end, Atom):
            text = first.text + "".join(p.text for p in pieces if isinstance(p, Atom))
            values[name] = Atom(text, end.line, end.col)
        else:
            items = [item for p in (first, *pieces) if isinstance(p, List) for item in p.items]
            values[name] = List(tuple(items), end.pos)
    return values, ops, last


def parse(text: str, path: str = "<config>") -> Config:
    """Parse xl config text; raise SourceError where xl would refuse the file."""
    parser = _Parser(text, path)
    collecting = gc.isenabled()
    gc.disable()  # a value per token, none in a cycle: the collector's passes would only cost
    try:
        assignments = parser.parse()
    except SourceError:
        # A lexical error anywhere in the file is what xl names first: look for one.
        for _ in parser.tokens:
            pass
        raise
    finally:
        if collecting:
            gc.enable()
    values, ops, last = _effective(path, assignments)
    return Config(path, text, tuple(assignments), values, ops, last)


MAX_BYTES = 4 << 20  # a guest config is a few KiB; 100,000 disks take 3.4 MiB


def read(path: Path) -> Config:
    """Read and parse a config file. Only a regular file is read (a FIFO would hang, /dev/zero
    never ends), and at most MAX_BYTES of it."""
    name = str(path)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then says what it is.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise SourceError(name, 1, 1, f"cannot read the file: {e.strerror}",
                          "check the path") from e
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                    else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                    else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
            raise SourceError(name, 1, 1, f"{name} is {kind}, not a config file",
                              "give the path of the guest's xl config file")
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise SourceError(name, 1, 1, f"cannot read the file: {e.strerror}",
                          "check the path") from e
    finally:
        os.close(fd)
    if len(data) > MAX_BYTES:
        raise SourceError(name, 1, 1, f"the file is larger than {MAX_BYTES >> 20} MiB: not a "
                          "guest config (those are a few KiB)",
                          "check that this is the right file")
    return parse(data.decode("utf-8", "surrogateescape"), name)
