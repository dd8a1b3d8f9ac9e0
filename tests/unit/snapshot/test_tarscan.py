"""The streaming scanner agrees with Python's tarfile on what an archive holds, whatever
size the pieces fed to it, and damage is always an ArchiveDamaged, never a crash."""

from __future__ import annotations

import contextlib
import hashlib
import io
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xenlfs.snapshot.tarscan import ArchiveDamaged, Scanner


def _archive() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add(name: str, kind: bytes, data: bytes = b"", **fields: object) -> None:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.size = len(data)
            info.mtime = 1_700_000_000
            for key, value in fields.items():
                setattr(info, key, value)
            tar.addfile(info, io.BytesIO(data) if data else None)
        add(".", tarfile.DIRTYPE, mode=0o755)
        add("./usr/bin/ping", tarfile.REGTYPE, b"\x7fELF" * 3000, mode=0o4755,
            pax_headers={"SCHILY.xattr.security.capability": "\x01\x00\x00\x02",
                         "mtime": "1700000000.123456789"})
        add("./usr/bin/ping6", tarfile.LNKTYPE, linkname="./usr/bin/ping", mode=0o4755)
        add("./dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666)
        add("./dev/loop0", tarfile.BLKTYPE, devmajor=7, devminor=0, mode=0o660)
        add("./run/initctl", tarfile.FIFOTYPE, mode=0o600)
        add("./bin", tarfile.SYMTYPE, linkname="usr/bin", mode=0o777)
        add("./" + "long-directory-name/" * 8 + "file", tarfile.REGTYPE, b"deep\n",
            uid=1234, gid=5678, mode=0o640)
        add("./caf\udce9", tarfile.REGTYPE, b"latin-1 name\n", mode=0o644)
        add("./tmp", tarfile.DIRTYPE, mode=0o1777)
        add("./empty", tarfile.REGTYPE, mode=0o644)
    return out.getvalue()


ARCHIVE = _archive()


def _scan(data: bytes, piece: int) -> Scanner:
    scanner = Scanner()
    for start in range(0, len(data), piece):
        scanner.feed(data[start:start + piece])
    scanner.finish()
    return scanner


@pytest.mark.parametrize("piece", [1, 7, 512, 4096, 1 << 20])
def test_scanner_agrees_with_tarfile(piece: int):
    entries = _scan(ARCHIVE, piece).entries
    with tarfile.open(fileobj=io.BytesIO(ARCHIVE)) as tar:
        members = tar.getmembers()
        assert [e.path for e in entries] == [m.name.removeprefix("./") or "." for m in members]
        for entry, member in zip(entries, members, strict=True):
            assert entry.mode == member.mode
            assert (entry.uid, entry.gid) == (member.uid, member.gid)
            if member.isreg():
                data = tar.extractfile(member).read()  # type: ignore[union-attr]
                assert entry.sha256 == hashlib.sha256(data).hexdigest()
                assert entry.size == len(data)
    by_path = {e.path: e for e in entries}
    assert by_path["usr/bin/ping"].xattrs == (("security.capability", "01000002"),)
    assert by_path["usr/bin/ping"].mtime_ns == 1_700_000_000_123_456_789
    assert by_path["usr/bin/ping6"].type == "hardlink"
    assert by_path["usr/bin/ping6"].target == "usr/bin/ping"
    assert by_path["dev/null"].rdev == (1, 3)
    assert by_path["dev/loop0"].type == "block"
    assert by_path["run/initctl"].type == "fifo"
    assert by_path["bin"].target == "usr/bin"
    assert by_path["tmp"].mode == 0o1777
    assert "caf\udce9" in by_path


def test_truncation_is_reported():
    scanner = Scanner()
    scanner.feed(ARCHIVE[:len(ARCHIVE) // 2])
    with pytest.raises(ArchiveDamaged, match="truncated"):
        scanner.finish()


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(ARCHIVE) - 1), st.integers(1, 255))
def test_a_flipped_byte_never_crashes_the_scanner(where: int, flip: int):
    """Damage surfaces as ArchiveDamaged (verify reports it) or as entries that differ from
    the manifest; any other exception would be an internal error."""
    damaged = bytearray(ARCHIVE)
    damaged[where] ^= flip
    with contextlib.suppress(ArchiveDamaged):
        _scan(bytes(damaged), 4096)
