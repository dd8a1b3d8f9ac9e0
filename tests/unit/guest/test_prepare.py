"""Step 5's entry (guest/prepare.py) under --dry-run, in process: what it looks at once."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from xenlfs import run
from xenlfs.guest import inuse, prepare, storage
from xenlfs.guest.plan import GuestOptions
from xenlfs.snapshot import formats


def small_snapshot(path: Path) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, text in (("etc/fstab", "/dev/sda2 / ext4 defaults 1 1\n"),
                           ("etc/hostname", "lfs\n")):
            data = text.encode()
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    return path


def test_a_run_detects_the_archive_format_once(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inuse, "MOUNT_BASE", tmp_path / "run")  # the guest's lock
    archive = small_snapshot(tmp_path / "s.tar")
    looked: list[Path] = []
    detect = formats.detect
    monkeypatch.setattr(formats, "detect", lambda path: looked.append(path) or detect(path))
    target = tmp_path / "guest"
    target.mkdir()
    with run.dry_run_as(True):
        report = prepare.prepare_guest(
            archive, storage.Request("g", target), GuestOptions(name="g", hostname="g"),
            prepare.XlRequest(tmp_path / "xen", kernel=None, memory=256))
    assert looked == [archive]
    assert report.plan is not None and "/etc/fstab" in "".join(report.plan.diffs())
    assert list(target.iterdir()) == []
