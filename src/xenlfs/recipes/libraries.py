"""After an install: does every installed program find its libraries in the tree it went to?

A build that found a library on the build machine (its -dev package) but not in the target
tree links fine and installs fine, and fails only when the host boots: `xl` cannot start
because libyajl.so.2 is nowhere on the host. This reads each installed ELF file's program
interpreter and DT_NEEDED entries (readelf) and looks for each the way the dynamic loader
would, but inside the tree: its RPATH/RUNPATH ($ORIGIN too), the tree's /etc/ld.so.conf
(with its includes), then /lib, /usr/lib, /lib64, /usr/lib64, skipping a file of another ELF
class or machine as the loader does. A symlink is followed inside the tree (an absolute
target is the tree's path), never out of it; so are the configuration files and their globs.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from xenlfs import run
from xenlfs.guest.rootfs import GuestPathError, GuestRoot

DEFAULT_DIRS = ("/lib", "/usr/lib", "/lib64", "/usr/lib64")
LIBC = "libc.so.6"
_ELF = b"\x7fELF"


@dataclass(frozen=True)
class Missing:
    file: Path          # the installed file, as a path in the tree ("/usr/sbin/xl")
    library: str        # what it needs that the tree lacks ("libyajl.so.2")
    looked_in: tuple[str, ...] = field(default=(), compare=False)   # the tree's dirs tried
    other_kind: tuple[str, ...] = field(default=(), compare=False)  # same name, wrong ELF


@dataclass
class Report:
    root: Path
    checked: int = 0                                       # ELF files looked at
    missing: list[Missing] = field(default_factory=list)
    found: dict[str, str] = field(default_factory=dict)    # library → where, in the tree
    skipped: str | None = None                             # why nothing was checked


def _header(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(20)
    except OSError:
        return b""


def _kind(header: bytes) -> tuple[int, int] | None:
    """(ELF class, machine) of an ELF header, or None: not ELF."""
    if len(header) < 20 or not header.startswith(_ELF):
        return None
    machine = header[18:20]
    return header[4], int.from_bytes(machine, "little" if header[5] == 1 else "big")


def inside(root: Path, path: str) -> Path | None:
    """PATH (absolute, as the tree sees it) with its symlinks resolved inside ROOT by the
    guest's confined resolver (an absolute link target is the tree's path, `..` never climbs
    above ROOT), or None: it does not exist there (or loops)."""
    try:
        real = root / GuestRoot(root).resolve(path).lstrip("/")
    except (GuestPathError, OSError):
        return None
    return real if os.path.lexists(real) else None


def _matches(root: Path, pattern: str) -> list[str]:
    """The tree's paths that the glob PATTERN (absolute, as the tree sees it) names, each
    component matched in the directory it is resolved to inside ROOT, in glob's order."""
    tree = GuestRoot(root)
    found = ["/"]
    for part in (p for p in pattern.split("/") if p):
        wanted: list[str] = []
        for here in found:
            if not any(c in part for c in "*?["):
                wanted.append(os.path.join(here, part))
                continue
            try:
                names = tree.listdir(here)  # [] when it is not a directory
            except (GuestPathError, OSError):
                continue
            wanted.extend(os.path.join(here, name) for name in names
                          if fnmatch.fnmatchcase(name, part)
                          and (part.startswith(".") or not name.startswith(".")))
        found = wanted
    return [path for path in found if inside(root, path) is not None]


def search_dirs(root: Path) -> list[str]:
    """The tree's library directories: /etc/ld.so.conf and its includes, then the defaults.
    Every file is read inside the tree: an include's glob and a configuration file that is
    a link are resolved there, never on this machine. A relative include is relative to
    the directory of the file that names it, as ldconfig takes it."""
    dirs: list[str] = []

    def read(conf: str, depth: int) -> None:
        real = inside(root, conf)
        if real is None or not real.is_file() or depth > 20:
            return
        for line in real.read_text(errors="replace").splitlines():
            words = line.split("#", 1)[0].replace(",", " ").split()
            if words[:1] == ["include"]:
                for pattern in words[1:]:
                    for match in _matches(root, os.path.join(os.path.dirname(conf), pattern)):
                        read(match, depth + 1)
            else:
                dirs.extend(d for d in words if d.startswith("/"))

    read("/etc/ld.so.conf", 0)
    return list(dict.fromkeys([*dirs, *DEFAULT_DIRS]))


