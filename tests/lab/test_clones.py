"""Lab tier, issue 22: three thin clones of one prepared guest running at once under Xen.

The host's kernel here has no device-mapper, so this runs in the lab's dom0 (Debian's 6.1
kernel) booted from the thin flavour (lab/thin.py: lvm2, thin-provisioning-tools,
dm-thin-pool) with one virtio disk as the LVM physical volume. A guest is prepared on a thin
volume, `xenlfs guest clone` makes three thin snapshots of it, and all three boot at the
same time; on each one's console we log in and ask it for its hostname, MAC and machine-id.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lab.test_guest_storage import LVM, StorageLab, _sparse
from xenlfs.lab import apt, demo, dom0, images, instance, kernels, reference, thin
from xenlfs.lab.boot import Disk

VG = "xenlfsthin"
CLONES = ("web1", "web2", "web3")
ADDRESSES = ("192.168.7.11/24", "192.168.7.12/24", "192.168.7.13/24")

# Run in dom0: log in on a guest's hvc0 and print what it says about itself, as JSON.
CLONE_VIEW = """\
import json, sys
from xenlfs.lab.guest_console import Console, console_tty, log_in, run_command
console = Console.open(console_tty(sys.argv[1]))
try:
    log_in(console, "root", sys.argv[2], 300)
    view = {key: run_command(console, command).strip() for key, command in (
        ("hostname", "hostname"), ("mac", "cat /sys/class/net/eth0/address"),
        ("machine_id", "cat /etc/machine-id"),
        ("ifconfig", "cat /etc/sysconfig/ifconfig.eth0"))}
    console.send("exit\\r")
finally:
    console.close()
print(json.dumps(view))
"""


@pytest.fixture(scope="module")
def thin_lab(lab_cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StorageLab]:
    disks = tmp_path_factory.mktemp("thin-disks")
    snapshot = demo.snapshot_of_reference(lab_cache_dir, apt.DEFAULT_MIRROR)
    artefacts = images.build(thin.options(images.BuildOptions(cache_dir=lab_cache_dir)))
    up = instance.UpOptions(name=f"pytest-clones-{os.getpid()}",
                            # a 2 GiB thin pool, then three 400 MiB thick LVs (tsrc, tc1,
                            # tc2) and the pool's metadata: sparse, so room costs nothing
                            disks=(Disk(_sparse(disks / "pv.img", 4 << 30), "pv"),))
    with instance.one_shot(artefacts, up) as lab:
        for path in (snapshot, snapshot.with_name(snapshot.name + ".manifest.jsonl")):
            shutil.copyfile(path, lab.spec.share / path.name)
        yield StorageLab(lab, lab.install_xenlfs(), f"{dom0.SHARE_MOUNT}/{snapshot.name}",
                         lab.channel.disk_device("pv"), ("", ""))  # no md members here


def volume_group(lab: StorageLab) -> None:
    """The VG on the lab's PV, made by the first test that needs it."""
    lab.sh(f"vgs '{LVM}' {VG} >/dev/null 2>&1 || "
           f"(pvcreate '{LVM}' {lab.pv} && vgcreate '{LVM}' {VG} {lab.pv})")


