"""What the lab verbs share: the --disk option, the QEMU check and the lab's options built
from the settings (used by commands/lab.py and commands/lab_demo.py)."""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

from xenlfs import run, settings
from xenlfs.commands.parser import ArgumentParser
from xenlfs.errors import ToolMissing, UsageError
from xenlfs.lab import images, instance
from xenlfs.lab.boot import Disk

QEMU = "qemu-system-x86_64"


def add_disk(parser: ArgumentParser) -> None:
    parser.add_argument("--disk", action="append", default=[], metavar="IMAGE[:SERIAL]",
                        help="give dom0 this raw disk image (virtio); SERIAL (default: the "
                        "file's name) finds it in dom0's /sys/block/vd*/serial; repeatable")


def parse_disk(value: str) -> Disk:
    path, _, serial = value.partition(":")
    serial = serial or re.sub(r"[^A-Za-z0-9_.-]", "-", Path(path).name)[:20]
    if not path or not re.fullmatch(r"[A-Za-z0-9_.-]{1,20}", serial):
        raise UsageError(f"argument --disk: bad value {value!r}",
                         hint="IMAGE or IMAGE:SERIAL, SERIAL at most 20 of A-Z a-z 0-9 _ . -")
    if not Path(path).is_file():
        raise UsageError(f"argument --disk: {path} is not a file")
    return Disk(Path(path).resolve(), serial)


def require_qemu() -> None:
    if shutil.which(QEMU) is None:
        raise ToolMissing(f"{QEMU} is not installed; the lab needs it to boot Xen",
                          hint=run.install_hint(QEMU))


def build_options(config: settings.Config) -> images.BuildOptions:
    return images.BuildOptions(cache_dir=config.xenlfs.cache_dir, mirror=config.lab.mirror,
                               xen=config.lab.xen, dom0_kernel=config.lab.dom0_kernel,
                               dom0_modules=config.lab.dom0_modules)


def up_options(args: argparse.Namespace, config: settings.Config) -> instance.UpOptions:
    return instance.UpOptions(name=config.lab.instance, memory=config.lab.memory,
                              dom0_memory=config.lab.dom0_memory,
                              boot_timeout=float(config.lab.boot_timeout),
                              cpu=config.lab.cpu,
                              disks=tuple(parse_disk(d) for d in args.disk))
