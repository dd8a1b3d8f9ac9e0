""""In use" is more than "mounted": an image or device another process holds open, or that
the kernel gave to someone exclusively (a mount in another namespace, a running domU's
blkback), is refused with exit 3 and left as it was. Real processes hold them here."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system.guest.conftest import loop_over, loops_of, our_mounts, sh
from xenlfs import run
from xenlfs.errors import PreconditionError
from xenlfs.guest import volume


def digest(path: Path | str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


@pytest.fixture
def image(workdir: Path) -> Path:
    path = workdir / "held.img"
    with open(path, "wb") as f:
        f.truncate(128 << 20)
    sh("mkfs.ext4", "-q", "-L", "precious", path)
    return path


def holder(path: Path | str, *, exclusive: bool = False) -> subprocess.Popen[str]:
    """A process that opens `path` (O_EXCL: claims the block device) and waits."""
    flags = "os.O_RDONLY | os.O_EXCL" if exclusive else "os.O_RDONLY"
    code = f"import os, sys, time; os.open({str(path)!r}, {flags}); print('ready'); " \
        "sys.stdout.flush(); time.sleep(300)"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    return proc


@pytest.fixture
def held() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait()


def refused(xenlfs, snapshot: Path, target: Path | str) -> str:
    result = xenlfs("guest", "prepare", "u1", "--snapshot", str(snapshot), "--target",
                    str(target), "--mkfs", "ext4", "--yes")
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert "in use" in result.stderr and "Traceback" not in result.stderr
    assert our_mounts("u1") == []
    return result.stderr


def test_an_image_held_open_by_a_process(xenlfs, image: Path, lfs_snapshot: Path, held):
    before = digest(image)
    held.append(holder(image))
    err = refused(xenlfs, lfs_snapshot, image)
    assert f"held open by {held[0].pid} (python" in err
    assert digest(image) == before


def test_a_loop_over_the_image_held_open(xenlfs, image: Path, lfs_snapshot: Path, held):
    before = digest(image)
    with loop_over(image) as loop:
        held.append(holder(loop))
        err = refused(xenlfs, lfs_snapshot, image)
        assert f"{held[0].pid} (python" in err
        assert loops_of(image) == [loop]  # not detached under its user
    assert digest(image) == before


def test_a_loop_over_the_device_held_open(xenlfs, image: Path, lfs_snapshot: Path, held):
    # The loop a partitioned device is mounted through, or anyone's over it: a use of it.
    with loop_over(image) as dev, loop_over(Path(dev), offset=1 << 20) as window:
        before = digest(dev)
        held.append(holder(window))
        err = refused(xenlfs, lfs_snapshot, dev)
        assert f"{held[0].pid} (python" in err
        assert loops_of(Path(dev)) == [window]  # not detached under its user
        assert digest(dev) == before


def test_a_device_held_open_by_a_process(xenlfs, image: Path, lfs_snapshot: Path, held):
    with loop_over(image) as dev:
        before = digest(dev)
        held.append(holder(dev))
        refused(xenlfs, lfs_snapshot, dev)
        assert digest(dev) == before


def test_a_device_mounted_in_another_mount_namespace(xenlfs, workdir: Path, image: Path,
                                                     lfs_snapshot: Path, held):
    mnt = workdir / "elsewhere"
    mnt.mkdir()
    with loop_over(image) as dev:
        script = 'mount "$0" "$1" && echo ready && exec sleep 300'
        proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                 script, dev, str(mnt)], stdout=subprocess.PIPE, text=True)
        held.append(proc)  # type: ignore[arg-type]
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        err = refused(xenlfs, lfs_snapshot, dev)
        assert "exclusively" in err
        assert sh("blkid", "-p", "-o", "value", "-s", "LABEL", dev).stdout.strip() == "precious"


def test_an_exclusive_holders_mkfs_error_is_the_same_refusal(image: Path, held):
    with loop_over(image) as dev:
        held.append(holder(dev, exclusive=True))
        with pytest.raises(PreconditionError, match="in use"), \
                volume.in_use_is_a_refusal(dev):
            run.run(["mkfs.ext4", "-F", "-q", dev], writes=True)


def test_an_image_nobody_holds_is_used(xenlfs, workdir: Path, image: Path,
                                       lfs_snapshot: Path):
    result = xenlfs("guest", "prepare", "u2", "--snapshot", str(lfs_snapshot), "--target",
                    str(image), "--config-dir", str(workdir / "xen"))
    assert result.returncode == 0, result.stderr
    assert os.path.exists(image) and loops_of(image) == []


def test_a_killed_runs_mount_still_in_use_is_not_unmounted_lazily(
        xenlfs, workdir: Path, image: Path, lfs_snapshot: Path, held):
    # what `kill -9` of `guest prepare u3` leaves: the image's loop mounted at its mountpoint,
    # here with a process still working in it
    mnt = Path("/run/xenlfs/guest-u3")
    mnt.mkdir(parents=True, exist_ok=True)
    args = ["guest", "prepare", "u3", "--snapshot", str(lfs_snapshot), "--target", str(image),
            "--config-dir", str(workdir / "xen")]
    with loop_over(image) as dev:
        sh("mount", dev, mnt)
        try:
            (mnt / "busy").write_text("x\n")
            held.append(holder(mnt / "busy"))
            result = xenlfs(*args)
            assert result.returncode == 3, result.stderr
            assert "still busy" in result.stderr and "fuser -vm" in result.stderr
            assert our_mounts("u3") and loops_of(image) == [dev]
            gone = held.pop()
            gone.kill()
            gone.wait()
            result = xenlfs(*args)
            assert result.returncode == 0, result.stderr
            assert our_mounts("u3") == [] and loops_of(image) == []
        finally:
            subprocess.run(["umount", str(mnt)], check=False, capture_output=True)
            subprocess.run(["rmdir", str(mnt)], check=False, capture_output=True)
