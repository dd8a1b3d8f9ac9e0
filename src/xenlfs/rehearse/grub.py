"""The host's own grub.cfg in the copy: which entry is rehearsed, and the few changes that let
the rehearsal watch it (GRUB and Xen on the serial port, dom0's console on hvc0, the entry
booted at once). Pure text in, text out; the host's file is never written.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from xenlfs.errors import PreconditionError, UsageError
from xenlfs.host import grub

MARK = "xenlfs-rehearse"
XEN_CONSOLE = "console=com1 com1=115200,8n1"
DOM0_CONSOLE = "console=hvc0"
_LOADER = re.compile(r"^(?P<indent>\s*)(?P<cmd>multiboot2?|module2?)\s+(?P<rest>.*)$")


@dataclass(frozen=True)
class XenEntry:
    title: str
    id: str | None
    line: int  # of `menuentry`, 1-based
    end: int  # of its closing brace, 1-based
    default: str  # what `set default=` names it by (with its submenu's, 'a>b')
    xen: str  # the file the multiboot line loads, as GRUB sees it
    kernel: str | None  # the first module: dom0's kernel
    xen_args: str
    kernel_args: str

    @property
    def label(self) -> str:
        return f"{self.title!r}" + (f" ({self.id})" if self.id else "")


_QUOTED = re.compile(r"'[^']*'|\"(?:[^\"\\]|\\.)*\"")


def _close(lines: list[str], start: int) -> int:
    """Index of the line closing the block opened on lines[start] (braces counted)."""
    depth = 0
    for i in range(start, len(lines)):
        code = _QUOTED.sub("", lines[i])
        if code.lstrip().startswith("#"):
            continue
        depth += code.count("{") - code.count("}")
        if depth <= 0:
            return i
    raise PreconditionError(f"grub.cfg line {start + 1}: the block is never closed",
                            hint="fix grub.cfg (grub-script-check finds where)")


def _words(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def xen_entries(text: str) -> list[XenEntry]:
    """Menu entries that load Xen: a multiboot line whose file is named xen*."""
    lines = text.splitlines()
    found: list[XenEntry] = []
    submenus: list[tuple[int, str]] = []  # (closing index, name)
    for listed in grub.entries(text):
        i = listed.line - 1
        submenus = [s for s in submenus if s[0] > i]
        end = _close(lines, i)
        name = listed.id or listed.title
        if listed.kind == "submenu":
            submenus.append((end, name))
            continue
        xen = kernel = None
        xen_args = kernel_args = ""
        for body in lines[i + 1:end]:
            match = _LOADER.match(body)
            if not match:
                continue
            words = _words(match["rest"])
            if match["cmd"].startswith("multiboot") and words:
                xen, xen_args = words[0], " ".join(words[1:])
            elif xen and kernel is None and words:
                kernel = words[0]
                kernel_args = " ".join(w for w in words[1:] if w != "--nounzip")
        if xen and "xen" in xen.rsplit("/", 1)[-1].lower():
            path = ">".join([s[1] for s in submenus] + [name])
            found.append(XenEntry(listed.title, listed.id, listed.line, end + 1, path, xen,
                                  kernel, xen_args, kernel_args))
    return found


def choose(entries: list[XenEntry], wanted: str | None) -> XenEntry:
    if wanted is not None:
        for entry in entries:
            if wanted in (entry.title, entry.id, entry.default):
                return entry
        raise UsageError(f"--entry {wanted!r}: no Xen entry has this title or id",
                         hint="Xen entries: " + (", ".join(e.label for e in entries) or "none"))
    if not entries:
        raise PreconditionError("grub.cfg has no entry that loads Xen (multiboot/multiboot2 "
                                "of a file named xen*)",
                                hint="add one: xenlfs grub add --kernel /boot/vmlinuz-…")
    if len(entries) > 1:
        raise UsageError("grub.cfg has several Xen entries: say which one to rehearse",
                         hint="--entry TITLE|ID, one of: " + ", ".join(e.label for e in entries))
    return entries[0]


def _with_args(line: str, args: str) -> str:
    return line.rstrip() + " " + args


def rehearsal_copy(text: str, entry: XenEntry) -> str:
    """grub.cfg as the copy gets it: serial terminal first, the entry's consoles, and the
    entry made the default, booted at once."""
    lines = text.splitlines()
    body = lines[entry.line:entry.end - 1]
    seen_xen = seen_kernel = False
    for i, line in enumerate(body):
        match = _LOADER.match(line)
        if not match:
            continue
        if match["cmd"].startswith("multiboot") and not seen_xen:
            body[i], seen_xen = _with_args(line, XEN_CONSOLE), True
        elif seen_xen and not seen_kernel:
            body[i], seen_kernel = _with_args(line, DOM0_CONSOLE), True
    echo = f'\techo "{MARK}: GRUB runs the entry {entry.title}"'
    head = [f"# {MARK}: GRUB on the serial port (this copy only)",
            "serial --unit=0 --speed=115200", "terminal_input serial", "terminal_output serial"]
    # Again at the end: GRUB runs the whole file before it boots the default, so a host's
    # own `terminal_output gfxterm` (Debian's grub-mkconfig writes one) would otherwise take
    # the entry's messages off the serial port.
    tail = ["", f"# {MARK}: the rehearsed entry, booted at once (this copy only)",
            *head[2:], f'set default="{entry.default}"', "set timeout=0", "unset fallback"]
    new = [*head, *lines[:entry.line], echo, *body, *lines[entry.end - 1:], *tail]
    return "\n".join(new) + "\n"
