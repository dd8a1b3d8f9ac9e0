from __future__ import annotations

import gzip
import lzma
import os
from pathlib import Path

from tests.unit.lab.test_xen_image import VERSIONS
from xenlfs.lab import dom0_kernel


def test_debian_kernel_keeps_its_cache_directory(tmp_path: Path) -> None:
    # The name a warm cache (CI's) already holds for this kernel: it is found, not rebuilt.
    assert dom0_kernel.kernel_dir(tmp_path, VERSIONS) == tmp_path / "kernel-34865f2a35e04744"


def test_module_files_are_relative_and_skip_builtins(tmp_path: Path) -> None:
    out = (f"insmod {tmp_path}/lib/modules/6.1/kernel/net/llc/llc.ko \n"
           f"insmod {tmp_path}/lib/modules/6.1/kernel/net/bridge/bridge.ko \n"
           "builtin crc32c\n")
    assert dom0_kernel.module_files(out, tmp_path) == [
        "lib/modules/6.1/kernel/net/llc/llc.ko", "lib/modules/6.1/kernel/net/bridge/bridge.ko"]


def bzimage(payload: bytes) -> bytes:
    setup_sectors = 1
    header = bytearray(1024)
    header[0x1F1] = setup_sectors
    header[0x202:0x206] = b"HdrS"
    header[0x248:0x250] = (16).to_bytes(4, "little") + len(payload).to_bytes(4, "little")
    return bytes(header) + b"\0" * 16 + payload + b"tail"


def test_vmlinux_is_unpacked_from_xz_and_gzip_bzimages(tmp_path: Path) -> None:
    elf = b"\x7fELF" + os.urandom(1000)
    for name, packed in (("xz", lzma.compress(elf, format=lzma.FORMAT_XZ)),
                         ("gz", gzip.compress(elf))):
        (tmp_path / name).write_bytes(bzimage(packed))
        assert dom0_kernel.vmlinux(tmp_path / name) == elf
    (tmp_path / "zst").write_bytes(bzimage(b"\x28\xb5\x2f\xfd rest"))
    assert dom0_kernel.vmlinux(tmp_path / "zst") is None
    (tmp_path / "elf").write_bytes(elf)
    assert dom0_kernel.vmlinux(tmp_path / "elf") == elf
