"""What a guest kernel file can boot as: the Xen ELF notes inside it (ELF or bzImage).

Xen and libxl decide whether a kernel can start as PV or PVH from its ELF notes (owner
"Xen", xen/include/public/elfnote.h): PV needs the Xen entry point (XEN_ELFNOTE_ENTRY, with
the hypercall page and the guest-OS notes), PVH the 32-bit physical entry point
(XEN_ELFNOTE_PHYS32_ENTRY, Linux's CONFIG_XEN_PVH). A kernel without the right one fails
only inside `xl create`, with messages that do not say so ("can't allocate low memory",
"Not a Xen-ELF image"). Reading the notes first turns that into a plain error.

A bzImage carries the ELF compressed (arch/x86/boot/header.S: payload_offset and
payload_length at 0x248). gzip, bzip2, xz and lzma are unpacked with Python's standard
library; lz4, lzo and zstd with their own tools through the runner.
"""

from __future__ import annotations

import bz2
import lzma
import os
import stat
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from xenlfs import run
from xenlfs.errors import XenlfsError

# xen/include/public/elfnote.h
NOTE_NAMES: dict[int, str] = {
    0: "INFO", 1: "ENTRY", 2: "HYPERCALL_PAGE", 3: "VIRT_BASE", 4: "PADDR_OFFSET",
    5: "XEN_VERSION", 6: "GUEST_OS", 7: "GUEST_VERSION", 8: "LOADER", 9: "PAE_MODE",
    10: "FEATURES", 11: "BSD_SYMTAB", 12: "HV_START_LOW", 13: "L1_MFN_VALID",
    14: "SUSPEND_CANCEL", 15: "INIT_P2M", 16: "MOD_START_PFN", 17: "SUPPORTED_FEATURES",
    18: "PHYS32_ENTRY",
}
ENTRY = 1
HYPERCALL_PAGE = 2
PHYS32_ENTRY = 18

# Kernels are tens of MiB; anything bigger is not one (and /dev/zero never ends).
MAX_FILE = 256 << 20
MAX_ELF = 1 << 30

_MAGICS: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"),
    (b"\x5d\x00\x00", "lzma"), (b"\x89LZO", "lzo"), (b"\x02\x21\x4c\x18", "lz4"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)
# The tools for what the standard library cannot unpack: argv, Debian package.
_TOOLS: dict[str, tuple[list[str], str]] = {
    "lz4": (["lz4", "-dc"], "lz4"), "lzo": (["lzop", "-dc"], "lzop"),
    "zstd": (["zstd", "-dc"], "zstd"),
}


class KernelImageError(XenlfsError):
    """The file is not a kernel image xenlfs can look into."""


@dataclass(frozen=True)
class KernelImage:
    path: Path
    format: str                   # "elf" or "bzImage"
    compression: str | None       # of a bzImage's payload
    notes: dict[int, bytes] = field(default_factory=dict)  # Xen note type → its descriptor

    @property
    def pv(self) -> bool:
        """Xen can start it as a PV guest (or PV dom0)."""
        return ENTRY in self.notes

    @property
    def pvh(self) -> bool:
        """Xen can start it as a PVH guest."""
        return PHYS32_ENTRY in self.notes

    def note_names(self) -> list[str]:
        return [NOTE_NAMES.get(n, str(n)) for n in sorted(self.notes)]

    def guest_os(self) -> str | None:
        desc = self.notes.get(6)
        return desc.split(b"\0")[0].decode("ascii", "replace") if desc else None


def read(path: Path) -> KernelImage:
    """The Xen notes of the kernel at `path`; KernelImageError when it is no kernel image."""
    data = _read_file(path)
    if data[:4] == b"\x7fELF":
        return KernelImage(path, "elf", None, xen_notes(data, str(path)))
    compression, elf = bzimage_payload(data, str(path))
    return KernelImage(path, "bzImage", compression, xen_notes(elf, f"{path} (payload)"))


