"""Everything the lab boots, built once and cached: Xen, the dom0 kernel and dom0 initramfs.

One module per artefact: xen_image.py (Xen), dom0_kernel.py (the dom0 kernel and its
modules), dom0_initrd.py (dom0's root and initramfs); apt.py says which Debian versions they
come from and cache.py keeps them under keys of their inputs. build() puts them together; a
flavour of the lab (hvm.py) is a set of BuildOptions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xenlfs import ui
from xenlfs.digest import file_digest
from xenlfs.errors import UsageError
from xenlfs.lab import dom0
from xenlfs.lab.apt import DEFAULT_MIRROR, cached_versions
from xenlfs.lab.cache import lab_cache, locked
from xenlfs.lab.dom0_initrd import dom0_initrd, rootfs
from xenlfs.lab.dom0_kernel import custom_kernel_modules, kernel_tree, user_kernel
from xenlfs.lab.xen_image import user_xen, xen_image


@dataclass(frozen=True)
class Artefacts:
    """What QEMU boots: a multiboot Xen, the dom0 kernel and its initramfs."""

    xen: Path
    dom0_kernel: Path
    dom0_initrd: Path
    description: Mapping[str, Any]


@dataclass(frozen=True)
class BuildOptions:
    cache_dir: Path
    mirror: str = DEFAULT_MIRROR
    packages: tuple[str, ...] = dom0.PACKAGES
    modules: tuple[str, ...] = dom0.MODULES
    xen: Path | None = None
    dom0_kernel: Path | None = None
    dom0_modules: Path | None = None
    exclude: tuple[str, ...] = dom0.EXCLUDE  # a flavour (lab/hvm.py) keeps more


def build(options: BuildOptions, times: ui.StepTimes | None = None) -> Artefacts:
    """Everything the lab boots, from the cache when the inputs have not changed."""
    cache = lab_cache(options.cache_dir)
    with locked(cache):
        with ui.step("resolve Debian package versions", times):
            versions = cached_versions(cache)
        with ui.step("Xen hypervisor", times):
            xen = (user_xen(cache, options.xen) if options.xen
                   else xen_image(cache, versions))
        with ui.step("dom0 kernel", times):
            kernel: tuple[Path, str] | None
            if options.dom0_kernel is not None:
                if not options.dom0_kernel.is_file():
                    raise UsageError(f"argument --dom0-kernel: {options.dom0_kernel} is not a file")
                vmlinuz = user_kernel(cache, options.dom0_kernel)
                kernel = (custom_kernel_modules(options.dom0_modules, vmlinuz)
                          if options.dom0_modules else None)
                kernel_id = file_digest(options.dom0_kernel)
            else:
                kernel = kernel_tree(cache, versions)
                vmlinuz = kernel[0] / "boot" / f"vmlinux-{kernel[1]}"
                kernel_id = f"{versions.kernel_package}={versions.kernel}"
        with ui.step("dom0 root (debootstrap)", times):
            root = rootfs(cache, versions, options.mirror, options.packages)
        with ui.step("dom0 initramfs", times):
            initrd = dom0_initrd(cache, root, kernel, kernel_id, options.modules,
                                 options.exclude)
    description = {"versions": vars(versions), "xen": str(xen), "dom0_kernel": str(vmlinuz),
                   "dom0_initrd": str(initrd), "initrd_bytes": initrd.stat().st_size}
    return Artefacts(xen, vmlinuz, initrd, description)
