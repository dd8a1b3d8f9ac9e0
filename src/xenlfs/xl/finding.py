"""One thing `guest check` found in an xl config: where it is, what is wrong, the fix."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TextIO

from xenlfs import ui


@dataclass(frozen=True)
class Finding:
    severity: str  # "error" (xl refuses the file) or "warning"
    path: str
    line: int
    col: int
    what: str
    fix: str | None = None

    def __str__(self) -> str:
        fix = f" — {self.fix}" if self.fix else ""
        return shown(f"{self.path}:{self.line}:{self.col}: {self.severity}: {self.what}{fix}")


def shown(text: str) -> str:
    """Text safe for a terminal and one line: a config's values may hold escape sequences,
    a path a newline, a string bytes that are not UTF-8 (each is written as \\xNN)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else
                   f"\\x{ord(c) - 0xDC00:02x}" if 0xDC80 <= ord(c) <= 0xDCFF else
                   c.encode("unicode_escape").decode("ascii") for c in text)


def show(findings: Iterable[Finding], stream: TextIO | None = None) -> None:
    """Each finding on one line, to stderr (warnings about a file being written) or to
    `stream` (when the findings are the report)."""
    out = stream or sys.stderr
    findings = list(findings)
    if findings and ui.plain(out):  # in one write: a line at a time through rich is slow
        out.write("".join(f"{f}\n" for f in findings))
        out.flush()
        return
    for f in findings:
        ui.say(str(f), style="red" if f.severity == "error" else "yellow", stream=out)
