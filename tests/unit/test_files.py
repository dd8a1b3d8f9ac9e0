from __future__ import annotations

import os

import pytest

from xenlfs import files, run


def test_write_atomic_keeps_a_backup_and_the_mode(tmp_path):
    target = tmp_path / "grub.cfg"
    target.write_text("old\n")
    target.chmod(0o600)
    backup = files.write_atomic(target, "new\n")
    assert target.read_text() == "new\n"
    assert backup is not None and backup.read_text() == "old\n"
    assert target.stat().st_mode & 0o777 == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(files.TEMP_PREFIX)]


def test_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "fstab"
    target.write_text("keep\n")
    with pytest.raises(RuntimeError), files.atomic_output(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "keep\n"
    assert os.listdir(tmp_path) == ["fstab"]


def test_dry_run_writes_nothing(tmp_path):
    target = tmp_path / "f"
    with run.dry_run_as(True):
        files.write_atomic(target, "x")
    assert not target.exists()


def test_unified_diff_of_a_new_file():
    diff = files.unified_diff("/etc/fstab", None, "a\n")
    assert diff.startswith("--- /dev/null\n+++ b/etc/fstab\n")
    assert "+a\n" in diff
