"""The lab's thin-provisioning flavour: a dom0 with LVM thin pools, for `guest clone` on thin
snapshots. The host's kernel here has no device-mapper; Debian's dom0 kernel has dm-thin-pool
as a module, and LVM runs thin_check (thin-provisioning-tools) whenever it activates a pool.
A set of BuildOptions, as hvm.py's: its own cache keys, the default dom0 stays small."""

from __future__ import annotations

import dataclasses

from xenlfs.lab import dom0, images

PACKAGES = (*dom0.PACKAGES, "lvm2", "thin-provisioning-tools", "zstd")
# lvcreate --snapshot asks the kernel for the snapshot target even when the origin is thin
# (and the snapshot made is a thin one): without dm-snapshot it refuses.
MODULES = (*dom0.MODULES, "dm-thin-pool", "dm-snapshot")


def options(base: images.BuildOptions) -> images.BuildOptions:
    """The same lab, with what thin pools need."""
    return dataclasses.replace(base, packages=PACKAGES, modules=MODULES)
