"""Bad input to `guest prepare` is refused before anything is built: no image, no mount, no
file left behind, exit 2 (or 3 for a target it must not touch), never a traceback."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.system.guest.conftest import our_mounts


def prepare(xenlfs, snapshot: Path, target: Path | str, *extra: str, name: str = "v1"):
    return xenlfs("guest", "prepare", name, "--snapshot", str(snapshot), "--target",
                  str(target), *extra)


def refused(result, code: int = 2) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert our_mounts("v1") == []
    return result.stderr


def test_memory_0_is_refused_before_the_image_is_made(xenlfs, workdir: Path,
                                                      lfs_snapshot: Path):
    image = workdir / "m.img"
    err = refused(prepare(xenlfs, lfs_snapshot, image, "--size", "100M", "--memory", "0",
                          "--kernel", "/boot/vmlinuz-domU", "--config-dir",
                          str(workdir / "xen")))
    assert "memory" in err
    assert not image.exists() and not (workdir / "xen").exists()


@pytest.mark.parametrize("size", ["0", "0M"])
def test_size_0_is_refused(xenlfs, workdir: Path, lfs_snapshot: Path, size: str):
    image = workdir / "z.img"
    err = refused(prepare(xenlfs, lfs_snapshot, image, "--size", size))
    assert "--size" in err and not image.exists()


def test_a_size_no_filesystem_can_hold_leaves_nothing_and_the_rerun_works(
        xenlfs, workdir: Path, lfs_snapshot: Path):
    image = workdir / "huge.img"
    err = refused(prepare(xenlfs, lfs_snapshot, image, "--size=100000T"))
    assert "100000T" in err or "100000 TiB" in err or "holds" in err
    assert not image.exists()
    result = prepare(xenlfs, lfs_snapshot, image, "--size", "100M", "--config-dir",
                     str(workdir / "xen"))
    assert result.returncode == 0, result.stderr


def test_size_on_an_existing_image(xenlfs, workdir: Path, lfs_snapshot: Path):
    image = workdir / "e.img"
    first = prepare(xenlfs, lfs_snapshot, image, "--size", "100M")
    assert first.returncode == 0, first.stderr
    before = image.stat()
    err = refused(prepare(xenlfs, lfs_snapshot, image, "--size", "200M"))
    assert "exists" in err and "100 MiB" in err
    assert image.stat().st_size == before.st_size
    same = prepare(xenlfs, lfs_snapshot, image, "--size", "100M")
    assert same.returncode == 0, same.stderr
    assert "already" in same.stderr and "100 MiB" in same.stderr


def test_size_with_a_directory_target_is_refused(xenlfs, workdir: Path, lfs_snapshot: Path):
    target = workdir / "dir"
    target.mkdir()
    refused(prepare(xenlfs, lfs_snapshot, target, "--size", "1G"))
    assert os.listdir(target) == []


SYSTEM_DIRS = ["/", "/etc", "/usr", "/boot", "/var", "/home", "/root", "/tmp", "/dev", "/run",
               "/usr/lib", "/var/lib", "/etc/.."]


@pytest.mark.parametrize("where", SYSTEM_DIRS)
def test_a_host_system_directory_is_refused(xenlfs, lfs_snapshot: Path, where: str):
    if not os.path.isdir(where):
        pytest.skip(f"{where} does not exist here")
    # --dry-run: had the refusal ever gone, this test still changes nothing
    err = refused(prepare(xenlfs, lfs_snapshot, where, "--dry-run"), 3)
    assert "system directory" in err or "running root" in err


def test_a_link_to_a_system_directory_is_refused(xenlfs, workdir: Path, lfs_snapshot: Path):
    os.symlink("/etc", workdir / "innocent")
    refused(prepare(xenlfs, lfs_snapshot, workdir / "innocent", "--dry-run"), 3)


@pytest.mark.parametrize("swap", ["/dev/xvda2\n/dev/xvda1 / ext4 defaults 0 0", "/dev/x y",
                                  "", "xvda2"])
def test_a_swap_device_that_would_break_fstab_is_refused(xenlfs, workdir: Path,
                                                        lfs_snapshot: Path, swap: str):
    target = workdir / "dir"
    target.mkdir()
    err = refused(prepare(xenlfs, lfs_snapshot, target, "--swap", swap))
    assert "--swap" in err and os.listdir(target) == []


@pytest.mark.parametrize("content", [b"\xff\xfe\x00binary\x00", b"ssh-ed25519 AAAA\x00x\n",
                                     b"ssh-ed25519 AAAA\x1b[2Jx\n", b"x" * (1 << 20),
                                     b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n"
                                     b"-----END OPENSSH PRIVATE KEY-----\n"])
def test_an_ssh_key_that_is_no_public_key_is_refused(xenlfs, workdir: Path,
                                                    lfs_snapshot: Path, content: bytes):
    key = workdir / "key"
    key.write_bytes(content)
    target = workdir / "dir"
    target.mkdir()
    err = refused(prepare(xenlfs, lfs_snapshot, target, "--ssh-key", str(key)))
    assert "--ssh-key" in err and os.listdir(target) == []


@pytest.mark.parametrize("special", ["/dev/zero", "fifo", "dir"])
def test_an_ssh_key_that_is_no_file_is_refused_without_hanging(xenlfs, workdir: Path,
                                                              lfs_snapshot: Path, special: str):
    path = special
    if special == "fifo":
        path = str(workdir / "fifo")
        os.mkfifo(path)
    elif special == "dir":
        path = str(workdir)
    target = workdir / "dir-target"
    target.mkdir()
    err = refused(prepare(xenlfs, lfs_snapshot, target, "--ssh-key", path))
    assert "--ssh-key" in err and os.listdir(target) == []


def test_a_directory_with_mounts_inside_is_refused(xenlfs, workdir: Path, lfs_snapshot: Path):
    """A chroot in use, as LFS's own: its dev bound from the host's. The edits (mknod
    dev/console, ...) would land in the host's directory."""
    target = workdir / "chroot"
    (target / "dev").mkdir(parents=True)
    hosts_dev = workdir / "hosts-dev"
    hosts_dev.mkdir()
    subprocess.run(["mount", "--bind", str(hosts_dev), str(target / "dev")], check=True)
    try:
        err = refused(prepare(xenlfs, lfs_snapshot, target), 3)
        assert f"{target}/dev is mounted inside it" in err
        assert os.listdir(hosts_dev) == [] and os.listdir(target) == ["dev"]
    finally:
        subprocess.run(["umount", str(target / "dev")], check=True)