def _read_file(path: Path) -> bytes:
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise KernelImageError(f"cannot read {path}: {e.strerror}") from e
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise KernelImageError(f"{path} is not a regular file",
                                   hint="give the kernel image itself (bzImage or vmlinux)")
        if st.st_size > MAX_FILE:
            raise KernelImageError(f"{path} is {st.st_size >> 20} MiB: too big for a kernel "
                                   "image", hint="give the bzImage or vmlinux")
        with open(fd, "rb", buffering=0, closefd=False) as f:
            return f.read(MAX_FILE + 1)
    finally:
        os.close(fd)


def release(data: bytes) -> str | None:
    """The kernel release a bzImage's header names (`make kernelrelease`), e.g. 6.1.192-xen."""
    if len(data) < 0x210 or data[0x202:0x206] != b"HdrS":
        return None
    at = struct.unpack_from("<H", data, 0x20E)[0] + 0x200
    words = data[at:at + 256].split(b"\0")[0].split()
    text = words[0].decode("ascii", "replace") if words else ""
    return text if text and "/" not in text and text not in (".", "..") else None


def compression_of(payload: bytes) -> str | None:
    return next((name for magic, name in _MAGICS if payload.startswith(magic)), None)


def bzimage_payload(data: bytes, where: str = "the image") -> tuple[str, bytes]:
    """(compression, ELF) of a bzImage: the kernel proper, as the boot code unpacks it."""
    if len(data) < 0x250 or data[0x202:0x206] != b"HdrS":
        raise KernelImageError(f"{where} is neither an ELF kernel nor a bzImage (no 'HdrS' "
                               "boot header)", hint="give the kernel image: arch/x86/boot/"
                               "bzImage, /boot/vmlinuz-VERSION or vmlinux")
    version = struct.unpack_from("<H", data, 0x206)[0]
    if version < 0x208:
        raise KernelImageError(f"{where}: boot protocol {version >> 8}.{version & 0xff} "
                               "records no payload (2.08 or later does)",
                               hint="a kernel from 2.6.26 on has one")
    setup_sectors = data[0x1F1] or 4
    offset, length = struct.unpack_from("<II", data, 0x248)
    start = (setup_sectors + 1) * 512 + offset
    payload = data[start:start + length]
    if length < 8 or len(payload) != length:
        raise KernelImageError(f"{where}: its payload ({length} bytes at {start}) lies "
                               "outside the file", hint="the file is cut short; copy it again")
    compression = compression_of(payload)
    if compression is None:
        raise KernelImageError(f"{where}: the payload is compressed in a way xenlfs does not "
                               f"know (starts {payload[:4].hex()})",
                               hint="give the uncompressed vmlinux instead")
    elf = decompress(compression, payload, where)
    if not elf.startswith(b"\x7fELF"):
        raise KernelImageError(f"{where}: the {compression} payload is not an ELF kernel")
    return compression, elf


def decompress(compression: str, payload: bytes, where: str) -> bytes:
    try:
        if compression == "gzip":
            return zlib.decompressobj(wbits=31).decompress(payload, MAX_ELF)
        if compression == "bzip2":
            return bz2.BZ2Decompressor().decompress(payload, MAX_ELF)
        if compression in ("xz", "lzma"):
            fmt = lzma.FORMAT_XZ if compression == "xz" else lzma.FORMAT_ALONE
            return lzma.LZMADecompressor(format=fmt).decompress(payload, MAX_ELF)
    except (zlib.error, OSError, lzma.LZMAError, EOFError) as e:
        raise KernelImageError(f"{where}: its {compression} payload is damaged: {e}",
                               hint="copy the image again") from e
    argv, package = _TOOLS[compression]
    # The kernel's build appends the uncompressed size (4 bytes) to the stream: not part of it.
    result = run.run(argv, input=payload[:-4], text=False, check=False,
                     hint=f"on Debian: apt-get install {package}")
    out = bytes(result.stdout)
    if not out.startswith(b"\x7fELF"):
        stderr = bytes(result.stderr).decode("utf-8", "replace").strip()
        raise KernelImageError(f"{where}: {argv[0]} could not unpack its payload: {stderr}",
                               hint="copy the image again")
    return out


