"""Step 4: the files GRUB loads — where GRUB sees them, and whether Xen is a multiboot image.

GRUB reads paths relative to the filesystem that holds them, not to the running system's /:
with a separate /boot partition /boot/xen.gz is `/xen.gz`, with /boot on / it is `/boot/xen.gz`.
"""

from __future__ import annotations

import gzip
import os
import shutil
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from xenlfs import run
from xenlfs.errors import PreconditionError

MULTIBOOT1_MAGIC = 0x1BADB002
MULTIBOOT2_MAGIC = 0xE85250D6
# The Multiboot specifications: the header lies 4-byte aligned within the first 8 KiB
# (version 1) or 8-byte aligned within the first 32 KiB (version 2) of the image.
MULTIBOOT1_SEARCH = 8192
MULTIBOOT2_SEARCH = 32768


@dataclass(frozen=True)
class Mount:
    """One line of /proc/self/mountinfo: `root` is the directory of the filesystem mounted
    at `point` (not / for bind mounts)."""

    point: str
    root: str
    device: str
    fstype: str


def _unescape(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash as octal escapes.
    return field.encode().decode("unicode_escape").encode("latin-1").decode()


def parse_mountinfo(text: str) -> list[Mount]:
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        dash = fields.index("-")
        mounts.append(Mount(point=_unescape(fields[4]), root=_unescape(fields[3]),
                            device=fields[dash + 2], fstype=fields[dash + 1]))
    return mounts


def holding_mount(path: Path, mounts: list[Mount]) -> Mount:
    """The mount that holds `path` (already resolved): the last, longest matching point."""
    best: Mount | None = None
    for mount in mounts:
        inside = mount.point == "/" or str(path) == mount.point or \
            str(path).startswith(mount.point.rstrip("/") + "/")
        if inside and (best is None or len(mount.point) >= len(best.point)):
            best = mount
    if best is None:
        raise PreconditionError(f"no mounted filesystem holds {path}",
                                hint="is /proc mounted? see /proc/self/mountinfo")
    return best


def grub_path(path: Path, mount: Mount) -> str:
    """`path` as GRUB names it on the filesystem mounted at `mount.point`."""
    inner = os.path.relpath(path, mount.point)
    joined = os.path.normpath(os.path.join(mount.root, inner))
    return joined if joined.startswith("/") else "/" + joined


def locate(path: Path, boot_mount: Path | None = None) -> tuple[str, Mount]:
    """Check `path` exists; return its GRUB path and the mount holding it.

    boot_mount: treat this directory as the top of the filesystem GRUB reads (fixtures, or a
    /boot copied elsewhere); otherwise the live mount table decides.
    """
    if not path.is_file():
        raise PreconditionError(f"{path} does not exist or is not a file",
                                hint="copy it to /boot first (LFS book, 'Linux' chapter)")
    real = path.resolve()
    if boot_mount is not None:
        top = boot_mount.resolve()
        if top != real and top not in real.parents:
            raise PreconditionError(f"{path} is not under --boot-mount {boot_mount}")
        mount = Mount(point=str(top), root="/", device=str(top), fstype="given")
    else:
        mounts = parse_mountinfo(Path("/proc/self/mountinfo").read_text())
        mount = holding_mount(real, mounts)
    return grub_path(real, mount), mount


def _head(path: Path, size: int) -> bytes:
    with open(path, "rb") as f:
        start = f.read(2)
        f.seek(0)
        if start == b"\x1f\x8b":
            try:
                with gzip.open(f) as z:
                    return z.read(size)
            except (OSError, EOFError, zlib.error):
                return b""
        return f.read(size)


def has_multiboot_header(data: bytes, version: int) -> bool:
    """Whether `data` (the start of an image) carries a valid Multiboot 1 or 2 header."""
    if version == 1:
        for offset in range(0, min(len(data), MULTIBOOT1_SEARCH) - 11, 4):
            magic, flags, checksum = struct.unpack_from("<III", data, offset)
            if magic == MULTIBOOT1_MAGIC and (magic + flags + checksum) & 0xFFFFFFFF == 0:
                return True
        return False
    for offset in range(0, min(len(data), MULTIBOOT2_SEARCH) - 15, 8):
        magic, arch, length, checksum = struct.unpack_from("<IIII", data, offset)
        if magic == MULTIBOOT2_MAGIC and (magic + arch + length + checksum) & 0xFFFFFFFF == 0:
            return True
    return False


def is_multiboot(path: Path, version: int) -> bool:
    """Ask GRUB's own grub-file when installed; otherwise read the header ourselves."""
    if shutil.which("grub-file"):
        flag = "--is-x86-multiboot" if version == 1 else "--is-x86-multiboot2"
        return run.run(["grub-file", flag, str(path)], check=False).returncode == 0
    return has_multiboot_header(_head(path, MULTIBOOT2_SEARCH), version)
