"""The lab's HVM flavour: a dom0 that can run HVM (and PVH) guests, not only PV ones.

An HVM guest is a PC emulated by a device model in dom0: Debian's qemu-system-xen, with
SeaBIOS as its BIOS, loaded by Xen's hvmloader (which the default dom0 leaves out to stay
small: it is kept here) — plus tap devices (tun) for the emulated NIC. PVH guests need none
of these, but the same flavour runs them. The flavour is a set of BuildOptions: its own
cache keys, so the default dom0 stays as small and fast as it was.
"""

from __future__ import annotations

import dataclasses

from xenlfs.doctor import guest_types
from xenlfs.lab import dom0, images, instance

PACKAGES = (*dom0.PACKAGES, "qemu-system-xen", "seabios")
MODULES = (*dom0.MODULES, "tun")
HVMLOADER_DIR = f"usr/lib/xen-{dom0.XEN_SERIES}/boot"
EXCLUDE = (
    *(p for p in dom0.EXCLUDE if p != HVMLOADER_DIR),
    # qemu's firmware for other machines and its GUI: an HVM guest under Xen uses none.
    "usr/share/qemu/edk2-*", "usr/share/qemu/openbios-*", "usr/share/qemu/u-boot*",
    "usr/share/qemu/opensbi-*", "usr/share/qemu/skiboot.lid", "usr/share/qemu/slof.bin",
    "usr/share/qemu/qemu_vga.ndrv", "usr/share/qemu/*.dtb", "usr/share/qemu/s390-*",
    "usr/share/qemu/hppa-firmware.img", "usr/share/icons", "usr/share/applications",
)


def virtualisation(lab: instance.Lab) -> str:
    """What Xen in the lab offers guests, from `xl info` in dom0: 'HVM with HAP',
    'HVM with shadow paging' or why not."""
    result = lab.channel.run(["xl", "info"], check=False, timeout=60)
    if result.returncode != 0:
        return f"unknown: xl info failed ({result.stderr.strip()[:200]})"
    fields = guest_types.xl_info_fields(result.stdout)
    virt = fields.get("virt_caps", "").split()
    if "hvm" not in virt:
        return f"no HVM (virt_caps: {' '.join(virt)}): PV guests only"
    return "HVM and PVH with " + ("HAP" if "hap" in virt else "shadow paging")


def options(base: images.BuildOptions) -> images.BuildOptions:
    """The same lab, with what HVM guests need."""
    return dataclasses.replace(base, packages=PACKAGES, modules=MODULES, exclude=EXCLUDE)
