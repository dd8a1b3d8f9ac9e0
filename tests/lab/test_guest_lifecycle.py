"""Hint step 6 in a real dom0: a guest written by `guest config` is started by `guest create`,
shows in `guest list --json` with its memory, and `guest shutdown --wait` removes it."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import stat
import time
from pathlib import Path

import pytest

from xenlfs.lab import initramfs, tiny
from xenlfs.lab.instance import Lab

MARKER = "XENLFS-LIFECYCLE-GUEST-UP"
# PID 1 stays up; `xl shutdown` makes the guest kernel run /sbin/poweroff, which powers off.
INIT = f"""#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
echo "{MARKER}"
while :; do /bin/busybox sleep 1; done
"""
POWEROFF = "#!/bin/busybox sh\n/bin/busybox poweroff -f\n"
NAME = "xenlfs-lc"


def initrd(directory: Path) -> Path:
    stage = directory / "stage"
    for d in ("bin", "sbin", "dev", "proc"):
        (stage / d).mkdir(parents=True)
    shutil.copy2(initramfs.busybox(), stage / "bin/busybox")
    for path, text in (("init", INIT), ("sbin/poweroff", POWEROFF)):
        (stage / path).write_text(text)
        os.chmod(stage / path, 0o755)
    os.mknod(stage / "dev/console", 0o600 | stat.S_IFCHR, os.makedev(5, 1))
    initramfs.cpio(stage, directory / "initrd.cpio")
    with open(directory / "initrd.cpio", "rb") as src, gzip.open(directory / "initrd.gz",
                                                                  "wb", 1) as dst:
        shutil.copyfileobj(src, dst)
    return directory / "initrd.gz"


def test_a_guest_written_by_config_is_created_listed_and_shut_down(lab: Lab, tmp_path: Path):
    env = lab.install_xenlfs()

    def xenlfs(*args: str, check: bool = True, timeout: float = 300):
        result = lab.channel.run(["python3", "-m", "xenlfs", *args], env=env, check=False,
                                 timeout=timeout)
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        return result

    lab.channel.push(lab.spec.dom0_kernel, "/root/lc/vmlinuz")
    lab.channel.push(initrd(tmp_path), "/root/lc/initrd.gz")
    lab.channel.run(["sh", "-c", 'xl destroy "$1" 2>/dev/null; rm -f "$2"', "clean", NAME,
                     tiny.console_log(NAME)])
    # The hint's disk line, on a loop device standing in for its partition /dev/sdc12
    loop = lab.channel.run(["sh", "-c", "truncate -s 64M /root/lc/disk.img && "
                            "losetup -f --show /root/lc/disk.img"]).stdout.strip()
    xenlfs("guest", "config", NAME, "--kernel", "/root/lc/vmlinuz", "--ramdisk",
           "/root/lc/initrd.gz", "--memory", "128", "--vcpus", "1", "--extra", "console=hvc0",
           "--disk", f"phy:{loop},xvda1,w", "--force")
    checked = json.loads(xenlfs("guest", "check", "--json", f"/etc/xen/{NAME}.cfg").stdout)
    assert checked[0]["ok"] and checked[0]["guest"]["memory"] == 128
    try:
        xenlfs("guest", "create", NAME)
        deadline = time.monotonic() + 120
        while MARKER not in lab.channel.run(["cat", tiny.console_log(NAME)], check=False).stdout:
            assert time.monotonic() < deadline, "the guest did not print its marker"
            time.sleep(0.5)
        listed = {d["name"]: d for d in json.loads(xenlfs("guest", "list", "--json").stdout)}
        assert NAME in listed and "Domain-0" in listed
        assert abs(listed[NAME]["memory"] - 128) <= 2 and listed[NAME]["vcpus"] == 1
        # libxl gave the guest the disk as written: xvda1 (51713), writable, on the loop device
        backend = f"/local/domain/0/backend/vbd/{listed[NAME]['id']}/51713"
        values = lab.channel.run(["sh", "-c", 'for k in params dev mode; do xenstore-read '
                                  '"$1/$k"; done', "read", backend]).stdout.split()
        assert values == [loop, "xvda1", "w"]
        again = xenlfs("guest", "create", NAME, check=False)
        assert again.returncode == 2 and f"{NAME} is already running" in again.stderr
        top = json.loads(xenlfs("guest", "top", "--json").stdout)
        assert NAME in [row["NAME"] for row in top]
        started = time.monotonic()
        xenlfs("guest", "shutdown", NAME, "--wait", "--shutdown-timeout", "90")
        assert time.monotonic() - started < 90
        listed = {d["name"] for d in json.loads(xenlfs("guest", "list", "--json").stdout)}
        assert NAME not in listed
        gone = xenlfs("guest", "destroy", NAME, check=False)
        assert gone.returncode == 2 and f"no running guest named {NAME}" in gone.stderr
    finally:
        lab.channel.run(["xl", "destroy", NAME], check=False)
        lab.channel.run(["losetup", "-d", loop], check=False)


@pytest.mark.parametrize("verb", ["list", "top"])
def test_lifecycle_verbs_work_in_dom0(lab: Lab, verb: str):
    env = lab.install_xenlfs()
    result = lab.channel.run(["python3", "-m", "xenlfs", "guest", verb, "--json"], env=env,
                             check=False)
    assert result.returncode == 0, result.stderr
    assert "Domain-0" in [row.get("name", row.get("NAME")) for row in json.loads(result.stdout)]
