"""The walk over a tree meets its entries in the order GNU tar archives them; the readahead
built on it never gets more than its window ahead of what tar has written."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from xenlfs.snapshot import excludes as ex
from xenlfs.snapshot import readahead
from xenlfs.snapshot.create import TAR_FLAGS
from xenlfs.snapshot.tarscan import Scanner

pytestmark = pytest.mark.unit


def _tree(root: Path) -> None:
    for name in ("b", "a.txt", "a-", "a.d/x", "a/z", "a/y/deep", "B", "excluded/inside", "_"):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(name.encode() * 100)
    (root / os.fsdecode(b"caf\xe9")).write_bytes(b"not UTF-8")
    os.link(root / "a/z", root / "a/z-again")
    os.link(root / "b", root / "0-first-link")
    (root / "link").symlink_to("a/z")
    os.mkfifo(root / "fifo")
    with open(root / "sparse", "wb") as sparse:
        sparse.truncate(64 << 20)


def test_the_walk_follows_tars_own_order(tmp_path: Path) -> None:
    _tree(tmp_path)
    excluded = ex.matcher(["./excluded"])
    tar = subprocess.run(["tar", "--create", "--file=-", f"--directory={tmp_path}", *TAR_FLAGS,
                          "--anchored", "--exclude=./excluded", "."],
                         capture_output=True, check=True)
    scanner = Scanner()
    scanner.feed(tar.stdout)
    assert [relative for _, relative, _ in ex.walk(tmp_path, excluded)] == \
        [e.path for e in scanner.entries]
    files_tar_reads = [e.path for e in scanner.entries if e.type == "file" and e.path != "sparse"]
    walked = [os.path.relpath(os.fsdecode(path), tmp_path)
              for path, _ in readahead.files_in_tar_order(tmp_path, excluded)]
    assert walked == files_tar_reads
    assert "0-first-link" in walked and "b" not in walked  # one inode, where tar reads it


def _record_advice(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, int]]:
    advised: list[tuple[str, int, int]] = []
    real = os.posix_fadvise

    def advise(fd: int, offset: int, length: int, advice: int) -> None:
        assert advice == os.POSIX_FADV_WILLNEED
        advised.append((os.path.basename(os.readlink(f"/proc/self/fd/{fd}")), offset, length))
        real(fd, offset, length, advice)
    monkeypatch.setattr(os, "posix_fadvise", advise)
    return advised


def _settle(advised: list[tuple[str, int, int]], count: int) -> None:
    deadline = time.monotonic() + 10
    while len(advised) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # long enough for a walk that ignores its window to go on


def test_it_stays_within_its_window_and_goes_on_as_tar_reads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for n in range(6):
        (tmp_path / f"file{n}").write_bytes(os.urandom(64 << 10))
    advised = _record_advice(monkeypatch)
    with readahead.Readahead(tmp_path, ex.matcher([]), window=100 << 10) as ahead:
        _settle(advised, 2)
        assert [name for name, _, _ in advised] == ["file0", "file1"]
        ahead.consumed(64 << 10)
        _settle(advised, 3)
        assert len(advised) == 3
        ahead.consumed(1 << 30)
        _settle(advised, 6)
    assert [name for name, _, _ in advised] == [f"file{n}" for n in range(6)]


def test_a_big_file_is_advised_a_piece_at_a_time(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "big").write_bytes(os.urandom(readahead.PIECE * 2 + 1))
    advised = _record_advice(monkeypatch)
    with readahead.Readahead(tmp_path, ex.matcher([]), window=1 << 20) as ahead:
        _settle(advised, 1)
        assert advised == [("big", 0, readahead.PIECE)]
        ahead.consumed(readahead.PIECE * 3)
        _settle(advised, 3)
    assert [offset for _, offset, _ in advised] == [0, readahead.PIECE, 2 * readahead.PIECE]


def test_stopping_ends_a_walk_that_waits_for_tar(tmp_path: Path) -> None:
    for n in range(3):
        (tmp_path / f"file{n}").write_bytes(os.urandom(64 << 10))
    ahead = readahead.Readahead(tmp_path, ex.matcher([]), window=0)
    with ahead:
        time.sleep(0.05)
    assert not ahead._thread.is_alive()
