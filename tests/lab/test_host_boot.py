"""Hint step 4 proven: GRUB boots the entry `xenlfs grub add` wrote, and in the lab's dom0
`xenlfs service status` and `bridge status` see what a healthy Xen host has."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import run_xenlfs
from xenlfs import run
from xenlfs.lab import boot, images, tiny
from xenlfs.lab.instance import Lab

# What an LFS user writes by hand before any Xen entry: GRUB talks on the serial line, so
# the lab's serial log shows GRUB's menu too.
HAND_WRITTEN = """\
# Begin /boot/grub/grub.cfg
serial --unit=0 --speed=115200
terminal_input serial
terminal_output serial
set default=0
set timeout=1

menuentry "LFS (without Xen)" {
        linux /boot/vmlinuz-dom0 console=ttyS0
}
"""


def qemu_from_cdrom(argv: list[str], iso: Path) -> list[str]:
    """The lab's QEMU command line with GRUB's disc in place of QEMU's own multiboot loader."""
    out, skip = [], 0
    for i, arg in enumerate(argv):
        if skip:
            skip -= 1
            continue
        if arg in ("-kernel", "-append", "-initrd"):
            skip = 1
            continue
        out.append(arg)
        if i == 0:
            out += ["-cdrom", str(iso), "-boot", "d"]
    return out


@pytest.mark.parametrize("how", ["--default", "--once"])
def test_grub_boots_xen_and_dom0_from_the_entry_xenlfs_wrote(
        lab_artefacts: images.Artefacts, tmp_path: Path, how: str) -> None:
    """--default: Xen is GRUB's default. --once: the hand-written default (which cannot boot
    this dom0: no initramfs) stays, and GRUB's next_entry alone picks Xen. (On the read-only
    disc GRUB's save_env cannot clear next_entry afterwards; it says so and boots on.)"""
    top = tmp_path / "disc"
    (top / "boot/grub").mkdir(parents=True)
    with open(lab_artefacts.xen, "rb") as src, gzip.open(top / "boot/xen.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    shutil.copy(lab_artefacts.dom0_kernel, top / "boot/vmlinuz-dom0")
    shutil.copy(lab_artefacts.dom0_initrd, top / "boot/initrd.img")
    cfg = top / "boot/grub/grub.cfg"
    cfg.write_text(HAND_WRITTEN)

    spec = boot.LabSpec(xen=lab_artefacts.xen, dom0_kernel=lab_artefacts.dom0_kernel,
                        dom0_initrd=lab_artefacts.dom0_initrd, run_dir=tmp_path / "run")
    added = run_xenlfs("grub", "add", "--grub-cfg", str(cfg), "--boot-mount", str(top),
                       "--xen", str(top / "boot/xen.gz"),
                       "--kernel", str(top / "boot/vmlinuz-dom0"),
                       "--initrd", str(top / "boot/initrd.img"),
                       "--xen-args", boot.xen_command_line(spec),
                       "--kernel-args", boot.dom0_command_line(spec), how)
    assert added.returncode == 0, added.stderr
    assert "\tmultiboot /boot/xen.gz placeholder console=com1" in cfg.read_text()

    iso = tmp_path / "boot.iso"
    run.run(["grub-mkrescue", "-o", str(iso), str(top)])
    spec.run_dir.mkdir()
    spec.share.mkdir()
    argv = qemu_from_cdrom(boot.qemu_argv(spec), iso)
    assert "-kernel" not in argv
    with open(spec.qemu_log, "wb") as qemu_log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=qemu_log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    lab = Lab(f"pytest-grub-{os.getpid()}", spec, proc.pid, time.time())
    try:
        watch = boot.wait_ready(proc, spec, timeout=400)
        lab.channel.wait(60)
        serial = spec.serial_log.read_text(errors="replace")
        assert "LFS, Xen" in serial  # GRUB's menu, on the serial line
        info = lab.channel.run(["xl", "info"]).stdout
        xen_cmdline = next(line for line in info.splitlines()
                           if line.startswith("xen_commandline"))
        assert f"dom0_mem={spec.dom0_memory >> 20}M" in xen_cmdline
        assert lab.channel.run(["cat", "/proc/xen/capabilities"]).stdout.strip() == "control_d"
        print(boot.format_phases(watch.phases))
    finally:
        lab.stop()
        proc.wait()


def test_service_and_bridge_status_in_a_real_dom0(lab: Lab) -> None:
    env = lab.install_xenlfs()
    result = lab.channel.run(["python3", "-m", "xenlfs", "service", "status", "--json"],
                             env=env, check=False)
    report = json.loads(result.stdout)
    assert result.returncode == 0 and report["healthy"], result.stdout + result.stderr
    bridge = lab.channel.run(["python3", "-m", "xenlfs", "bridge", "status", "--json"],
                             env=env, check=False)
    state = json.loads(bridge.stdout)
    assert state["exists"] and state["is_bridge"] and state["up"], bridge.stdout


def test_a_guests_vif_joins_the_bridge(lab: Lab, lab_cache_dir: Path) -> None:
    env = lab.install_xenlfs()
    directory, name = "/root/vif-test", "vif-test"
    lab.channel.push(lab.spec.dom0_kernel, f"{directory}/vmlinuz")
    lab.channel.push(tiny.initrd(lab_cache_dir), f"{directory}/initrd.gz")
    cfg = tiny.config(name, f"{directory}/vmlinuz", f"{directory}/initrd.gz")
    lab.channel.run(["sh", "-c", 'cat > "$1"', "cfg", f"{directory}/{name}.cfg"],
                    input=cfg + "vif = ['bridge=xenbr0']\n")
    # Paused: the backend vif exists and xl's hotplug script has put it in the bridge.
    lab.channel.run(["xl", "create", "-p", f"{directory}/{name}.cfg"], timeout=120)
    try:
        result = lab.channel.run(["python3", "-m", "xenlfs", "bridge", "status", "--json"],
                                 env=env, check=False)
        state = json.loads(result.stdout)
        assert result.returncode == 0 and state["healthy"], result.stdout
        assert any(p["name"].startswith("vif") for p in state["ports"]), state["ports"]
    finally:
        lab.channel.run(["xl", "destroy", name], check=False)