@dataclass(frozen=True)
class Dynamic:
    interpreter: str | None
    needed: tuple[str, ...]
    paths: tuple[str, ...]      # RPATH and RUNPATH entries, as written


def dynamic(path: Path) -> Dynamic:
    """What readelf says the loader needs for PATH."""
    out = run.run(["readelf", "--wide", "--program-headers", "--dynamic", path],
                  hint="readelf is part of binutils").stdout
    interpreter, needed, paths = None, [], []
    for line in out.splitlines():
        if "Requesting program interpreter:" in line:
            interpreter = line.split(":", 1)[1].strip().rstrip("]").strip()
        elif "(NEEDED)" in line and "[" in line:
            needed.append(line.rsplit("[", 1)[1].rstrip("]"))
        elif ("(RPATH)" in line or "(RUNPATH)" in line) and "[" in line:
            paths.extend(line.rsplit("[", 1)[1].rstrip("]").split(":"))
    return Dynamic(interpreter, tuple(needed), tuple(paths))


def check(root: Path, installed: list[Path]) -> Report:
    """Every installed ELF file's interpreter and libraries, looked for in ROOT."""
    report = Report(root)
    dirs = search_dirs(root)
    if not any(inside(root, f"{d}/{LIBC}") for d in dirs):
        report.skipped = (f"{root} has no C library ({LIBC}) in {', '.join(dirs)}: not a whole "
                          "system, so there is nothing to look for libraries in")
        return report
    copy = GuestRoot(root)
    for path in sorted(installed):
        in_tree = Path("/", path.relative_to(root))
        try:  # the file the tree has there (a link in its path followed inside the tree)
            node = copy.node(str(in_tree), follow=False)
        except (GuestPathError, OSError):
            continue
        real = root / node.path.lstrip("/")
        kind = _kind(_header(real)) if node.kind == "file" else None
        if kind is None:
            continue
        report.checked += 1
        info = dynamic(real)
        if info.interpreter:
            interpreter = PurePosixPath(info.interpreter)
            missing = _look(root, interpreter.name, [str(interpreter.parent)], kind)
            if isinstance(missing, _NotFound):
                report.missing.append(Missing(in_tree, info.interpreter, *missing))
        origin = str(PurePosixPath(node.path).parent)  # as the loader has it: no links
        extra = [p.replace("$ORIGIN", origin).replace("${ORIGIN}", origin) for p in info.paths]
        for library in info.needed:
            where = _look(root, library, [*extra, *dirs], kind)
            if isinstance(where, _NotFound):
                report.missing.append(Missing(in_tree, library, *where))
            else:
                report.found.setdefault(library, where)
    return report


class _NotFound(NamedTuple):
    looked_in: tuple[str, ...]
    other_kind: tuple[str, ...]


def _look(root: Path, library: str, dirs: list[str], kind: tuple[int, int]) -> str | _NotFound:
    """Where in ROOT the loader would find LIBRARY for a file of this ELF kind (it skips a
    file of another class or machine and goes on looking), or where it looked in vain."""
    others: list[str] = []
    for d in dirs:
        real = inside(root, f"{d}/{library}")
        if real is None or not real.is_file():
            continue
        if _kind(_header(real)) == kind:
            return f"{d}/{library}"
        others.append(f"{d}/{library}")
    return _NotFound(tuple(dict.fromkeys(dirs)), tuple(others))


def describe(report: Report) -> str:
    """The failure, one line per missing library: what needs it, where it was looked for,
    and a file of that name the loader would skip (another ELF class or machine)."""
    lines = []
    for m in report.missing:
        line = (f"{m.file} needs {m.library}, which is not in {report.root} "
                f"(looked in {', '.join(m.looked_in)})")
        if m.other_kind:
            line += ("; the loader skips the file of that name at "
                     f"{', '.join(m.other_kind)}: it is built for another ELF class or "
                     "machine (e.g. 32-bit for a 64-bit program)")
        lines.append(line)
    return "\n".join(lines)
