from __future__ import annotations

import fcntl
import os

import pytest

from xenlfs import files, run
from xenlfs.errors import PreconditionError


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


def test_a_symlink_is_followed_and_its_target_keeps_mode_and_owner(tmp_path):
    """A distribution's /boot/grub/grub.cfg -> ../grub2/grub.cfg: the real file is updated,
    the link stays, and no file gets the link's lstat mode (0777)."""
    (tmp_path / "grub2").mkdir()
    (tmp_path / "grub").mkdir()
    real = tmp_path / "grub2/grub.cfg"
    real.write_text("old\n")
    real.chmod(0o640)
    link = tmp_path / "grub/grub.cfg"
    link.symlink_to("../grub2/grub.cfg")
    backup = files.write_atomic(link, "new\n")
    assert link.is_symlink() and os.readlink(link) == "../grub2/grub.cfg"
    assert real.read_text() == "new\n" and link.read_text() == "new\n"
    assert real.stat().st_mode & 0o7777 == 0o640
    assert backup is not None and backup.parent == real.parent and backup.read_text() == "old\n"
    assert backup.stat().st_mode & 0o7777 == 0o640
    assert not list((tmp_path / "grub").glob("*.xenlfs-bak"))


def test_without_following_a_symlink_the_link_is_replaced_and_its_target_kept(tmp_path):
    """kernel install: /boot/vmlinuz-6.1-xen -> vmlinuz-6.1 must not overwrite vmlinuz-6.1."""
    other = tmp_path / "vmlinuz-6.1"
    other.write_bytes(b"the other kernel")
    link = tmp_path / "vmlinuz-6.1-xen"
    link.symlink_to(other.name)
    files.write_atomic(link, b"this kernel", mode=0o644, follow_symlinks=False)
    assert not link.is_symlink() and link.read_bytes() == b"this kernel"
    assert link.stat().st_mode & 0o7777 == 0o644
    assert other.read_bytes() == b"the other kernel"


def test_a_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "cfg"
    link.symlink_to("real.cfg")
    assert files.write_atomic(link, "x\n") is None
    assert link.is_symlink() and (tmp_path / "real.cfg").read_text() == "x\n"
    assert (tmp_path / "real.cfg").stat().st_mode & 0o7777 == 0o644


@pytest.mark.parametrize("kind", ["fifo", "dir", "loop"])
def test_what_is_not_a_regular_file_is_refused_and_left_alone(tmp_path, kind):
    target = tmp_path / "cfg"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "dir":
        target.mkdir()
    else:
        target.symlink_to("cfg")
    with pytest.raises(PreconditionError, match="cfg"):
        files.write_atomic(target, "x\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cfg"]


def test_only_the_newest_backups_are_kept(tmp_path):
    target = tmp_path / "grub.cfg"
    target.write_text("0\n")
    (tmp_path / "grub.cfg.old.20000101T000000.xenlfs-bak").write_text("not ours\n")
    made = [files.write_atomic(target, f"{n}\n") for n in range(1, 9)]
    kept = files.backups_of(target)
    assert kept == made[-files.DEFAULT_BACKUPS:]
    assert [p.read_text() for p in kept] == [f"{n}\n" for n in range(3, 8)]
    assert (tmp_path / "grub.cfg.old.20000101T000000.xenlfs-bak").exists()
    files.set_backups_kept(0)
    try:
        assert files.write_atomic(target, "9\n") is None
    finally:
        files.set_backups_kept(files.DEFAULT_BACKUPS)
    assert files.backups_of(target) == kept


def test_a_temp_file_left_by_a_killed_run_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "grub.cfg"
    target.write_text("old\n")
    stale = tmp_path / f"{files.TEMP_PREFIX}grub.cfg.abc123"
    stale.write_text("half")
    busy = tmp_path / f"{files.TEMP_PREFIX}grub.cfg.busy"
    busy.write_text("being written")
    with open(busy) as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a running xenlfs holds its own
        files.write_atomic(target, "new\n")
        assert not stale.exists() and busy.exists()


def test_a_temp_dir_left_by_a_killed_run_is_removed_by_the_next_one(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(files.tempfile, "tempdir", None)  # read TMPDIR again
    stale = tmp_path / "xenlfs-test-abc"
    (stale / "sub").mkdir(parents=True)
    (stale / "sub/.config").write_text("half")
    (stale / "link").symlink_to(tmp_path / "kept")  # removed as a link, never followed
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept/file").write_text("not the run's")
    busy = tmp_path / "xenlfs-test-busy"
    busy.mkdir()
    held = os.open(busy, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a running xenlfs holds its own
        with files.temp_dir("xenlfs-test-") as work:
            assert work.is_dir() and work.parent == tmp_path
            assert not stale.exists() and busy.is_dir()
            assert (tmp_path / "kept/file").read_text() == "not the run's"
            (work / "left").write_text("by a tool")
        assert not work.exists()
    finally:
        os.close(held)


def test_a_file_change_writes_with_a_backup_and_makes_its_directory(tmp_path):
    target = tmp_path / "etc/xen/g.cfg"
    new = files.FileChange.to(target, "one\n", what="a test file")
    assert new.old is None and new.needed and new.diff().startswith("--- /dev/null")
    assert new.apply() is None and target.read_text() == "one\n"
    again = files.FileChange.to(target, "one\n", what="a test file")
    assert not again.needed and again.diff() == "" and again.apply() is None
    assert not files.backups_of(target)  # nothing to change: nothing written, no backup
    changed = files.FileChange.to(target, "two\n", what="a test file")
    backup = changed.apply()
    assert backup is not None and backup.read_text() == "one\n"
    assert target.read_text() == "two\n"


def test_a_file_change_under_dry_run_shows_its_diff_and_writes_nothing(tmp_path, capsys):
    target = tmp_path / "grub.cfg"
    target.write_text("old\n")
    with run.dry_run_as(True):
        files.FileChange.to(target, "new\n", what="a grub.cfg").apply()
    assert target.read_text() == "old\n" and not files.backups_of(target)
    out = capsys.readouterr().out
    assert f"+++ b/{str(target).lstrip('/')}" in out and "-old" in out and "+new" in out


def test_a_mode_alone_is_a_change_only_when_the_old_mode_is_given(tmp_path):
    target = tmp_path / "create"
    target.write_text("#!/bin/sh\n")
    target.chmod(0o644)
    assert not files.FileChange(target, "#!/bin/sh\n", "#!/bin/sh\n", 0o755).needed
    change = files.FileChange(target, "#!/bin/sh\n", "#!/bin/sh\n", 0o755, old_mode=0o644)
    assert change.needed and change.diff() == ""
    change.apply()
    assert target.stat().st_mode & 0o777 == 0o755


def test_a_file_change_over_what_is_not_a_file_is_refused(tmp_path):
    (tmp_path / "d").mkdir()
    change = files.FileChange.to(tmp_path / "d", "x\n", what="a test file")
    assert change.old is None
    with pytest.raises(PreconditionError, match="directory"):
        change.apply()
