"""The lab's smoke test: a tiny PV guest (dom0's kernel + a busybox initramfs) that prints a
marker on its console, which xenconsoled writes to /var/log/xen/console/guest-NAME.log."""

from __future__ import annotations

import gzip
import os
import shutil
import stat
import time
from pathlib import Path

from xenlfs.digest import file_digest
from xenlfs.errors import XenlfsError
from xenlfs.lab import initramfs
from xenlfs.lab.cache import building, cache_key, lab_cache, locked
from xenlfs.lab.instance import Lab

MARKER = "XENLFS-TINY-GUEST-OK"
INIT = f"""\
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
echo "{MARKER} hypervisor=$(/bin/busybox cat /sys/hypervisor/type 2>/dev/null)"
/bin/busybox sleep 1
/bin/busybox poweroff -f
"""


def initrd(cache_dir: Path) -> Path:
    """A busybox initramfs whose init prints MARKER on the console and powers off; cached."""
    cache = lab_cache(cache_dir)
    inputs = {"init": INIT, "busybox": file_digest(initramfs.busybox())}
    target = cache / f"guest-tiny-{cache_key(inputs)}"
    if (target / "initrd.gz").is_file():
        return target / "initrd.gz"
    with locked(cache), building(target) as work:
        stage = work / "stage"
        for d in ("bin", "dev", "proc", "sys"):
            (stage / d).mkdir(parents=True)
        shutil.copy2(initramfs.busybox(), stage / "bin/busybox")
        (stage / "init").write_text(INIT)
        os.chmod(stage / "init", 0o755)
        os.mknod(stage / "dev/console", 0o600 | stat.S_IFCHR, os.makedev(5, 1))
        initramfs.cpio(stage, work / "initrd.cpio")
        with open(work / "initrd.cpio", "rb") as src, gzip.open(work / "initrd.gz", "wb", 1) as dst:
            shutil.copyfileobj(src, dst)
        (work / "initrd.cpio").unlink()
        shutil.rmtree(stage)
    return target / "initrd.gz"


def config(name: str, kernel: str, ramdisk: str, memory_mb: int = 128) -> str:
    """The xl config of the tiny guest (paths are dom0's)."""
    return (f'name = "{name}"\nkernel = "{kernel}"\nramdisk = "{ramdisk}"\n'
            f'extra = "console=hvc0 quiet cryptomgr.notests"\nmemory = {memory_mb}\nvcpus = 1\n'
            'on_poweroff = "destroy"\non_crash = "destroy"\n')


def console_log(name: str) -> str:
    return f"/var/log/xen/console/guest-{name}.log"


def boot(lab: Lab, cache_dir: Path, name: str = "tiny",
         timeout: float = 120.0) -> tuple[str, float]:
    """`xl create` the tiny guest in the lab; returns its marker line and the seconds from
    `xl create` to the marker appearing in its console log."""
    directory = f"/root/{name}"
    lab.channel.push(lab.spec.dom0_kernel, f"{directory}/vmlinuz")
    lab.channel.push(initrd(cache_dir), f"{directory}/initrd.gz")
    lab.channel.run(["sh", "-c", 'cat > "$1"', "cfg", f"{directory}/{name}.cfg"],
                    input=config(name, f"{directory}/vmlinuz", f"{directory}/initrd.gz"))
    lab.channel.run(["sh", "-c", 'xl destroy "$1" 2>/dev/null; rm -f "$2"', "clean", name,
                     console_log(name)])
    start = time.monotonic()
    lab.channel.run(["xl", "create", f"{directory}/{name}.cfg"], timeout=timeout)
    while True:
        text = lab.channel.run(["cat", console_log(name)], check=False, timeout=30).stdout
        for line in text.splitlines():
            if MARKER in line:
                return line.strip(), time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise XenlfsError(f"the tiny guest's marker did not appear within {timeout:g} s",
                              hint=f"its console log in dom0: {console_log(name)}; last lines:\n"
                              + "\n".join(text.splitlines()[-10:]))
        time.sleep(0.5)
