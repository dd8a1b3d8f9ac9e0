"""extract() keeps GNU tar's protections: nothing lands outside the destination."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.conftest import ROOT
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


# --- whatever the destination already holds, nothing is written outside it ---------------
#
# Each extraction runs in a private mount namespace whose /etc is a decoy (bind-mounted over
# the real one), so a write that escapes lands in the decoy, where the test sees it, and never
# on this machine's /etc.

def _add(tar: tarfile.TarFile, name: str, kind: bytes = tarfile.REGTYPE, link: str = "",
         data: bytes = b"pwned\n") -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    body = data if kind == tarfile.REGTYPE else b""
    info.size = len(body)
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    tar.addfile(info, io.BytesIO(body))


def _through_links(path: Path, outside: Path) -> None:
    """Members that only name paths under links the destination already holds (no directory
    members of their own, so GNU tar does not replace the links with directories)."""
    with tarfile.open(path, "w") as tar:
        _add(tar, "./etc/passwd")  # etc -> /etc
        _add(tar, "./deep/etc/shadow")  # deep -> chain -> /  (a link to a link)
        _add(tar, "./up/file")  # up -> ../outside (relative, climbing out)
        _add(tar, "./mine/file")  # mine -> <outside, by its absolute path>
        _add(tar, "./hard", tarfile.LNKTYPE, "etc/group")  # a hard link through etc -> /etc
        _add(tar, "./hard-abs", tarfile.LNKTYPE, f"{outside}/keep")
        _add(tar, "./hard-mine", tarfile.LNKTYPE, "mine/keep")  # same filesystem as dest
        _add(tar, "./hard-up", tarfile.LNKTYPE, "../../../../../../../../etc/group")
        # a directory replaced by a symlink to /etc mid-archive, then written through
        _add(tar, "./swap/", tarfile.DIRTYPE)
        _add(tar, "./swap", tarfile.SYMTYPE, "/etc")
        _add(tar, "./swap/hostname")
        _add(tar, "./rel", tarfile.SYMTYPE, "swap")  # a link to that link
        _add(tar, "./rel/hosts")
        _add(tar, "/etc/motd")  # absolute
        _add(tar, "../../../../../../../../etc/issue")  # climbing


def _digest(root: Path) -> dict[str, tuple[int, int, bytes]]:
    return {str(p.relative_to(root)): (p.lstat().st_mode, p.lstat().st_ino,
                                       b"" if p.is_dir() else p.read_bytes())
            for p in sorted(root.rglob("*"))}


def test_links_already_in_the_destination_are_never_written_through(workdir: Path):
    decoy = workdir / "decoy-etc"
    decoy.mkdir()
    for name in ("passwd", "shadow", "group", "hostname", "hosts", "motd", "issue"):
        (decoy / name).write_text(f"the host's {name}\n")
    outside = workdir / "outside"
    outside.mkdir()
    (outside / "keep").write_text("keep\n")
    dest = workdir / "dest"
    dest.mkdir()
    os.symlink("/etc", dest / "etc")
    os.symlink("/", dest / "chain")
    os.symlink("chain", dest / "deep")
    os.symlink("../outside", dest / "up")
    os.symlink(str(outside), dest / "mine")
    archive = workdir / "through-links.tar"
    _through_links(archive, outside)
    before = _digest(decoy), _digest(outside)

    script = 'mount --bind "$0" /etc && exec "$@"'
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(decoy),
         sys.executable, "-m", "xenlfs", "snapshot", "extract", str(archive), str(dest)],
        env=dict(os.environ, PYTHONPATH=str(ROOT / "src"), XDG_CONFIG_HOME="/nonexistent"),
        capture_output=True, text=True, timeout=120, check=False)

    assert (_digest(decoy), _digest(outside)) == before, result.stderr
    assert result.returncode == 1, result.stderr  # tar could not write those members
    assert "Traceback" not in result.stderr
    assert "symlinks" in result.stderr  # the hint says why
    # the links in the destination are as they were; nothing in it is a host file
    assert os.readlink(dest / "etc") == "/etc" and os.readlink(dest / "up") == "../outside"
    host_inodes = {st.st_ino for st in (p.lstat() for p in [*decoy.iterdir(),
                                                            *outside.iterdir()])}
    for path in dest.rglob("*"):
        if not path.is_symlink():
            assert path.lstat().st_ino not in host_inodes, path


def test_without_a_jail_nothing_is_extracted(workdir: Path):
    """Root without CAP_SYS_ADMIN (as in some containers) cannot make the mount namespace:
    a clear refusal, never an unconfined extraction."""
    archive = workdir / "fine.tar"
    with tarfile.open(archive, "w") as tar:
        _add(tar, "./etc/passwd")
    dest = workdir / "dest"
    dest.mkdir()
    result = subprocess.run(
        ["setpriv", "--bounding-set", "-sys_admin", sys.executable, "-m", "xenlfs",
         "snapshot", "extract", str(archive), str(dest)],
        env=dict(os.environ, PYTHONPATH=str(ROOT / "src"), XDG_CONFIG_HOME="/nonexistent"),
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 3, result.stderr
    assert "could not make the jail" in result.stderr and "Traceback" not in result.stderr
    assert list(dest.iterdir()) == []


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
