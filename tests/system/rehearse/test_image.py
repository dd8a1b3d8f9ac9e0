"""The rehearsal's disk, made for real (sfdisk, mkfs, losetup + partx, tar, grub-install) from
a small host tree, without booting it: the layout, the ids, the files, the copy's changes,
GRUB in the MBR — and the host tree untouched. Dry runs and refusals through the CLI."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from xenlfs.host import grub as host_grub
from xenlfs.rehearse import flow, image, layout
from xenlfs.snapshot import create, formats

pytestmark = [pytest.mark.system]

SRC = Path(__file__).resolve().parents[3] / "src"

ROOT_UUID = "11111111-2222-4333-8444-555555555555"
BOOT_UUID = "66666666-7777-4888-9999-aaaaaaaaaaaa"
FSTAB = f"""\
UUID={ROOT_UUID} /     ext4 defaults 1 1
UUID={BOOT_UUID} /boot ext2 defaults 1 2
LABEL=swap0 swap swap defaults 0 0
proc /proc proc defaults 0 0
"""
ENTRY = host_grub.Entry("xenlfs-xen", "LFS, Xen", "/xen.gz", "/vmlinuz-dom0",
                        "dom0_mem=512M,max:512M", f"root=UUID={ROOT_UUID} ro", False)
GUEST = 'name = "g1"\nmemory = 64\nvif = ["bridge=xenbr0"]\n'


@pytest.fixture
def host_tree() -> Iterator[Path]:
    top = Path(tempfile.mkdtemp(prefix="xenlfs-rehearse-", dir="/var/tmp"))
    root = top / "root"
    for rel, text in {"etc/fstab": FSTAB, "etc/inittab": "id:3:initdefault:\n",
                      "etc/xen/auto/g1.cfg": GUEST, "boot/xen.gz": "not really xen\n",
                      "boot/vmlinuz-dom0": "kernel\n", "usr/bin/hello": "#!/bin/sh\n"}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "etc/rc.d/init.d").mkdir(parents=True)
    (root / "boot/grub").mkdir()
    (root / "boot/grub/grub.cfg").write_text(host_grub.plan_add("set timeout=5\n", ENTRY, True))
    # A symlink out of the tree must not lead the rehearsal to the build machine's files.
    os.symlink("/etc/passwd", root / "etc/xen/auto/evil.cfg")
    yield root
    shutil.rmtree(top, ignore_errors=True)


def snapshot_of(root: Path) -> dict[str, tuple[int, int, bytes]]:
    found = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        data = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
        found[str(path.relative_to(root))] = (st.st_mode, st.st_mtime_ns, data)
    return found


def test_the_copy_mirrors_the_host_and_only_the_copy_changes(host_tree, tmp_path):
    before = snapshot_of(host_tree)
    request = flow.Request("root", host_tree, tmp_path)
    files = flow.read_tree(host_tree, ())
    assert list(files.guest_configs) == ["/etc/xen/auto/g1.cfg"]  # evil.cfg leads out: skipped
    plan = flow.plan(request, files)
    assert [(v.mountpoint, v.number) for v in plan.layout.volumes] == \
        [("/boot", 1), ("/", 2), ("swap", 3)]
    assert plan.bridges == ("xenbr0",) and [g.name for g in plan.guests] == ["g1"]
    work = Path(tempfile.mkdtemp(dir="/var/tmp"))
    try:
        found = flow.contents(plan, work)
        assert [(c.archive, c.tree) for c in found] == [(None, host_tree)]  # streamed in
        sizes = image.content_sizes(found, ["/", "/boot"])
        assert sizes["/boot"] > 0 and sizes["/"] > sizes["/boot"]
        # The tree's files as snapshot create archives them: the same sizes from the
        # archive's manifest (no decompression) and from tar's listing of it.
        archive = work / "host.tar.zst"
        create.create(create.Request(host_tree, archive, formats.by_name("zstd"),
                                     includes=("/boot",)))
        assert image.content_sizes([image.Content(archive, "/")], ["/", "/boot"]) == sizes
        listed = work / "listed"
        listed.mkdir()
        os.link(archive, listed / archive.name)
        assert image.content_sizes([image.Content(listed / archive.name, "/")],
                                   ["/", "/boot"]) == sizes
        archive.unlink()
        plan = dataclasses.replace(plan, layout=layout.with_sizes(plan.layout, sizes))
        disk = work / "host.img"
        image.build(plan.layout, found, disk, Path(f"/run/xenlfs/test-{os.getpid()}"),
                    lambda top: flow.change_copy(plan, top))
        assert snapshot_of(host_tree) == before  # the host is read, never written
        with image.attached(disk) as loop:
            ids = {n: subprocess.run(["blkid", "-o", "export", f"{loop}p{n}"],
                                     capture_output=True, text=True).stdout for n in (1, 2, 3)}
            assert f"UUID={BOOT_UUID}" in ids[1] and "TYPE=ext2" in ids[1]
            assert f"UUID={ROOT_UUID}" in ids[2] and "TYPE=ext4" in ids[2]
            assert "LABEL=swap0" in ids[3] and "TYPE=swap" in ids[3]
            mnt = work / "mnt"
            mnt.mkdir()
            subprocess.run(["mount", "-o", "ro", f"{loop}p1", mnt], check=True)
            try:  # /boot's files on the boot partition, with the copy's grub.cfg and GRUB
                assert (mnt / "xen.gz").read_text() == "not really xen\n"
                cfg = (mnt / "grub/grub.cfg").read_text()
                assert cfg == plan.grub_after and "console=com1" in cfg
                assert (mnt / "grub/i386-pc/normal.mod").is_file()
            finally:
                subprocess.run(["umount", mnt], check=True)
            subprocess.run(["mount", "-o", "ro", f"{loop}p2", mnt], check=True)
            try:
                assert (mnt / "usr/bin/hello").is_file() and not (mnt / "boot/xen.gz").exists()
                probe = mnt / "etc/rc.d/init.d/xenlfs-rehearse"
                assert os.access(probe, os.X_OK) and "g1:/etc/xen/auto/g1.cfg" in \
                    probe.read_text()
                assert os.readlink(mnt / "etc/rc.d/rc3.d/S99xenlfs-rehearse") == \
                    "../init.d/xenlfs-rehearse"
                assert subprocess.run(["sh", "-n", probe]).returncode == 0
            finally:
                subprocess.run(["umount", mnt], check=True)
            with open(loop, "rb") as f:
                mbr = f.read(512)
            assert b"GRUB" in mbr
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_logical_partitions_are_made_with_the_hosts_numbers(host_tree, tmp_path):
    # / on the second logical partition: the kernel must see it as vda6 in the copy too.
    (host_tree / "etc/fstab").write_text("/dev/vda1 /boot ext2 defaults 1 2\n"
                                         "/dev/vda6 /     ext4 defaults 1 1\n")
    plan = flow.plan(flow.Request("root", host_tree, tmp_path), flow.read_tree(host_tree, ()))
    assert plan.layout.extended == 4
    work = Path(tempfile.mkdtemp(dir="/var/tmp"))
    try:
        found = flow.contents(plan, work)
        sizes = image.content_sizes(found, ["/", "/boot"])
        plan = dataclasses.replace(plan, layout=layout.with_sizes(plan.layout, sizes))
        disk = work / "host.img"
        image.build(plan.layout, found, disk, Path(f"/run/xenlfs/test-{os.getpid()}"),
                    lambda top: flow.change_copy(plan, top))
        dump = json.loads(subprocess.run(["sfdisk", "--json", disk], capture_output=True,
                                         text=True, check=True).stdout)
        kinds = {int(p["node"].removeprefix(str(disk))): p["type"]
                 for p in dump["partitiontable"]["partitions"]}
        assert kinds == {1: "83", 4: "5", 5: "83", 6: "83"}
        with image.attached(disk) as loop:
            def blkid(n: int) -> str:
                return subprocess.run(["blkid", "-o", "export", f"{loop}p{n}"],
                                      capture_output=True, text=True).stdout
            assert "TYPE=ext2" in blkid(1) and "TYPE=ext4" in blkid(6)
            assert "TYPE=" not in blkid(5)  # the number the host uses elsewhere: kept, empty
            mnt = work / "mnt"
            mnt.mkdir()
            subprocess.run(["mount", "-o", "ro", f"{loop}p6", mnt], check=True)
            try:
                assert (mnt / "usr/bin/hello").is_file()
            finally:
                subprocess.run(["umount", mnt], check=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_the_running_root_is_planned_from_the_devices_it_has_mounted(host_tree, tmp_path):
    """The default (no --root, no --snapshot): the running host, its /boot really mounted from
    partition 3 of a disk, seen in a private mount namespace (the build machine's own mounts
    are not touched). The plan takes the number, type and label from that device."""
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"")
    os.truncate(disk, 48 << 20)
    subprocess.run(["sfdisk", "--quiet", disk], input="label: dos\n"
                   f"{disk}3 : start=2048, size=65536, type=83\n", text=True, check=True)
    (tmp_path / "fstab").write_text(f"UUID={ROOT_UUID} / ext4 defaults 1 1\n"
                                    f"UUID={BOOT_UUID} /boot auto defaults 1 2\n")
    with image.attached(disk) as loop:
        subprocess.run(["mkfs.ext3", "-q", "-U", BOOT_UUID, "-L", "lfsboot", f"{loop}p3"],
                       check=True)
        script = (f"mount {loop}p3 /boot && mkdir -p /boot/grub && "
                  f"cp {host_tree / 'boot/grub/grub.cfg'} /boot/grub/ && "
                  f"mount --bind {tmp_path / 'fstab'} /etc/fstab && "
                  f"exec {sys.executable} -m xenlfs --cache-dir {tmp_path / 'cache'} rehearse "
                  "--dry-run --json")
        result = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                 script], capture_output=True, text=True,
                                env={**os.environ, "PYTHONPATH": str(SRC)})
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["source"] == {"kind": "running", "path": "/"}
    volumes = {v["mountpoint"]: v for v in data["layout"]["volumes"]}
    # By fstab alone /boot would be partition 1 of type "auto"; the mounted device says 3.
    assert (volumes["/boot"]["number"], volumes["/boot"]["fstype"],
            volumes["/boot"]["label"], volumes["/boot"]["uuid"]) == (3, "ext3", "lfsboot",
                                                                    BOOT_UUID)
    assert volumes["/"]["number"] == 1 and data["entry"]["id"] == "xenlfs-xen"
    assert not (tmp_path / "cache").exists()  # a dry run makes nothing


def test_dry_run_prints_the_plan_and_writes_nothing(host_tree, xenlfs, tmp_path):
    before = snapshot_of(host_tree)
    result = xenlfs("--cache-dir", str(tmp_path), "rehearse", "--root", str(host_tree),
                    "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "/dev/vda1        /boot" in result.stdout and "console=hvc0" in result.stdout
    assert "qemu-system-x86_64" in result.stdout and "guest g1 login prompt" in result.stdout
    data = json.loads(xenlfs("--cache-dir", str(tmp_path), "rehearse", "--root",
                             str(host_tree), "--dry-run", "--json").stdout)
    assert data["plan_only"] and data["layout"]["bus"] == "virtio"
    assert snapshot_of(host_tree) == before and list(tmp_path.iterdir()) == []


def test_several_xen_entries_need_entry(host_tree, xenlfs, tmp_path):
    cfg = host_tree / "boot/grub/grub.cfg"
    second = host_grub.Entry("xenlfs-xen2", "LFS, Xen 2", "/xen.gz", "/vmlinuz-dom0")
    cfg.write_text(host_grub.with_entry(cfg.read_text(), second))
    result = xenlfs("rehearse", "--root", str(host_tree), "--dry-run")
    assert result.returncode == 2 and "several Xen entries" in result.stderr
    assert "xenlfs-xen2" in result.stderr
    chosen = xenlfs("rehearse", "--root", str(host_tree), "--dry-run", "--entry", "LFS, Xen 2")
    assert chosen.returncode == 0 and "'LFS, Xen 2' (xenlfs-xen2)" in chosen.stdout


def test_no_grub_cfg_is_a_precondition(host_tree, xenlfs):
    (host_tree / "boot/grub/grub.cfg").unlink()
    result = xenlfs("rehearse", "--root", str(host_tree), "--dry-run")
    assert result.returncode == 3 and "grub.cfg cannot be read" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_snapshot_without_boot_says_how_to_make_one(host_tree, xenlfs, tmp_path):
    archive = tmp_path / "host.tar.zst"
    made = xenlfs("snapshot", "create", "--root", str(host_tree), str(archive))
    assert made.returncode == 0, made.stderr
    result = xenlfs("rehearse", "--snapshot", str(archive), "--dry-run")
    assert result.returncode == 3 and "--include /boot" in result.stderr
    with_boot = tmp_path / "host-boot.tar.zst"
    assert xenlfs("snapshot", "create", "--root", str(host_tree), "--include", "/boot",
                  str(with_boot)).returncode == 0
    planned = xenlfs("rehearse", "--snapshot", str(with_boot), "--dry-run")
    assert planned.returncode == 0, planned.stderr
    assert "rehearse the snapshot" in planned.stdout and "guest g1" in planned.stdout


def test_hostile_config_files_are_not_followed_or_read(host_tree, xenlfs):
    fstab = host_tree / "etc/fstab"
    fstab.unlink()
    os.mkfifo(fstab)  # reading it would block for ever
    result = xenlfs("rehearse", "--root", str(host_tree), "--dry-run")
    assert result.returncode == 3 and "etc/fstab cannot be read" in result.stderr
    fstab.unlink()
    fstab.symlink_to("/etc/fstab")  # absolute: inside the tree, which has none
    result = xenlfs("rehearse", "--root", str(host_tree), "--dry-run")
    assert result.returncode == 3 and "etc/fstab cannot be read" in result.stderr
    fstab.unlink()
    os.symlink("/dev/zero", fstab)
    assert xenlfs("rehearse", "--root", str(host_tree), "--dry-run").returncode == 3


def _fds() -> list[str]:
    return sorted(os.listdir("/proc/self/fd"))


def _no_producer_left() -> bool:
    return not any(t.name.startswith("snapshot ") for t in threading.enumerate())


def test_copy_tree_a_failing_reader_stops_the_producer_and_its_error_is_raised(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "big").write_bytes(os.urandom(4 << 20))  # more than a pipe holds: tar waits
    dest = tmp_path / "dest"
    dest.write_text("a file, not a directory\n")  # extraction cannot make it its root
    before = _fds()
    with pytest.raises(Exception) as raised:
        image.copy_tree(tree, [], dest, "/")
    # The reader's own failure, not the broken pipe the producer saw after it.
    assert "Broken pipe" not in str(raised.value)
    assert isinstance(raised.value, OSError) and raised.value.errno == 17, raised.value
    assert _fds() == before and _no_producer_left()


def test_copy_tree_a_failing_producer_is_the_error_raised(tmp_path):
    before = _fds()
    with pytest.raises(Exception) as raised:
        image.copy_tree(tmp_path / "no-such-tree", [], tmp_path / "dest", "/")
    # What went wrong is the tree, not the empty stream the reader was left with.
    assert "no-such-tree" in str(raised.value), raised.value
    assert "not a whole archive" not in str(raised.value)
    assert _fds() == before and _no_producer_left()