def test_three_thin_clones_run_at_once_each_its_own_machine(thin_lab: StorageLab,
                                                            lab_cache_dir: Path) -> None:
    lab = thin_lab
    volume_group(lab)
    lab.sh(f"modprobe dm-thin-pool && "
           f"lvcreate '{LVM}' --yes --type thin-pool --size 2g --name pool {VG} && "
           f"lvcreate '{LVM}' --yes --thin --virtualsize 1g --name src {VG}/pool")
    lab.lab.channel.push(kernels.cached_domu_kernel(lab_cache_dir), "/root/vmlinuz-domU")
    code, out, err = lab.xenlfs("guest", "prepare", "src", "--snapshot", lab.snapshot,
                                "--target", f"/dev/{VG}/src", "--kernel", "/root/vmlinuz-domU",
                                "--memory", "160", "--vif", "bridge=xenbr0",
                                "--ip", "192.168.7.2/24", "--yes")  # a new thin LV: blank
    assert code == 0, out + err

    code, out, err = lab.xenlfs("guest", "clone", "src", *CLONES, "--dry-run")
    assert code == 0, out + err
    assert "backend: LVM thin snapshot" in out and "lvcreate" in err
    assert not any(name in lab.sh(f"lvs '{LVM}' --noheadings -o lv_name {VG}")
                   for name in CLONES)  # the dry run made none

    started = time.monotonic()
    ips = [arg for address in ADDRESSES for arg in ("--ip", address)]
    code, out, err = lab.xenlfs("guest", "clone", "src", *CLONES, *ips)
    assert code == 0, out + err
    cloning = time.monotonic() - started
    lvs = lab.sh(f"lvs '{LVM}' --noheadings -o lv_name,segtype,origin {VG}")
    for name in CLONES:
        assert re.search(rf"\b{name}\s+thin\s+src\b", lvs), lvs

    macs = {}
    for name in CLONES:
        config = lab.sh(f"cat /etc/xen/{name}.cfg")
        found = re.search(r"mac=(00:16:3e:[0-9a-f:]{8})", config)
        assert found and f"phy:/dev/{VG}/{name},xvda1,w" in config, config
        macs[name] = found[1]
    assert len(set(macs.values())) == len(CLONES)

    try:
        for name in CLONES:  # all three at once
            code, out, err = lab.xenlfs("guest", "create", name)
            assert code == 0, out + err
        code, out, err = lab.xenlfs("guest", "list")
        assert code == 0 and all(name in out for name in CLONES), out + err
        assert "is also" not in err  # no two guests share a MAC, an address or a disk
        code, out, err = lab.xenlfs("guest", "clone", "web1", "web4")
        assert code == 3 and "web1 is running" in err, out + err  # never a running source
        views = {}
        for name in CLONES:
            demo.wait_for_login_prompt(lab.lab, name, timeout=600)
            result = lab.lab.channel.run(["python3", "-c", CLONE_VIEW, name,
                                          reference.ROOT_PASSWORD], env=lab.env,
                                         timeout=600)
            views[name] = json.loads(result.stdout)
        print(f"3 thin clones made in {cloning:.1f} s; seen: {json.dumps(views)}")
        for name, address in zip(CLONES, ADDRESSES, strict=True):
            view = views[name]
            assert view["hostname"] == name
            assert view["mac"] == macs[name]
            assert f"IP={address.split('/')[0]}" in view["ifconfig"]
        assert len({v["machine_id"] for v in views.values()}) == len(CLONES)
    finally:
        for name in CLONES:
            lab.lab.channel.run(["xl", "destroy", name], check=False)
        time.sleep(1)


def test_a_thin_clone_killed_halfway_leaves_no_clone_and_a_rerun_converges(
        thin_lab: StorageLab) -> None:
    """kill -9 the moment the temporary thin snapshot exists (while it is made a machine of
    its own: mounted, edited, unmounted): nothing is named web5 and the temporary LV is left;
    the rerun removes it (and the killed run's mount, if the kill came while mounted), saying
    so, and makes the clone. (Follows the thin test, whose source `src` it clones.)"""
    lab = thin_lab
    mount = "/run/xenlfs/guest-web5"
    temp = f"/dev/mapper/{VG}-xenlfs--clone--tmp--web5"
    killed = lab.lab.channel.run(["sh", "-ec", (
        "setsid python3 -m xenlfs guest clone src web5 >/dev/null 2>&1 & pid=$!; "
        f"for i in $(seq 30000); do test -e {temp} && break; "
        "kill -0 $pid 2>/dev/null || exit 7; sleep 0.005; done; "
        "kill -s KILL -- -$pid; sleep 1; "
        f"lvs '{LVM}' --noheadings -o lv_name {VG}")],
        env=lab.env, timeout=600).stdout.split()
    assert "xenlfs-clone-tmp-web5" in killed and "web5" not in killed, killed
    assert lab.sh("test -e /etc/xen/web5.cfg && echo there || echo none").strip() == "none"
    code, out, err = lab.xenlfs("guest", "clone", "src", "web5")
    assert code == 0, out + err
    assert "left by a clone that was killed" in err
    lvs = lab.sh(f"lvs '{LVM}' --noheadings -o lv_name,segtype,origin {VG}")
    assert re.search(r"\bweb5\s+thin\s+src\b", lvs) and "tmp" not in lvs, lvs
    assert f" {mount} " not in lab.sh("cat /proc/mounts")
    assert f"phy:/dev/{VG}/web5,xvda1,w" in lab.sh("cat /etc/xen/web5.cfg")


