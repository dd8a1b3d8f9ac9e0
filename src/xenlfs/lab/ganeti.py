"""The lab's Ganeti flavour: a dom0 with Debian's ganeti 3.0, for a single-node cluster whose
instances xenlfs's OS provider installs (issue 21; docs/testing.md "Ganeti in the lab").

Like hvm.py, the flavour is a set of BuildOptions (its own cache keys) plus how to boot it:
dom0's root is its initramfs, in RAM, and Ganeti's daemons need room beside it.
"""

from __future__ import annotations

import dataclasses

from xenlfs.lab import boot, dom0, images, instance

# python3-cffi-backend named: debootstrap's resolver does not follow the virtual
# python3-cffi-backend-api-* that bcrypt, cryptography and nacl need (ganeti stays
# unconfigured without it); zstd: the provider extracts .tar.zst snapshots.
PACKAGES = (*dom0.PACKAGES, "ganeti", "python3-cffi-backend", "zstd")


def options(base: images.BuildOptions) -> images.BuildOptions:
    """The same lab, with Ganeti in dom0."""
    return dataclasses.replace(base, packages=PACKAGES)


def up_options(base: instance.UpOptions) -> instance.UpOptions:
    """dom0 2 GiB (its root in RAM, plus Ganeti's daemons, ~160 MB), the machine 3.5 GiB."""
    return dataclasses.replace(base, memory=3584 * boot.MiB, dom0_memory=2048 * boot.MiB)
