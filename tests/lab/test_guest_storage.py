"""Lab tier, hint step 5 on LVM and md: `xenlfs guest prepare` with real lvm2 and mdadm.

The host's kernel here has no device-mapper, so these run in the lab's dom0 (Debian's 6.1
kernel), booted from a dom0 image with lvm2, mdadm and zstd added, and three virtio disks:
one becomes an LVM physical volume, two an md RAID1. The guest prepared on a new logical
volume then boots under Xen from `phy:/dev/VG/LV` to a login prompt on hvc0.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from xenlfs.lab import apt, demo, dom0, images, instance, kernels
from xenlfs.lab.boot import Disk

VG = "xenlfsvg"
GUEST = "lvguest"
LVM = "--config=activation{udev_sync=0 udev_rules=0} devices{obtain_device_list_from_udev=0}"


@dataclass
class StorageLab:
    lab: instance.Lab
    env: dict[str, str]
    snapshot: str  # its path in dom0
    pv: str
    members: tuple[str, str]

    def sh(self, script: str, *, check: bool = True, timeout: float = 300.0) -> str:
        return self.lab.channel.run(["sh", "-ec", script], check=check,
                                    timeout=timeout).stdout

    def xenlfs(self, *args: str, timeout: float = 900.0) -> tuple[int, str, str]:
        result = self.lab.channel.run(["python3", "-m", "xenlfs", *args], env=self.env,
                                      check=False, timeout=timeout)
        return result.returncode, result.stdout, result.stderr


def _sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)
    return path


@pytest.fixture(scope="module")
def storage(lab_cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[StorageLab]:
    disks = tmp_path_factory.mktemp("storage-disks")
    snapshot = demo.snapshot_of_reference(lab_cache_dir, apt.DEFAULT_MIRROR)
    artefacts = images.build(images.BuildOptions(
        cache_dir=lab_cache_dir, packages=(*dom0.PACKAGES, "lvm2", "mdadm", "zstd"),
        modules=(*dom0.MODULES, "md-mod", "raid1")))
    up = instance.UpOptions(name=f"pytest-storage-{os.getpid()}", disks=(
        Disk(_sparse(disks / "pv.img", 2 << 30), "pv"),
        Disk(_sparse(disks / "md1.img", 64 << 20), "md1"),
        Disk(_sparse(disks / "md2.img", 64 << 20), "md2")))
    with instance.one_shot(artefacts, up) as lab:
        for path in (snapshot, snapshot.with_name(snapshot.name + ".manifest.jsonl")):
            shutil.copyfile(path, lab.spec.share / path.name)
        channel = lab.channel
        yield StorageLab(lab, lab.install_xenlfs(), f"{dom0.SHARE_MOUNT}/{snapshot.name}",
                         channel.disk_device("pv"),
                         (channel.disk_device("md1"),
                          channel.disk_device("md2")))


@pytest.fixture(scope="module")
def volume_group(storage: StorageLab) -> str:
    storage.sh(f"pvcreate '{LVM}' {storage.pv} && vgcreate '{LVM}' {VG} {storage.pv}")
    return VG


def test_dry_run_plans_the_volume_and_creates_nothing(storage: StorageLab,
                                                       volume_group: str) -> None:
    code, out, err = storage.xenlfs("guest", "prepare", GUEST, "--snapshot", storage.snapshot,
                                    "--vg", volume_group, "--size", "1G", "--dry-run")
    assert code == 0, err
    plan = out + err
    assert "lvcreate" in plan and f"--name {GUEST}" in plan and volume_group in plan
    assert "mkfs" in plan
    assert "/dev/xvda1" in plan  # the fstab edit, as a diff
    assert storage.sh(f"lvs '{LVM}' --noheadings -o lv_name {volume_group}").strip() == ""


def test_guest_on_a_new_logical_volume_boots_under_xen(storage: StorageLab, volume_group: str,
                                                        lab_cache_dir: Path) -> None:
    lv = f"/dev/{volume_group}/{GUEST}"
    code, out, err = storage.xenlfs("guest", "prepare", GUEST, "--snapshot", storage.snapshot,
                                    "--vg", volume_group, "--size", "1G", "--yes")
    assert code == 0, out + err
    size = storage.sh(f"lvs '{LVM}' --noheadings --units b --nosuffix -o lv_size "
                      f"{volume_group}/{GUEST}").strip()
    assert int(size) == 1 << 30
    assert storage.sh(f"blkid -o value -s TYPE {lv}").strip() == "ext4"
    seen = storage.sh(f"mkdir -p /mnt/lv && mount -o ro {lv} /mnt/lv && "
                      "grep -v '^#' /mnt/lv/etc/fstab; grep hvc0 /mnt/lv/etc/inittab; "
                      "cat /mnt/lv/etc/hostname; umount /mnt/lv")
    assert "/dev/xvda1" in seen and "agetty --noclear hvc0" in seen and GUEST in seen

    # A second run finds the volume and its filesystem and converges; so does one that
    # names the existing volume as its target.
    for where in (("--vg", volume_group), ("--target", lv)):
        code, out, err = storage.xenlfs("guest", "prepare", GUEST, "--snapshot",
                                        storage.snapshot, *where, "--yes")
        assert code == 0, out + err
    assert storage.sh(f"lvs '{LVM}' --noheadings -o lv_name {volume_group}").split() == [GUEST]

    kernel = kernels.cached_domu_kernel(lab_cache_dir)
    storage.lab.channel.push(kernel, "/root/vmlinuz-domU")
    code, out, err = storage.xenlfs(
        "guest", "config", GUEST, "--kernel", "/root/vmlinuz-domU", "--memory", "256",
        "--disk", f"phy:{lv},xvda1,w", "--root", "/dev/xvda1 ro", "--extra", "console=hvc0",
        "--force")
    assert code == 0, err
    code, out, err = storage.xenlfs("guest", "create", GUEST)
    assert code == 0, out + err
    try:
        demo.wait_for_login_prompt(storage.lab, GUEST, timeout=240)
    finally:
        storage.lab.channel.run(["xl", "destroy", GUEST], check=False)
        time.sleep(1)


def _refused(storage: StorageLab, target: str) -> str:
    before = storage.sh(f"blkid -p -o export {target}", check=False)
    code, out, err = storage.xenlfs("guest", "prepare", "refused", "--snapshot",
                                    storage.snapshot, "--target", target, "--yes")
    assert code == 3, out + err
    assert "Traceback" not in err
    assert storage.sh(f"blkid -p -o export {target}", check=False) == before  # untouched
    return err


def test_a_physical_volume_holding_a_live_volume_is_refused(storage: StorageLab,
                                                            volume_group: str) -> None:
    storage.sh(f"lvcreate '{LVM}' --yes -n held -L 16m {volume_group}")
    assert "held by dm-" in _refused(storage, storage.pv)
    assert "too small" in _refused(storage, f"/dev/{volume_group}/held")


def test_a_bare_physical_volume_is_refused(storage: StorageLab) -> None:
    loop = storage.sh("truncate -s 64M /tmp/pv2.img && losetup -f --show /tmp/pv2.img").strip()
    storage.sh(f"pvcreate '{LVM}' {loop}")
    assert "an LVM physical volume (LVM2_member)" in _refused(storage, loop)


def test_md_members_are_refused_running_or_stopped(storage: StorageLab) -> None:
    first, second = storage.members
    storage.sh("modprobe raid1")
    storage.sh(f"mdadm --create /dev/md0 --run --level=1 --raid-devices=2 --metadata=1.2 "
               f"{first} {second}", timeout=120)
    assert "held by md0" in _refused(storage, first)
    storage.sh("mdadm --stop /dev/md0")
    assert "an md RAID member (linux_raid_member)" in _refused(storage, second)
