from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.lab.test_xen_image import VERSIONS
from xenlfs.lab import apt, cache, dom0, dom0_initrd


def test_dom0_files_are_part_of_the_initramfs_key(monkeypatch: pytest.MonkeyPatch) -> None:
    before = cache.cache_key({"overlay": dom0_initrd.overlay_files()})
    monkeypatch.setattr(dom0, "DOM0_UP", dom0.DOM0_UP + "echo changed\n")
    assert cache.cache_key({"overlay": dom0_initrd.overlay_files()}) != before


def test_dom0_root_keeps_its_cache_directory(tmp_path: Path) -> None:
    # The name a warm cache (CI's) already holds for this root: it is found, not rebuilt.
    assert (dom0_initrd.rootfs_dir(tmp_path, VERSIONS, apt.DEFAULT_MIRROR, dom0.PACKAGES)
            == tmp_path / "rootfs-8cd9b92fa6bac6ad")