@pytest.mark.parametrize("flag", ["--gateway", "--broadcast"])
def test_an_address_that_would_split_ifconfig_is_refused(xenlfs, workdir: Path,
                                                         lfs_snapshot: Path, flag: str):
    target = workdir / "dir"
    target.mkdir()
    err = refused(prepare(xenlfs, lfs_snapshot, target, "--ip", "10.0.0.2/24", flag,
                          "10.0.0.1\nSERVICE=evil"))
    assert flag in err and os.listdir(target) == []


@pytest.mark.parametrize("iface", ["../../passwd", "eth0\nIP=6.6.6.6", "", "a" * 16])
def test_an_interface_name_that_would_leave_its_file_is_refused(xenlfs, workdir: Path,
                                                                lfs_snapshot: Path, iface: str):
    target = workdir / "dir"
    target.mkdir()
    err = refused(prepare(xenlfs, lfs_snapshot, target, "--iface", iface))
    assert "--iface" in err and os.listdir(target) == []


@pytest.mark.parametrize("where", ["/etc/passwd", "/usr/bin/env", "/etc/new-guest.img"])
def test_a_system_file_is_never_an_image(xenlfs, workdir: Path, lfs_snapshot: Path,
                                         where: str):
    link = workdir / "innocent.img"
    os.symlink(where, link)
    for target in (where, str(link)):
        # --dry-run and --yes: had the refusal ever gone, this still changes nothing
        err = refused(prepare(xenlfs, lfs_snapshot, target, "--size", "100M", "--yes",
                              "--dry-run"), 3)
        assert "a file of the running system" in err