def test_a_thick_volume_is_copied_in_full_only_when_asked(thin_lab: StorageLab) -> None:
    lab = thin_lab
    volume_group(lab)
    lab.sh(f"lvcreate '{LVM}' --yes --size 400m --name tsrc {VG}")
    code, out, err = lab.xenlfs("guest", "prepare", "tsrc", "--snapshot", lab.snapshot,
                                "--target", f"/dev/{VG}/tsrc", "--kernel", "/boot/none",
                                "--yes")
    assert code == 0, out + err
    code, out, err = lab.xenlfs("guest", "clone", "tsrc", "tc1")
    assert code == 3, out + err
    assert "linear volume, not a thin one" in err and "full copy of up to 400 MiB" in err
    assert "tc1" not in lab.sh(f"lvs '{LVM}' --noheadings -o lv_name {VG}")
    code, out, err = lab.xenlfs("guest", "clone", "tsrc", "tc1", "--full-copy")
    assert code == 0, out + err
    assert "backend: full copy" in out
    lvs = lab.sh(f"lvs '{LVM}' --noheadings --units m -o lv_name,segtype,lv_size {VG}")
    assert re.search(r"\btc1\s+linear\s+400\.00m", lvs), lvs
    seen = lab.sh(f"mkdir -p /mnt/tc1 && mount -o ro /dev/{VG}/tc1 /mnt/tc1 && "
                  "cat /mnt/tc1/etc/hostname /mnt/tc1/etc/machine-id; umount /mnt/tc1; "
                  f"mount -o ro /dev/{VG}/tsrc /mnt/tc1 && "
                  "(cat /mnt/tc1/etc/machine-id 2>/dev/null || echo none); "
                  "umount /mnt/tc1")
    hostname, clone_id, source_id = seen.split()
    assert hostname == "tc1" and clone_id != source_id
    # kill -9 (its process group: dd too) while dd fills the temporary LV: nothing is named
    # tc2, and a rerun converges
    killed = lab.lab.channel.run(["sh", "-ec", (
        f"setsid python3 -m xenlfs guest clone tsrc tc2 --full-copy >/dev/null 2>&1 & pid=$!; "
        f"for i in $(seq 1200); do lvs '{LVM}' {VG}/xenlfs-clone-tmp-tc2 >/dev/null 2>&1 "
        "&& break; sleep 0.05; done; sleep 1; "
        "python3 -c 'import os, signal, sys; os.killpg(int(sys.argv[1]), signal.SIGKILL)' "
        "$pid; sleep 2; "
        f"lvs '{LVM}' --noheadings -o lv_name {VG}")], env=lab.env, timeout=600).stdout
    assert "xenlfs-clone-tmp-tc2" in killed.split() and "tc2" not in killed.split(), killed
    code, out, err = lab.xenlfs("guest", "clone", "tsrc", "tc2", "--full-copy")
    assert code == 0, out + err
    assert "left by a clone that was killed" in err
    names = lab.sh(f"lvs '{LVM}' --noheadings -o lv_name {VG}").split()
    assert "tc2" in names and "xenlfs-clone-tmp-tc2" not in names, names
