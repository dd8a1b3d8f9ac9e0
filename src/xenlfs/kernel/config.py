"""Finding and reading a kernel .config, the way established checkers do.

Where to look, first found wins: the file named on the command line; KERNEL_TREE/.config when
a tree is given; the running kernel's /proc/config.gz; /boot/config-$(uname -r). A config may
be plain, gzip (/proc/config.gz) or xz (Debian's linux-config-* packages).
"""

from __future__ import annotations

import gzip
import lzma
import os
import re
from dataclasses import dataclass
from pathlib import Path

from xenlfs.errors import PreconditionError, SourceError

_SET = re.compile(r"^CONFIG_([A-Za-z0-9_]+)=(.*)$")
_UNSET = re.compile(r"^# CONFIG_([A-Za-z0-9_]+) is not set$")
_VERSION = re.compile(r"^# Linux/\S+ (\S+) Kernel Configuration")


@dataclass(frozen=True)
class KernelConfig:
    """Symbol → value ('y', 'm', 'n', or the string/number as written)."""

    path: str
    values: dict[str, str]
    version: str | None  # from the header that conf writes, if present

    def get(self, symbol: str) -> str:
        return self.values.get(symbol, "n")


def candidates(tree: Path | None) -> list[Path]:
    found = [tree / ".config"] if tree is not None else []
    found.append(Path("/proc/config.gz"))
    found.append(Path(f"/boot/config-{os.uname().release}"))
    return found


def locate(explicit: Path | None, tree: Path | None) -> Path:
    if explicit is not None:
        if not explicit.is_file():
            raise PreconditionError(f"kernel config {explicit} does not exist",
                                    hint="give the path of a .config file")
        return explicit
    for path in candidates(tree):
        if path.is_file():
            return path
    tried = ", ".join(str(p) for p in candidates(tree))
    raise PreconditionError(
        f"no kernel config found (tried {tried})",
        hint="give a config file, or --src TREE with a .config in it "
        "(make defconfig / make tinyconfig makes one)")


def read_text(path: Path) -> str:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    elif raw[:6] == b"\xfd7zXZ\x00":
        raw = lzma.decompress(raw)
    return raw.decode("utf-8", "replace")


def parse(text: str, path: str) -> KernelConfig:
    values: dict[str, str] = {}
    version: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        line = line.rstrip()
        if not line:
            continue
        if match := _SET.match(line):
            value = match[2]
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            values[match[1]] = value
        elif match := _UNSET.match(line):
            values[match[1]] = "n"
        elif line.startswith("#"):
            if version is None and (match := _VERSION.match(line)):
                version = match[1]
        else:
            raise SourceError(path, number, 1, f"not a kernel config line: {line[:60]!r}",
                              "lines are CONFIG_NAME=value or '# CONFIG_NAME is not set'")
    return KernelConfig(path, values, version)


def load(path: Path) -> KernelConfig:
    return parse(read_text(path), str(path))
