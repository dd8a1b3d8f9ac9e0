from __future__ import annotations

import pytest

from xenlfs.doctor import jail


@pytest.mark.parametrize(("reason", "fix"), [
    ("unshare: unshare failed: Operation not permitted", "CAP_SYS_ADMIN"),
    ("unshare: unshare failed: Invalid argument", "CONFIG_NAMESPACES=y"),
    ("mount: /run/xenlfs/extract-1: unknown filesystem type 'tmpfs'.", "CONFIG_TMPFS=y"),
    ("chroot: cannot change root directory to '/x': Something else", "CONFIG_NAMESPACES"),
])
def test_each_reason_gets_its_fix(reason: str, fix: str) -> None:
    assert fix in jail.fix_for(reason)