def xen_notes(elf: bytes, where: str = "the ELF file") -> dict[int, bytes]:
    """Type → descriptor of each note owned by "Xen", from the note segments (or sections)."""
    notes: dict[int, bytes] = {}
    end = "<" if elf[5:6] == b"\x01" else ">"
    for start, size, align in _note_areas(elf, where):
        for name, kind, desc in _notes(elf[start:start + size], align, end):
            if name == b"Xen":
                notes.setdefault(kind, desc)
    return notes


def _note_areas(elf: bytes, where: str) -> list[tuple[int, int, int]]:
    if len(elf) < 52 or elf[:4] != b"\x7fELF":
        raise KernelImageError(f"{where} is not an ELF file")
    klass, data = elf[4], elf[5]
    if klass not in (1, 2) or data not in (1, 2):
        raise KernelImageError(f"{where}: unknown ELF class {klass} or byte order {data}")
    end = "<" if data == 1 else ">"
    try:
        if klass == 2:
            phoff, shoff = struct.unpack_from(end + "QQ", elf, 0x20)
            phentsize, phnum, shentsize, shnum = struct.unpack_from(end + "HHHH", elf, 0x36)
        else:
            phoff, shoff = struct.unpack_from(end + "II", elf, 0x1C)
            phentsize, phnum, shentsize, shnum = struct.unpack_from(end + "HHHH", elf, 0x2A)
        areas = [a for a in (_segment(elf, end, klass, phoff + i * phentsize)
                             for i in range(phnum)) if a]
        if not areas:  # a file with sections only (a relocatable object)
            areas = [a for a in (_section(elf, end, klass, shoff + i * shentsize)
                                 for i in range(shnum)) if a]
    except (struct.error, OverflowError) as e:  # offsets beyond the file, or beyond 2**63
        raise KernelImageError(f"{where}: its ELF headers lie outside the file",
                               hint="the file is cut short or damaged") from e
    return [(start, size, align) for start, size, align in areas
            if start + size <= len(elf)]


def _segment(elf: bytes, end: str, klass: int, at: int) -> tuple[int, int, int] | None:
    if klass == 2:
        kind, _, offset, _, _, size, _, align = struct.unpack_from(end + "IIQQQQQQ", elf, at)
    else:
        kind, offset, _, _, size, _, _, align = struct.unpack_from(end + "IIIIIIII", elf, at)
    return (offset, size, align) if kind == 4 else None  # PT_NOTE


def _section(elf: bytes, end: str, klass: int, at: int) -> tuple[int, int, int] | None:
    if klass == 2:
        _, kind, _, _, offset, size, _, _, align, _ = struct.unpack_from(end + "IIQQQQIIQQ",
                                                                         elf, at)
    else:
        _, kind, _, _, offset, size, _, _, align, _ = struct.unpack_from(end + "IIIIIIIIII",
                                                                         elf, at)
    return (offset, size, align) if kind == 7 else None  # SHT_NOTE


def _notes(area: bytes, align: int, end: str) -> Iterator[tuple[bytes, int, bytes]]:
    """(name, type, descriptor) of each note; names and descriptors padded to 4 bytes (8 in
    an 8-aligned note segment, as the gABI's later revision allows)."""
    pad = 8 if align == 8 else 4
    at = 0
    while at + 12 <= len(area):
        namesz, descsz, kind = struct.unpack_from(end + "III", area, at)
        at += 12
        name_end = at + namesz
        desc_at = at + -(-namesz // pad) * pad
        desc_end = desc_at + descsz
        if desc_end > len(area):
            return
        yield area[at:name_end].rstrip(b"\0"), kind, area[desc_at:desc_end]
        at = desc_at + -(-descsz // pad) * pad
