from __future__ import annotations

from pathlib import Path

from tests.unit.lab.test_xen_image import VERSIONS
from xenlfs.lab import apt, boot, dom0, dom0_initrd, ganeti, images, instance


def test_the_flavour_adds_ganeti_and_keeps_the_default_lab_as_it_was(tmp_path: Path) -> None:
    base = images.BuildOptions(cache_dir=tmp_path)
    flavour = ganeti.options(base)
    assert flavour.packages[:len(dom0.PACKAGES)] == dom0.PACKAGES
    assert {"ganeti", "python3-cffi-backend", "zstd"} <= set(flavour.packages)
    assert (flavour.modules, flavour.exclude) == (base.modules, base.exclude)
    # Its own root, under its own key: the default dom0's cache entry is untouched.
    assert (dom0_initrd.rootfs_dir(tmp_path, VERSIONS, apt.DEFAULT_MIRROR, flavour.packages)
            != dom0_initrd.rootfs_dir(tmp_path, VERSIONS, apt.DEFAULT_MIRROR, base.packages))
    up = ganeti.up_options(instance.UpOptions(name="g"))
    assert (up.name, up.dom0_memory, up.memory) == ("g", 2048 * boot.MiB, 3584 * boot.MiB)
