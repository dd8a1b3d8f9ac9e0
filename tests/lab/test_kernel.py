"""The domU kernel `xenlfs kernel fix --role domU` makes from tinyconfig boots as a PV guest
of the lab's Xen: no initramfs, root on /dev/xvda1 (ext4), console on hvc0, to a login prompt.

The root is a small ext4 image with busybox (init, getty) — the kernel is what is tested.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from xenlfs.kernel.requirements import Role
from xenlfs.lab import images, initramfs, instance, kernels
from xenlfs.lab.instance import Lab, UpOptions

NAME = "kernel-domu"
MARKER = "XENLFS-DOMU-KERNEL"
RC = f"""\
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox hostname domu
echo "{MARKER} $(/bin/busybox uname -r) $(/bin/busybox awk '$2 == "/" {{print $1, $3}}' \
/proc/mounts) $(/bin/busybox cat /proc/cmdline)"
"""
INITTAB = """\
::sysinit:/etc/rc
hvc0::respawn:/bin/busybox getty -L 0 hvc0 vt100
"""


def root_image(directory: Path) -> Path:
    stage = directory / "root"
    for d in ("bin", "sbin", "dev", "proc", "sys", "etc", "root", "tmp"):
        (stage / d).mkdir(parents=True)
    shutil.copy2(initramfs.busybox(), stage / "bin/busybox")
    os.symlink("../bin/busybox", stage / "sbin/init")
    os.symlink("busybox", stage / "bin/sh")
    (stage / "etc/inittab").write_text(INITTAB)
    (stage / "etc/rc").write_text(RC)
    os.chmod(stage / "etc/rc", 0o755)
    (stage / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    image = directory / "root.img"
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "domu-root", "-d", str(stage), str(image),
                    "32M"], check=True)
    return image


def test_the_domU_kernel_boots_to_a_login_prompt(lab: Lab, lab_cache_dir: Path,
                                                  tmp_path: Path) -> None:
    kernel = kernels.cached_domu_kernel(lab_cache_dir)
    release = (kernel.parent / "release").read_text().strip()
    directory = f"/root/{NAME}"
    lab.channel.push(kernel, f"{directory}/bzImage")
    lab.channel.push(root_image(tmp_path), f"{directory}/root.img")
    cfg = (f'name = "{NAME}"\nkernel = "{directory}/bzImage"\nmemory = 128\nvcpus = 1\n'
           f'disk = [ "format=raw, vdev=xvda1, access=rw, target={directory}/root.img" ]\n'
           'extra = "root=/dev/xvda1 rw console=hvc0"\non_crash = "destroy"\n')
    lab.channel.run(["sh", "-c", 'cat > "$1"', "cfg", f"{directory}/{NAME}.cfg"], input=cfg)
    log = f"/var/log/xen/console/guest-{NAME}.log"
    lab.channel.run(["sh", "-c", 'xl destroy "$1" 2>/dev/null; rm -f "$2"', "clean", NAME, log])
    lab.channel.run(["xl", "create", f"{directory}/{NAME}.cfg"], timeout=60)
    try:
        deadline, text = time.monotonic() + 120, ""
        while time.monotonic() < deadline and "login:" not in text:
            time.sleep(1)
            text = lab.channel.run(["cat", log], check=False, timeout=30).stdout
        # Our kernel, root mounted from xvda1 as ext4 by the kernel itself: no initramfs.
        assert f"{MARKER} {release} /dev/root ext4 root=/dev/xvda1" in text, text[-3000:]
        assert "domu login:" in text, text[-3000:]
    finally:
        lab.channel.run(["xl", "destroy", NAME], check=False)


@pytest.mark.slow
def test_the_dom0_kernel_boots_as_the_labs_dom0(lab_cache_dir: Path) -> None:
    """Slow tier: `kernel fix --role dom0` from defconfig, built, booted as the lab's dom0."""
    out = kernels.cached_kernel(lab_cache_dir, Role.DOM0)
    release = (out / "release").read_text().strip()
    artefacts = images.build(images.BuildOptions(cache_dir=lab_cache_dir,
                                                 dom0_kernel=out / "bzImage",
                                                 dom0_modules=out / "modules"))
    with instance.one_shot(artefacts, UpOptions(name=f"pytest-dom0-kernel-{os.getpid()}")) as lab:
        assert lab.channel.run(["uname", "-r"]).stdout.strip() == release
        assert lab.channel.run(["cat", "/proc/xen/capabilities"]).stdout.strip() == "control_d"
        assert "Domain-0" in lab.channel.run(["xl", "list"]).stdout
