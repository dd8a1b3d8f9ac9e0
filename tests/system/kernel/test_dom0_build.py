"""Slow tier (CI skips it): the dom0 kernel, defconfig + `kernel fix --role dom0`, built with
its modules. About 18 minutes on 2 cores; cached like the domU kernel afterwards."""

from __future__ import annotations

import pytest

from tests.system.kernel.test_kernel_tree import bzimage_version
from xenlfs.kernel import check, config
from xenlfs.kernel.requirements import Role
from xenlfs.lab import kernels
from xenlfs.settings import default_cache_dir


@pytest.mark.slow
def test_dom0_kernel_from_defconfig_builds_with_its_modules() -> None:
    out = kernels.cached_kernel(default_cache_dir(), Role.DOM0)
    release = (out / "release").read_text().strip()
    assert release == "6.1.192-xen-dom0"
    assert bzimage_version(out / "bzImage").startswith(release + " ")
    built = config.load(out / "config")
    assert not check.failed(check.check(built, Role.DOM0))
    modules = out / "modules/lib/modules" / release
    for module in ("xen-netback.ko", "xen-blkback.ko", "bridge.ko", "xen-privcmd.ko"):
        assert list(modules.rglob(module)), module
