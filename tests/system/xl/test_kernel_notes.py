"""The Xen notes of real kernels: Debian's linux-image (PV and PVH), the lab's tinyconfig
domU (`kernel fix --role domU`: PV only), and `guest check` on the latter as a PVH guest."""

from __future__ import annotations

import glob
from pathlib import Path

import pytest

from xenlfs import run
from xenlfs.lab import apt, kernels
from xenlfs.lab.cache import lab_cache
from xenlfs.settings import default_cache_dir
from xenlfs.xl import kernel_image


@pytest.fixture(scope="module")
def debian_kernel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Debian's own kernel, from the lab's download cache (or apt's), else downloaded."""
    cache = lab_cache(default_cache_dir())
    debs = sorted(glob.glob(f"{cache}/downloads/linux-image-*.deb")
                  + glob.glob("/var/cache/apt/archives/linux-image-6*.deb"))
    if not debs:
        versions = apt.cached_versions(cache)
        debs = [str(apt.download(versions.kernel_package, versions.kernel,
                                 cache / "downloads"))]
    root = tmp_path_factory.mktemp("debian-kernel")
    run.run(["dpkg-deb", "-x", debs[-1], root])
    (image,) = root.glob("boot/vmlinuz-*")
    return image


def test_debian_kernel_boots_as_pv_and_pvh(debian_kernel: Path) -> None:
    image = kernel_image.read(debian_kernel)
    assert image.format == "bzImage" and image.compression is not None
    assert image.pv and image.pvh and image.guest_os() == "linux"


def test_tinyconfig_domU_is_pv_only_and_guest_check_says_so(xenlfs, tmp_path: Path) -> None:
    kernel = kernels.cached_domu_kernel(default_cache_dir())
    image = kernel_image.read(kernel)
    assert image.pv and not image.pvh  # XEN_PVH is only recommended for the hint's PV guest
    cfg = tmp_path / "pvh.cfg"
    cfg.write_text(f'name = "g"\ntype = "pvh"\nkernel = "{kernel}"\nmemory = 256\n')
    result = xenlfs("guest", "check", str(cfg))
    assert result.returncode == 1
    text = " ".join(result.stdout.split())
    assert f"{cfg}:3:10: error: kernel {kernel} cannot boot as PVH" in text
    assert "XEN_ELFNOTE_PHYS32_ENTRY" in text
    assert "xenlfs kernel fix --role domU --type pvh" in text
