from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from xenlfs.errors import UsageError
from xenlfs.lab import apt, xen_image

VERSIONS = apt.Versions("bookworm", "4.17.5+72-g01140da4e8-1", "4.17.5+72-g01140da4e8-1",
                        "linux-image-6.1.0-50-amd64", "6.1.176-1")


def test_debian_xen_keeps_its_cache_directory(tmp_path: Path) -> None:
    # The name a warm cache (CI's) already holds for these versions: it is found, not rebuilt.
    assert xen_image.xen_dir(tmp_path, VERSIONS) == tmp_path / "xen-cf1a5dabbf30e03e"


def test_user_xen_elf_is_used_as_is_and_gz_is_unpacked_once(tmp_path: Path) -> None:
    elf = tmp_path / "xen"
    elf.write_bytes(b"\x7fELF" + b"\0" * 60)
    assert xen_image.user_xen(tmp_path / "cache", elf) == elf
    gz = tmp_path / "xen.gz"
    gz.write_bytes(gzip.compress(elf.read_bytes()))
    unpacked = xen_image.user_xen(tmp_path / "cache", gz)
    assert unpacked.read_bytes() == elf.read_bytes()
    assert xen_image.user_xen(tmp_path / "cache", gz) == unpacked
    other = tmp_path / "bzImage"
    other.write_bytes(b"MZ\0\0")
    with pytest.raises(UsageError, match="neither an ELF"):
        xen_image.user_xen(tmp_path / "cache", other)
