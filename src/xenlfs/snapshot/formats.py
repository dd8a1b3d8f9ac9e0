"""The archive formats a snapshot can take: a POSIX tar, compressed by a real tool or not."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from xenlfs.errors import UsageError


@dataclass(frozen=True)
class Compression:
    name: str
    suffixes: tuple[str, ...]  # the first is the one xenlfs writes
    compress: tuple[str, ...]  # argv reading a tar on stdin, writing to stdout; () for none
    decompress: tuple[str, ...]
    tar_flag: str | None  # how GNU tar is told, since it cannot guess from a pipe
    magic: bytes

    @property
    def suffix(self) -> str:
        return self.suffixes[0]


# zstd's fastest level with long-distance matching over a 128 MiB window finds the copies
# between files of a root filesystem: on a Debian root it is ~10% smaller than the hint's
# gzip -6 at a tenth of its CPU time, and less CPU than plain -3. A 2^27 window is the most
# `zstd -d` (and so plain `tar --zstd -x`) accepts without extra flags. -B8M: jobs of 8 MiB
# (not 4 windows = 512 MiB) start compressing early and on every core while tar still
# reads, and the archive is even a little smaller. zstd frames carry
# checksums, as do gzip's and xz's, so a damaged archive is noticed on reading.
COMPRESSIONS: dict[str, Compression] = {
    c.name: c for c in (
        Compression("zstd", (".tar.zst", ".tzst"), ("zstd", "-1", "--long=27", "-T0", "-B8M",
                                                   "-q", "-c"),
                    ("zstd", "-d", "-q", "-c"), "--zstd", b"\x28\xb5\x2f\xfd"),
        Compression("gzip", (".tar.gz", ".tgz"), ("gzip", "-6", "-c"),
                    ("gzip", "-d", "-c"), "--gzip", b"\x1f\x8b"),
        Compression("xz", (".tar.xz", ".txz"), ("xz", "-6", "-T0", "-c"),
                    ("xz", "-d", "-c"), "--xz", b"\xfd7zXZ\x00"),
        Compression("none", (".tar",), (), (), None, b""),
    )
}

ARCHIVE_SUFFIXES = tuple(s for c in COMPRESSIONS.values() for s in c.suffixes)


def by_name(name: str) -> Compression:
    try:
        return COMPRESSIONS[name]
    except KeyError:
        raise UsageError(f"unknown compression {name!r}",
                         hint=f"use one of: {', '.join(COMPRESSIONS)}") from None


def by_suffix(path: Path) -> Compression | None:
    for compression in COMPRESSIONS.values():
        if any(path.name.endswith(s) for s in compression.suffixes):
            return compression
    return None


def detect(path: Path) -> Compression:
    """What an archive really is, from its first bytes (its name may lie)."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from e
    return detect_head(head, str(path))


def detect_head(head: bytes, what: str) -> Compression:
    """What an archive is, from its first 512 bytes (or fewer, if it is shorter)."""
    for compression in COMPRESSIONS.values():
        if compression.magic and head.startswith(compression.magic):
            return compression
    if len(head) == 512 and head[257:262] == b"ustar":
        return COMPRESSIONS["none"]
    raise UsageError(f"{what} is not a tar archive (plain, zstd, gzip or xz)",
                     hint="give the path of a snapshot made by 'xenlfs snapshot create' "
                     "or another tar archive")
