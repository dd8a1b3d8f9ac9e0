"""`xenlfs guest prepare` from a real snapshot into an image file (with and without a
partition table) and a directory; every edit is checked in the result."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.system.guest.conftest import (
    ROOT_HASH,
    SSH_KEY,
    loop_over,
    loops_of,
    our_mounts,
    sh,
)
from xenlfs.guest import storage


def prepare(xenlfs, workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    key = workdir / "key.pub"
    key.write_text(SSH_KEY + "\n")
    return xenlfs("guest", "prepare", *args, "--ip", "192.168.7.20/24", "--gateway",
                  "192.168.7.1", "--root-password-hash", ROOT_HASH, "--ssh-key", str(key),
                  "--config-dir", str(workdir / "xen"), "--kernel", "/boot/vmlinuz-domU",
                  "--iface", "enX0")


def check_guest(root: Path, name: str) -> None:
    """Every step-5 edit, as the hint asks for it."""
    for path, mode in (("dev", 0o755), ("proc", 0o555), ("sys", 0o555), ("run", 0o755),
                       ("mnt", 0o755), ("media/floppy", 0o755), ("media/cdrom", 0o755),
                       ("tmp", 0o1777), ("boot", 0o755)):
        st = (root / path).lstat()
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == mode, path
    assert os.listdir(root / "boot") == []
    assert os.readlink(root / "var/run") == "/run"
    assert os.readlink(root / "var/lock") == "/run/lock"
    for path, mode, rdev in (("dev/console", 0o600, (5, 1)), ("dev/null", 0o666, (1, 3))):
        st = (root / path).lstat()
        assert stat.S_ISCHR(st.st_mode) and stat.S_IMODE(st.st_mode) == mode
        assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == rdev
    fstab = [line.split() for line in (root / "etc/fstab").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert fstab[0] == ["/dev/xvda1", "/", "ext4", "defaults", "1", "1"]
    assert sorted(f[2] for f in fstab[1:]) == ["devpts", "devtmpfs", "proc", "sysfs", "tmpfs"]
    inittab = (root / "etc/inittab").read_text().splitlines()
    assert "1:2345:respawn:/sbin/agetty --noclear hvc0 9600" in inittab
    assert not [line for line in inittab if re.search(r"\btty\d", line)
                and not line.startswith("#")]
    assert "#6:2345:respawn:/sbin/agetty tty6 9600" in inittab
    ifconfig = (root / "etc/sysconfig/ifconfig.enX0").read_text().splitlines()
    assert ifconfig == ["ONBOOT=yes", "IFACE=enX0", "SERVICE=ipv4-static", "IP=192.168.7.20",
                        "GATEWAY=192.168.7.1", "PREFIX=24", "BROADCAST=192.168.7.255"]
    assert (root / "etc/hostname").read_text() == f"{name}\n"
    assert f"127.0.1.1      {name}" in (root / "etc/hosts").read_text()
    assert "lfs-host" not in (root / "etc/hosts").read_text()
    assert (root / "etc/shadow").read_text().startswith(f"root:{ROOT_HASH}:")
    assert stat.S_IMODE((root / "etc/shadow").stat().st_mode) == 0o600
    keys = root / "root/.ssh/authorized_keys"
    assert keys.read_text() == SSH_KEY + "\n"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    assert stat.S_IMODE((root / "root/.ssh").stat().st_mode) == 0o700
    # the snapshot's own files are there
    assert (root / "etc/rc.d/init.d/rc").is_file() and (root / "sbin/agetty").is_file()


def check_mounted(image: Path, name: str, workdir: Path, offset: int = 0,
                  size: int | None = None) -> None:
    mnt = workdir / "look"
    mnt.mkdir(exist_ok=True)
    with loop_over(image, offset, size) as dev:
        assert sh("blkid", "-p", "-o", "value", "-s", "TYPE", dev).stdout.strip() == "ext4"
        sh("mount", "-o", "ro", dev, mnt)
        try:
            check_guest(mnt, name)
        finally:
            sh("umount", mnt)


def check_clean(image: Path) -> None:
    """No loop over the image, no mount of its guest (named as the image: g1.img is g1)."""
    assert loops_of(image) == []
    assert our_mounts(image.stem) == []


def test_image_without_partition_table(xenlfs, workdir: Path, lfs_snapshot: Path):
    image = workdir / "g1.img"
    result = prepare(xenlfs, workdir, "g1", "--snapshot", str(lfs_snapshot), "--target",
                     str(image), "--size", "200M")
    assert result.returncode == 0, result.stderr
    check_clean(image)
    st = image.stat()
    assert st.st_size == 200 << 20 and st.st_blocks * 512 < st.st_size // 2  # sparse
    check_mounted(image, "g1", workdir)
    cfg = (workdir / "xen/g1.cfg").read_text()
    assert f'disk = ["format=raw, vdev=xvda1, access=rw, target={image}"]' in cfg
    assert 'root = "/dev/xvda1 ro"' in cfg and 'name = "g1"' in cfg
    assert xenlfs("guest", "check", str(workdir / "xen/g1.cfg")).returncode == 0

    # a second run converges: same result, nothing asked, nothing left behind
    again = prepare(xenlfs, workdir, "g1", "--snapshot", str(lfs_snapshot), "--target",
                    str(image))
    assert again.returncode == 0, again.stderr
    assert "xl config" in again.stdout and "already as needed" in again.stdout
    check_clean(image)
    check_mounted(image, "g1", workdir)


def test_image_with_partition_table(xenlfs, workdir: Path, lfs_snapshot: Path):
    image = workdir / "g2.img"
    result = prepare(xenlfs, workdir, "g2", "--snapshot", str(lfs_snapshot), "--target",
                     str(image), "--size", "160M", "--partition-table", "gpt")
    assert result.returncode == 0, result.stderr
    check_clean(image)
    table = json.loads(sh("sfdisk", "--json", image).stdout)["partitiontable"]
    assert table["label"] == "gpt" and len(table["partitions"]) == 1
    part = table["partitions"][0]
    assert part["start"] == 2048
    check_mounted(image, "g2", workdir, part["start"] * 512, part["size"] * 512)
    cfg = (workdir / "xen/g2.cfg").read_text()
    assert "vdev=xvda," in cfg and 'root = "/dev/xvda1 ro"' in cfg


def test_directory_target_and_dry_run(xenlfs, workdir: Path, lfs_snapshot: Path):
    target = workdir / "dir"
    target.mkdir()
    dry = prepare(xenlfs, workdir, "g3", "--snapshot", str(lfs_snapshot), "--target",
                  str(target), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert os.listdir(target) == [] and not (workdir / "xen").exists()
    for diff in ("+++ b/etc/fstab", "+/dev/xvda1     /", "+1:2345:respawn:/sbin/agetty "
                 "--noclear hvc0 9600", "+++ b/etc/sysconfig/ifconfig.enX0", "+IFACE=enX0"):
        assert diff in dry.stdout
    assert "would: mknod -m 600 /dev/console c 5 1" in dry.stdout

    result = prepare(xenlfs, workdir, "g3", "--snapshot", str(lfs_snapshot), "--target",
                     str(target))
    assert result.returncode == 0, result.stderr
    check_guest(target, "g3")
    assert "a directory target is no Xen disk" in result.stdout


@pytest.mark.parametrize("table", ["none", "dos"])
def test_dry_run_of_a_new_image_changes_nothing(xenlfs, workdir: Path, lfs_snapshot: Path,
                                                table: str):
    image = workdir / "new.img"
    result = prepare(xenlfs, workdir, "g4", "--snapshot", str(lfs_snapshot), "--target",
                     str(image), "--size", "100M", "--partition-table", table, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert not image.exists() and our_mounts("g4") == []
    assert "would run: mkfs.ext4" in result.stderr
    assert "+++ b/etc/fstab" in result.stdout and "+++ b/" + str(workdir / "xen/g4.cfg")[1:] \
        in result.stdout


def test_failed_extraction_leaves_nothing_and_the_next_run_converges(
        xenlfs, workdir: Path, lfs_snapshot: Path):
    broken = workdir / "broken.tar.zst"
    data = lfs_snapshot.read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    image = workdir / "g5.img"
    result = prepare(xenlfs, workdir, "g5", "--snapshot", str(broken), "--target", str(image),
                     "--size", "100M")
    assert result.returncode == 1, result.stderr
    assert "tar" in result.stderr and "Traceback" not in result.stderr
    assert not image.exists() and our_mounts("g5") == []
    result = prepare(xenlfs, workdir, "g5", "--snapshot", str(lfs_snapshot), "--target",
                     str(image), "--size", "100M")
    assert result.returncode == 0, result.stderr
    check_clean(image)
    check_mounted(image, "g5", workdir)


def test_sigterm_during_extraction_unmounts_and_detaches(workdir: Path):
    from tests.conftest import ROOT
    from tests.system.guest.conftest import lfs_tree, snapshot

    archive = snapshot(lfs_tree(workdir / "big", extra_bytes=400 << 20), workdir / "big.tar")
    image = workdir / "g6.img"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), XDG_CONFIG_HOME="/nonexistent")
    proc = subprocess.Popen(
        [sys.executable, "-m", "xenlfs", "guest", "prepare", "g6", "--snapshot", str(archive),
         "--target", str(image), "--size", "1G", "--config-dir", str(workdir / "xen")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("==> extract"):
            break
    proc.terminate()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    check_clean(image)
    assert not image.exists()


def kill_9_during_extraction(argv: list[str]) -> subprocess.Popen[str]:
    """Run xenlfs ARGV and kill it (SIGKILL) once it starts extracting."""
    from tests.conftest import ROOT

    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), XDG_CONFIG_HOME="/nonexistent")
    proc = subprocess.Popen([sys.executable, "-m", "xenlfs", *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("==> extract"):
            break
    proc.kill()
    proc.communicate(timeout=60)
    return proc


def test_kill_9_during_extraction_then_the_same_command_converges(xenlfs, workdir: Path):
    from tests.system.guest.conftest import lfs_tree, snapshot

    archive = snapshot(lfs_tree(workdir / "big", extra_bytes=300 << 20), workdir / "big.tar")
    image = workdir / "g7.img"
    argv = ["guest", "prepare", "g7", "--snapshot", str(archive), "--target", str(image),
            "--size", "1G", "--config-dir", str(workdir / "xen")]
    proc = kill_9_during_extraction(argv)
    assert our_mounts("g7") and loops_of(image)  # what kill -9 leaves: mounted, attached

    again = xenlfs(*argv)  # the very same command, --size included
    assert again.returncode == 0, again.stderr
    assert "left mounted by an earlier run" in again.stderr
    check_clean(image)
    assert not Path("/run/xenlfs/guest-g7").exists()
    assert not Path("/run/xenlfs/guest-g7.lock").exists()
    assert not list(Path("/run/xenlfs").glob(f"extract-{proc.pid}"))
    mnt = workdir / "look"
    mnt.mkdir()
    with loop_over(image) as dev:
        sh("mount", "-o", "ro", dev, mnt)
        try:
            assert (mnt / "usr/bin/big").stat().st_size == 300 << 20
            assert "/dev/xvda1" in (mnt / "etc/fstab").read_text()
        finally:
            sh("umount", mnt)


def test_kill_9_on_a_partitioned_block_device_leaves_no_loop_after_the_rerun(
        xenlfs, workdir: Path):
    # A device with a partition table (an HVM guest's disk): xenlfs mounts the partition
    # through a loop over the device, which the kill leaves attached to the device.
    from tests.system.guest.conftest import lfs_tree, snapshot

    archive = snapshot(lfs_tree(workdir / "big", extra_bytes=300 << 20), workdir / "big.tar")
    disk = workdir / "disk"
    sh("truncate", "--size", "1G", disk)
    sh("sfdisk", "--quiet", disk, input="label: dos\nstart=2048, type=L\n")
    with loop_over(disk) as dev:
        argv = ["guest", "prepare", "g12", "--snapshot", str(archive), "--target", dev,
                "--partition-table", "dos", "--yes", "--config-dir", str(workdir / "xen")]
        kill_9_during_extraction(argv)
        try:
            assert our_mounts("g12") and loops_of(Path(dev))  # mounted, a loop over dev

            again = xenlfs(*argv)  # the very same command
            assert again.returncode == 0, again.stderr
            assert f"left on {dev}" in again.stderr
            assert loops_of(Path(dev)) == [] and our_mounts("g12") == []
        finally:  # a loop left over dev would keep it attached past the test
            for line in our_mounts("g12"):
                sh("umount", line.split()[4])
            for loop in loops_of(Path(dev)):
                sh("losetup", "--detach", loop)


def test_a_kill_during_mkfs_is_redone_without_asking_by_the_same_guests_rerun(
        xenlfs, workdir: Path, lfs_snapshot: Path):
    from tests.conftest import ROOT

    image = workdir / "g13.img"
    sh("truncate", "--size", "200M", image)  # all zeros: formatted without asking
    argv = ["guest", "prepare", "g13", "--snapshot", str(lfs_snapshot), "--target", str(image),
            "--config-dir", str(workdir / "xen")]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), XDG_CONFIG_HOME="/nonexistent")
    # strace kills mkfs (SIGKILL) at its 100th write: tables half-written, no signature yet.
    killed = subprocess.run(["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=pwrite64",
                             "-e", "inject=pwrite64:signal=KILL:when=100", sys.executable,
                             "-m", "xenlfs", *argv], env=env, capture_output=True, text=True,
                            check=False)
    assert killed.returncode != 0 and "mkfs.ext4" in killed.stderr, killed.stderr
    assert storage.fs_type(image) is None and storage.unknown_data(image) is not None

    other = xenlfs(*argv[:1], "prepare", "g14", *argv[3:])  # not its mkfs: still asked
    assert other.returncode == 3 and "not without asking" in other.stderr, other.stderr
    again = xenlfs(*argv)  # the very same command, no --yes
    assert again.returncode == 0, again.stderr
    assert "did not finish; making the filesystem again" in again.stderr
    assert storage.fs_type(image) == "ext4"
    assert not Path("/run/xenlfs/mkfs-g13").exists()
    check_clean(image)


def test_preparing_again_needs_no_room_for_a_second_copy(xenlfs, workdir: Path):
    from tests.system.guest.conftest import lfs_tree, snapshot

    archive = snapshot(lfs_tree(workdir / "t", extra_bytes=60 << 20), workdir / "t.tar")
    image = workdir / "g8.img"
    args = ["guest", "prepare", "g8", "--snapshot", str(archive), "--target", str(image)]
    first = xenlfs(*args, "--size", "100M")
    assert first.returncode == 0, first.stderr
    st = os.statvfs
    mnt = workdir / "look"
    mnt.mkdir()
    with loop_over(image) as dev:
        sh("mount", "-o", "ro", dev, mnt)
        free = st(mnt).f_bavail * st(mnt).f_frsize
        sh("umount", mnt)
    assert free < 60 << 20  # a second copy would not fit beside the first
    again = xenlfs(*args)
    assert again.returncode == 0, again.stderr
    check_clean(image)


def test_no_lock_file_is_left_after_a_run(xenlfs, workdir: Path, lfs_snapshot: Path):
    image = workdir / "g9.img"
    result = xenlfs("guest", "prepare", "g9", "--snapshot", str(lfs_snapshot), "--target",
                    str(image), "--size", "100M", "--config-dir", str(workdir / "xen"))
    assert result.returncode == 0, result.stderr
    refused = xenlfs("guest", "prepare", "g9", "--snapshot", str(lfs_snapshot), "--target",
                     "/etc", "--dry-run")
    assert refused.returncode == 3
    assert not list(Path("/run/xenlfs").glob("guest-g9*"))
    assert not [jail for jail in Path("/run/xenlfs").glob("extract-*")  # of dead runs
                if not Path("/proc", jail.name.removeprefix("extract-")).exists()]


def test_an_empty_file_a_run_killed_at_once_left_becomes_the_image(xenlfs, workdir: Path,
                                                                  lfs_snapshot: Path):
    image = workdir / "g10.img"
    image.touch()  # what kill -9 between creating the file and sizing it leaves
    result = prepare(xenlfs, workdir, "g10", "--snapshot", str(lfs_snapshot), "--target",
                     str(image), "--size", "100M")
    assert result.returncode == 0, result.stderr
    assert image.stat().st_size == 100 << 20
    check_clean(image)
    check_mounted(image, "g10", workdir)


def test_an_xl_config_saying_something_else_is_refused_before_anything_is_built(
        xenlfs, workdir: Path, lfs_snapshot: Path):
    cfg = workdir / "xen/g11.cfg"
    cfg.parent.mkdir()
    cfg.write_text("# mine\n")
    image = workdir / "g11.img"
    args = ("g11", "--snapshot", str(lfs_snapshot), "--target", str(image), "--size", "100M")
    refused = prepare(xenlfs, workdir, *args)
    assert refused.returncode == 2 and "--force" in refused.stderr, refused.stderr
    assert not image.exists() and cfg.read_text() == "# mine\n" and our_mounts("g11") == []
    forced = prepare(xenlfs, workdir, *args, "--force")
    assert forced.returncode == 0, forced.stderr
    assert 'name = "g11"' in cfg.read_text() and "updated (backup kept)" in forced.stdout
    assert [b.read_text() for b in cfg.parent.glob("g11.cfg.*.xenlfs-bak")] == ["# mine\n"]
