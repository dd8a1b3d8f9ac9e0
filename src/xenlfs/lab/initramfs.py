"""Packing an initramfs: busybox as the tools (and PID 1), a tree as a newc cpio archive.
dom0's initramfs (dom0_initrd.py) and the tiny guest's (tiny.py) are made this way."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from xenlfs import run
from xenlfs.errors import PreconditionError


def busybox() -> Path:
    found = shutil.which("busybox")
    if found is None:
        raise PreconditionError("busybox is not installed (the lab's dom0 and guests use it)",
                                hint="on Debian: apt-get install busybox-static")
    return Path(found)


def cpio(stage: Path, output: Path) -> None:
    """Pack a tree as a newc cpio archive (what the kernel unpacks as its initramfs)."""
    names = ["."]
    for top, dirs, files in os.walk(stage):
        dirs.sort()
        rel = os.path.relpath(top, stage)
        names.extend(os.path.join(".", rel, n) if rel != "." else f"./{n}"
                     for n in sorted(dirs + files))
    run.run(["cpio", "-o", "-H", "newc", "--quiet", "-O", output.resolve()],
            input="\n".join(names) + "\n", cwd=stage, timeout=600)
