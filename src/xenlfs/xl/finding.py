"""One thing `guest check` found in an xl config: where it is, what is wrong, the fix."""

from __future__ import annotations

from dataclasses import dataclass


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
