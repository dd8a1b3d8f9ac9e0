"""extract() keeps GNU tar's protections: nothing lands outside the destination."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from xenlfs.errors import CommandFailed, ToolMissing, UsageError
from xenlfs.snapshot import extract


def _hostile(path: Path, outside: Path) -> None:
    with tarfile.open(path, "w") as tar:
        def add(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> None:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, link
            data = b"pwned\n" if kind == tarfile.REGTYPE else b""
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        add("./ok")
        add(f"../../../../../../../..{outside}/dotdot")
        add(f"{outside}/absolute")
        add("./escape", tarfile.SYMTYPE, str(outside))
        add("./escape/through-symlink")


def test_members_that_escape_dest_are_not_written_outside(workdir: Path):
    outside = workdir / "outside"
    outside.mkdir()
    archive = workdir / "hostile.tar"
    _hostile(archive, outside)
    dest = workdir / "dest"
    with pytest.raises(CommandFailed):
        extract(archive, dest)
    assert list(outside.iterdir()) == []
    assert (dest / "ok").read_text() == "pwned\n"


def test_not_an_archive_and_a_file_as_dest_are_usage_errors(workdir: Path):
    text = workdir / "notes.txt"
    text.write_text("hello\n")
    with pytest.raises(UsageError, match="not a tar archive"):
        extract(text, workdir / "dest")
    archive = workdir / "fine.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(text, "notes.txt")
    with pytest.raises(UsageError, match="not a directory"):
        extract(archive, text)
    assert not (workdir / "dest").exists()


def test_a_missing_decompressor_is_named_not_taken_for_damage(workdir: Path, monkeypatch):
    # A node without zstd (seen: a Ganeti node's dom0) reads a whole snapshot.
    archive = workdir / "small.tar.zst"
    with tarfile.open(workdir / "small.tar", "w") as tar:
        tar.add(__file__, "file")
    subprocess.run(["zstd", "-q", "-o", archive, workdir / "small.tar"], check=True)
    bin_dir = workdir / "bin"
    bin_dir.mkdir()
    (bin_dir / "tar").symlink_to(shutil.which("tar"))
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(ToolMissing, match="zstd is not installed") as caught:
        extract(archive, workdir / "dest")
    assert "apt-get install zstd" in str(caught.value)
    assert not (workdir / "dest").exists()
