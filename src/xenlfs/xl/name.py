"""A guest's name, checked once where it enters the command line.

It names the domain for xl and, in xenlfs, files and places: CONFIG_DIR/NAME.cfg, the lock
and mountpoint under /run/xenlfs, the LV NAME. xl itself accepts almost any string, but a
'/' or a leading '.' would climb out of those places, a newline or space breaks `xl list`
(which xenlfs reads by columns), a leading '-' is read by xl as an option and a number is
taken for a domain id. Xen's tools and libvirt keep names to 64 characters.
"""

from __future__ import annotations

import argparse

from xenlfs.errors import UsageError

MAX_LENGTH = 64
RULES = ("a guest name has 1 to 64 characters: no '/', spaces or control characters, not "
         "starting with '.' or '-', not only digits")


def problem(name: str) -> str | None:
    """Why `name` cannot name a guest, or None."""
    if not name:
        return "it is empty"
    if len(name) > MAX_LENGTH:
        return f"it has {len(name)} characters, more than {MAX_LENGTH}"
    if "/" in name:
        return "it has a '/'"
    if name.startswith("."):
        return "it starts with '.'"
    if name.startswith("-"):
        return "it starts with '-', which xl reads as an option"
    bad = next((c for c in name if c.isspace() or not c.isprintable()), None)
    if bad is not None:
        return f"it has {'a space' if bad == ' ' else repr(bad)}"
    if name.isdigit():
        return "it is a number, which xl takes for a domain id"
    return None


def shown(name: str) -> str:
    """The name for an error message: escaped, and cut if it is long."""
    return repr(name if len(name) <= 40 else name[:40] + "…")


def check(name: str) -> str:
    """`name` if it can name a guest, else a UsageError (exit 2) that says why."""
    why = problem(name)
    if why is not None:
        raise UsageError(f"{shown(name)} cannot name a guest: {why}", hint=RULES)
    return name


def argument(value: str) -> str:
    """argparse type for NAME: the parser reports a bad one with exit 2."""
    why = problem(value)
    if why is not None:
        raise argparse.ArgumentTypeError(f"{shown(value)} cannot name a guest: {why} ({RULES})")
    return value


def name_or_file(value: str) -> str:
    """argparse type for NAME|FILE: a path (with '/' or ending in .cfg) is a file, anything
    else must be a guest name."""
    if "/" in value or value.endswith(".cfg"):
        return value
    return argument(value)
