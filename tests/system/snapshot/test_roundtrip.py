"""create → extract with plain GNU tar → the trees are identical in content and metadata."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.system.snapshot.tree import differences
from xenlfs.snapshot import extract


@pytest.mark.parametrize("suffix", [".tar.zst", ".tar.gz", ".tar.xz", ".tar"])
def test_every_entry_type_survives_plain_gnu_tar(xenlfs, tree: Path, workdir: Path,
                                                 suffix: str):
    archive = workdir / f"snap{suffix}"
    result = xenlfs("snapshot", "create", "--root", str(tree), str(archive))
    assert result.returncode == 0, result.stderr
    assert archive.is_file()
    assert os.stat(archive).st_mode & 0o777 == 0o600  # it holds /etc/shadow
    restored = workdir / "plain"
    restored.mkdir()
    # what a user does by hand, with no xenlfs involved
    subprocess.run(["tar", "-x", "-f", str(archive), "-C", str(restored), "--numeric-owner",
                    "-p", "--xattrs", "--xattrs-include=*", "--acls"], check=True)
    assert differences(tree, restored) == []
    assert os.stat(restored / "sparse.img").st_blocks * 512 < 1 << 20


def test_extract_function_restores_the_same_tree(tree: Path, workdir: Path, xenlfs):
    archive = workdir / "snap.tar.zst"
    assert xenlfs("snapshot", "create", "--root", str(tree), str(archive)).returncode == 0
    extract(archive, workdir / "restored")
    assert differences(tree, workdir / "restored") == []


def test_tree_comparison_notices_a_changed_mode_xattr_and_link(tree: Path, workdir: Path,
                                                               xenlfs):
    archive = workdir / "snap.tar.zst"
    assert xenlfs("snapshot", "create", "--root", str(tree), str(archive)).returncode == 0
    restored = workdir / "restored"
    extract(archive, restored)
    os.chmod(restored / "tmp", 0o755)
    os.removexattr(restored / "usr/bin/ping", "security.capability")
    (restored / "usr/bin/ping6").unlink()
    found = "\n".join(differences(tree, restored))
    assert "'tmp' mode" in found
    assert "security.capability" in found
    assert "ping6" in found
