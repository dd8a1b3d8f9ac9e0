"""After an install: does every installed program find its libraries in the tree it went to?

A build that found a library on the build machine (its -dev package) but not in the target
tree links fine and installs fine, and fails only when the host boots: `xl` cannot start
because libyajl.so.2 is nowhere on the host. This reads each installed ELF file's program
interpreter and DT_NEEDED entries (readelf) and looks for each the way the dynamic loader
would, but inside the tree: its RPATH/RUNPATH ($ORIGIN too), the tree's /etc/ld.so.conf
(with its includes), then /lib, /usr/lib, /lib64, /usr/lib64. A symlink is followed inside
the tree (an absolute target is the tree's path), never out of it.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

from xenlfs import run

DEFAULT_DIRS = ("/lib", "/usr/lib", "/lib64", "/usr/lib64")
LIBC = "libc.so.6"
_ELF = b"\x7fELF"


@dataclass(frozen=True)
class Missing:
    file: Path          # the installed file, as a path in the tree ("/usr/sbin/xl")
    library: str        # what it needs that the tree lacks ("libyajl.so.2")


@dataclass
class Report:
    root: Path
    checked: int = 0                                       # ELF files looked at
    missing: list[Missing] = field(default_factory=list)
    found: dict[str, str] = field(default_factory=dict)    # library → where, in the tree
    skipped: str | None = None                             # why nothing was checked

    def as_dict(self) -> dict[str, object]:
        return {"root": str(self.root), "checked": self.checked, "skipped": self.skipped,
                "missing": [{"file": str(m.file), "library": m.library}
                            for m in self.missing], "found": self.found}


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


def inside(root: Path, path: str, depth: int = 0) -> Path | None:
    """PATH (absolute, as the tree sees it) with its symlinks resolved inside ROOT, or None:
    it does not exist there (or loops)."""
    parts = [p for p in path.split("/") if p]
    here = root
    for i, part in enumerate(parts):
        if part == "..":
            here = here.parent if here != root else root
            continue
        step = here / part
        if step.is_symlink():
            if depth > 40:
                return None
            target = os.readlink(step)
            base = "/" if target.startswith("/") else "/" + str(here.relative_to(root))
            rest = "/".join([target, *parts[i + 1:]])
            return inside(root, os.path.normpath(os.path.join(base, rest)), depth + 1)
        if not step.exists():
            return None
        here = step
    return here


def search_dirs(root: Path) -> list[str]:
    """The tree's library directories: /etc/ld.so.conf and its includes, then the defaults."""
    dirs: list[str] = []

    def read(conf: Path) -> None:
        if not conf.is_file():
            return
        for line in conf.read_text(errors="replace").splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("include "):
                for pattern in line.split()[1:]:
                    pattern = pattern if pattern.startswith("/") else f"/etc/{pattern}"
                    for match in sorted(glob.glob(str(root) + pattern)):
                        read(Path(match))
            elif line.startswith("/"):
                dirs.extend(d for d in line.replace(",", " ").split() if d.startswith("/"))

    real = inside(root, "/etc/ld.so.conf")
    if real is not None:
        read(real)
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
    for path in sorted(installed):
        kind = _kind(_header(path)) if path.is_file() and not path.is_symlink() else None
        if kind is None:
            continue
        report.checked += 1
        info = dynamic(path)
        in_tree = "/" + str(path.relative_to(root))
        if info.interpreter and inside(root, info.interpreter) is None:
            report.missing.append(Missing(Path(in_tree), info.interpreter))
        origin = os.path.dirname(in_tree)
        extra = [p.replace("$ORIGIN", origin).replace("${ORIGIN}", origin) for p in info.paths]
        for library in info.needed:
            where = _find(root, library, [*extra, *dirs], kind)
            if where is None:
                report.missing.append(Missing(Path(in_tree), library))
            else:
                report.found.setdefault(library, where)
    return report


def _find(root: Path, library: str, dirs: list[str], kind: tuple[int, int]) -> str | None:
    """Where in ROOT the loader would find LIBRARY for a file of this ELF kind."""
    for d in dirs:
        real = inside(root, f"{d}/{library}")
        if real is not None and real.is_file() and _kind(_header(real)) == kind:
            return f"{d}/{library}"
    return None


def describe(report: Report) -> str:
    """The failure, one line per missing library, for the error message."""
    lines = [f"{m.file} needs {m.library}, which is not in {report.root}"
             for m in report.missing]
    return "\n".join(lines)
