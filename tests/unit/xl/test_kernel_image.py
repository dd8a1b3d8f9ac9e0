"""Xen ELF notes read from crafted ELF files and bzImages (every payload compression the
kernel's boot code knows that the machine has a tool or a library for), and from a damaged
or hostile file."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from xenlfs.xl import kernel_image
from xenlfs.xl.kernel_image import ENTRY, PHYS32_ENTRY, KernelImageError


def note(name: bytes, kind: int, desc: bytes) -> bytes:
    padded = name + b"\0"
    padded += b"\0" * (-len(padded) % 4)
    return (struct.pack("<III", len(name) + 1, len(desc), kind) + padded + desc
            + b"\0" * (-len(desc) % 4))


def elf64(notes: bytes, *, sections_only: bool = False) -> bytes:
    """A little-endian ELF64 with one PT_NOTE segment (or only an SHT_NOTE section)."""
    ehsize, phentsize, shentsize = 64, 56, 64
    phnum = 0 if sections_only else 1
    notes_at = ehsize + phnum * phentsize
    shoff = notes_at + len(notes)
    shnum = 2 if sections_only else 0
    header = (b"\x7fELF" + bytes([2, 1, 1]) + b"\0" * 9
              + struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0x1000000, ehsize if phnum else 0,
                            shoff if shnum else 0, 0, ehsize, phentsize, phnum, shentsize,
                            shnum, 0))
    out = header
    if phnum:
        out += struct.pack("<IIQQQQQQ", 4, 4, notes_at, 0, 0, len(notes), len(notes), 4)
    out += notes
    if shnum:
        out += b"\0" * shentsize  # the null section
        out += struct.pack("<IIQQQQIIQQ", 0, 7, 0, 0, notes_at, len(notes), 0, 0, 4, 0)
    return out


PV_NOTES = note(b"Xen", 6, b"linux\0") + note(b"Xen", ENTRY, struct.pack("<Q", 0xFFFF_8000))
PVH_NOTES = PV_NOTES + note(b"Xen", PHYS32_ENTRY, struct.pack("<I", 0x1000000))
# Notes of other owners with a Xen number must not count.
OTHER = note(b"GNU", PHYS32_ENTRY, b"\0" * 20) + note(b"Linux", ENTRY, b"6.1\0")


def bzimage(payload: bytes, *, version: int = 0x20F, setup_sects: int = 3) -> bytes:
    """A bzImage as the kernel's build lays one out: setup sectors, then the payload."""
    setup = bytearray((setup_sects + 1) * 512)
    setup[0x1F1] = setup_sects
    setup[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", setup, 0x206, version)
    offset = 0x3A0  # where head_64.S's code would end: the payload follows it
    struct.pack_into("<II", setup, 0x248, offset, len(payload))
    return bytes(setup) + b"\x90" * offset + payload + b"\0" * 64


def size_appended(data: bytes, raw: bytes) -> bytes:
    return data + struct.pack("<I", len(raw))  # as the kernel's size_append does


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_elf_with_pv_and_pvh_notes(tmp_path: Path) -> None:
    image = kernel_image.read(write(tmp_path, "vmlinux", elf64(OTHER + PVH_NOTES)))
    assert (image.format, image.compression) == ("elf", None)
    assert image.pv and image.pvh and image.guest_os() == "linux"
    assert image.note_names() == ["ENTRY", "GUEST_OS", "PHYS32_ENTRY"]


def test_pv_only_and_other_owners(tmp_path: Path) -> None:
    image = kernel_image.read(write(tmp_path, "vmlinux", elf64(OTHER + PV_NOTES)))
    assert image.pv and not image.pvh
    image = kernel_image.read(write(tmp_path, "other", elf64(OTHER)))
    assert not image.pv and not image.pvh and image.notes == {}


def test_notes_in_sections_only(tmp_path: Path) -> None:
    image = kernel_image.read(write(tmp_path, "x.o", elf64(PVH_NOTES, sections_only=True)))
    assert image.pvh


COMPRESSORS = {
    "gzip": lambda raw: gzip.compress(raw),
    "bzip2": lambda raw: bz2.compress(raw),
    "xz": lambda raw: lzma.compress(raw, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32),
    "lzma": lambda raw: lzma.compress(raw, format=lzma.FORMAT_ALONE),
}
TOOLS = {"lz4": ["lz4", "-l", "-c"], "zstd": ["zstd", "-q", "-c"]}


@pytest.mark.parametrize("compression", [*COMPRESSORS, *TOOLS])
def test_bzimage_payloads(tmp_path: Path, compression: str) -> None:
    raw = elf64(PVH_NOTES) + os.urandom(4096)
    if compression in COMPRESSORS:
        packed = COMPRESSORS[compression](raw)
    else:
        if shutil.which(TOOLS[compression][0]) is None:
            subprocess.run(["apt-get", "install", "-y", "-q", compression], check=True)
        packed = subprocess.run(TOOLS[compression], input=raw, capture_output=True,
                                check=True).stdout
    path = write(tmp_path, "bzImage", bzimage(size_appended(packed, raw)))
    image = kernel_image.read(path)
    assert (image.format, image.compression) == ("bzImage", compression)
    assert image.pv and image.pvh


@pytest.mark.parametrize(("data", "message"), [
    (b"", "neither an ELF kernel nor a bzImage"),
    (b"MZ" + b"\0" * 4096, "no 'HdrS'"),
    (bzimage(b"\x00\x01\x02\x03" * 8), "compressed in a way xenlfs does not know"),
    (bzimage(gzip.compress(b"not an elf" * 10)), "not an ELF kernel"),
    (bzimage(gzip.compress(elf64(PV_NOTES)))[:-200], "outside the file"),
    (bzimage(gzip.compress(elf64(PV_NOTES)), version=0x206), "boot protocol 2.6"),
    (b"\x7fELF\x02\x01" + b"\xff" * 60, "outside the file"),
])
def test_what_is_no_kernel_says_so(tmp_path: Path, data: bytes, message: str) -> None:
    with pytest.raises(KernelImageError, match=re.escape(message)):
        kernel_image.read(write(tmp_path, "bad", data))


def test_damaged_xz_payload(tmp_path: Path) -> None:
    packed = bytearray(lzma.compress(elf64(PV_NOTES) * 50))
    packed[40:60] = b"\xff" * 20
    with pytest.raises(KernelImageError, match="damaged"):
        kernel_image.read(write(tmp_path, "bzImage", bzimage(bytes(packed))))


def test_a_fifo_a_directory_and_dev_zero_are_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (fifo, tmp_path, Path("/dev/zero")):
        with pytest.raises(KernelImageError, match=r"not a regular file|cannot read"):
            kernel_image.read(path)


def test_truncated_notes_stop_cleanly(tmp_path: Path) -> None:
    # A note whose descriptor claims more bytes than the segment has.
    broken = struct.pack("<III", 4, 4096, ENTRY) + b"Xen\0" + b"\1" * 8
    image = kernel_image.read(write(tmp_path, "vmlinux", elf64(PV_NOTES[:0] + broken)))
    assert image.notes == {}
