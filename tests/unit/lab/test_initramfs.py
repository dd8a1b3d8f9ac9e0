from __future__ import annotations

import os
from pathlib import Path

from xenlfs.lab import initramfs


def test_cpio_packs_a_tree(tmp_path: Path) -> None:
    stage = tmp_path / "stage"
    (stage / "etc").mkdir(parents=True)
    (stage / "etc/hostname").write_text("dom0\n")
    os.symlink("/bin/busybox", stage / "init")
    initramfs.cpio(stage, tmp_path / "out.cpio")
    data = (tmp_path / "out.cpio").read_bytes()
    assert data.startswith(b"070701")
    assert b"etc/hostname" in data and b"dom0\n" in data and b"TRAILER!!!" in data
