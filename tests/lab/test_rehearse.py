"""`xenlfs rehearse` boots the reference host (an LFS-style Xen host with a separate /boot,
UUID= in fstab and on the kernel line, one guest in /etc/xen/auto) through GRUB and its Xen
entry, and five broken copies of it, each reported with the right phase and fix.

One boot per case (a boot is 1-3 minutes of TCG); the good host's result is shared by the
tests that look at it. Broken hosts are the reference host seen through an overlay with one
change, so the cached tree itself is never modified.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from xenlfs.lab import host as reference
from xenlfs.lab import kernels

pytestmark = [pytest.mark.lab]


@pytest.fixture(scope="module")
def ref_host(lab_cache_dir: Path) -> reference.Host:
    return reference.reference_host(lab_cache_dir)


def tree_digest(root: Path) -> str:
    """Every name, type, mode, owner, mtime, link target and file content under root."""
    digest = hashlib.sha256()
    for top, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            path = os.path.join(top, name)
            st = os.lstat(path)
            digest.update(f"{os.path.relpath(path, root)}\0{st.st_mode}\0{st.st_uid}\0"
                          f"{st.st_gid}\0{st.st_mtime_ns}\0{st.st_size}\0".encode())
            if os.path.islink(path):
                digest.update(os.readlink(path).encode())
            elif os.path.isfile(path):
                with open(path, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        digest.update(block)
    return digest.hexdigest()


def rehearse(root: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    # Deadlines doubled: lab tests share two cores with other work.
    result = subprocess.run([sys.executable, "-m", "xenlfs", "rehearse", "--root", str(root),
                             "--json", "--deadline-scale", "2", *args], capture_output=True,
                            text=True, timeout=1500)
    try:
        data = json.loads(result.stdout)
    except ValueError:
        pytest.fail(f"no JSON report (exit {result.returncode}):\n{result.stderr[-3000:]}")
    return result, data


@pytest.fixture(scope="module")
def good(ref_host: reference.Host) -> tuple[subprocess.CompletedProcess[str], dict[str, Any],
                                            str, str]:
    before = tree_digest(ref_host.root)
    result, data = rehearse(ref_host.root)
    return result, data, before, tree_digest(ref_host.root)


def test_reference_host_passes_every_phase_to_the_guest_login(good):
    result, data, _, _ = good
    assert result.returncode == 0, json.dumps(data.get("failure"), indent=2) + result.stderr[-3000:]
    assert data["ok"] and data["failure"] is None
    keys = [p["phase"] for p in data["phases"]]
    assert keys[:3] == ["grub", "xen", "dom0_load"] and keys[-2:] == ["bridge:xenbr0",
                                                                       "guest:guest1"]
    assert all(p["status"] in ("passed", "implied") for p in data["phases"])
    # Each of these is seen on the serial console itself, with its time.
    seen = {p["phase"]: p["at"] for p in data["phases"] if p["status"] == "passed"}
    for key in ("grub", "xen", "init", "xencommons", "control_d", "xl", "guest:guest1"):
        assert isinstance(seen.get(key), float), key
    # The real LFS bootscripts ran, none failed.
    names = " ".join(what for what, _ in [(b["what"], b["status"]) for b in data["bootscripts"]])
    assert "Mounting virtual file systems" in names and "xenstored" in names
    assert [b for b in data["bootscripts"] if b["status"] == "FAIL"] == []


def test_separate_boot_and_uuids_are_mirrored(good):
    _, data, _, _ = good
    volumes = {v["mountpoint"]: v for v in data["layout"]["volumes"]}
    assert volumes["/boot"]["uuid"] == reference.BOOT_UUID and volumes["/boot"]["number"] == 1
    assert volumes["/"]["uuid"] == reference.ROOT_UUID and volumes["/"]["device"] == "/dev/vda2"
    root = next(p for p in data["phases"] if p["phase"] == "root")
    assert "EXT4-fs (vda2)" in root["line"], root  # the kernel mounted it by its UUID
    assert data["entry"]["id"] == "xenlfs-xen" and data["entry"]["xen"].startswith("/xen-")
    assert any("copy only" in c or "grub.cfg" in c for c in data["copy_changes"])


def test_the_host_is_never_written(good):
    _, _, before, after = good
    assert before == after


@pytest.mark.parametrize(("bus", "root_device"), [("ahci", "sda2"), ("nvme", "nvme0n1p2")])
def test_other_disk_buses_give_their_device_names(ref_host, bus, root_device):
    # fstab and the kernel line name / by UUID, so the host boots from any bus; the kernel
    # must see the copy's disk under the name that bus gives (the initramfs has ahci, nvme).
    # The disk is proven once dom0 runs from it with its toolstack; the guest after that is
    # the good host's test (on a loaded machine its hotplug scripts can pass libxl's timeout).
    result, data = rehearse(ref_host.root, "--bus", bus)
    volumes = {v["mountpoint"]: v for v in data["layout"]["volumes"]}
    assert volumes["/"]["device"] == f"/dev/{root_device}"
    phases = {p["phase"]: p for p in data["phases"]}
    keys = list(phases)
    assert all(phases[k]["status"] in ("passed", "implied") for k in keys[:keys.index("xl") + 1]), \
        json.dumps(data.get("failure"), indent=2) + result.stderr[-3000:]
    assert result.returncode == 0 or data["failure"]["phase"].startswith("guest:")
    root = phases["root"]
    assert root["status"] == "passed" and f"EXT4-fs ({root_device})" in root["line"], root


@contextlib.contextmanager
def broken(ref_host: reference.Host, tmp_path: Path,
           change: Callable[[Path], None]) -> Iterator[Path]:
    """The reference host with one change, through an overlay (the cache stays as it is)."""
    upper, work, merged = tmp_path / "upper", tmp_path / "work", tmp_path / "merged"
    for d in (upper, work, merged):
        d.mkdir()
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={ref_host.root},upperdir={upper},workdir={work}", str(merged)],
                   check=True)
    try:
        change(merged)
        yield merged
    finally:
        subprocess.run(["umount", str(merged)], check=True)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert re.search(old, text), f"{old!r} not in {path}"
    path.write_text(re.sub(old, new, text))


def grub_cfg(root: Path) -> Path:
    return root / "boot/grub/grub.cfg"


def xen_path_for_wrong_fs(root: Path) -> None:
    edit(grub_cfg(root), r"multiboot /xen-", "multiboot /boot/xen-")


def kernel_without_dom0(root: Path) -> None:
    # The lab's domU kernel: built for Xen guests (kernel fix --role domU), not for dom0.
    domu = kernels.cached_domu_kernel(Path(os.environ.get("XENLFS_CACHE_DIR") or
                                                "/var/cache/xenlfs"))
    shutil.copy(domu, root / "boot/vmlinuz-domU")
    edit(grub_cfg(root), r"module /vmlinuz-\S+", "module /vmlinuz-domU")


def root_device_unseen(root: Path) -> None:
    edit(grub_cfg(root), r"root=UUID=\S+", "root=/dev/sda2")


def xencommons_missing(root: Path) -> None:
    for path in [root / "etc/rc.d/init.d/xencommons",
                 *(root / "etc/rc.d").glob("rc?.d/[SK]??xencommons")]:
        path.unlink()


def guest_disk_missing(root: Path) -> None:
    edit(root / "etc/xen/auto/guest1.cfg", r"/var/lib/xen/images/guest1\.img",
         "/var/lib/xen/images/guest1-missing.img")


CASES = {
    "a-xen-path": (xen_path_for_wrong_fs, "xen", ["/boot is a separate partition",
                                                  "xenlfs grub add"]),
    "b-no-dom0": (kernel_without_dom0, "dom0_kernel", ["xenlfs kernel check --role dom0"]),
    "c-root": (root_device_unseen, "root", ["/dev/sda2", f"UUID={reference.ROOT_UUID}"]),
    "d-xencommons": (xencommons_missing, "xencommons", ["xenlfs service install"]),
    "e-guest-disk": (guest_disk_missing, "guest:guest1", ["guest1-missing.img",
                                                         "xenlfs guest prepare"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_broken_host_is_diagnosed(case, ref_host, tmp_path):
    change, phase, words = CASES[case]
    with broken(ref_host, tmp_path, change) as root:
        result, data = rehearse(root)
    assert result.returncode == 1, result.stderr[-3000:]
    # A failed rehearsal keeps its logs for the user; the test's are not needed after it.
    assert data["serial_log"] and Path(data["serial_log"]).is_file()
    shutil.rmtree(Path(data["serial_log"]).parent, ignore_errors=True)
    failure = data["failure"]
    assert failure is not None and failure["phase"] == phase, json.dumps(failure, indent=2)
    said = failure["diagnosis"] + " " + failure["fix"]
    for word in words:
        assert word in said, json.dumps(failure, indent=2)
    assert failure["lines"], "the serial log lines that show it"
