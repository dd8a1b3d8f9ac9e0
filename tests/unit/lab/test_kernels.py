"""The cached kernels' recipe key: what `kernel fix` makes a .config from."""

from __future__ import annotations

from pathlib import Path

from xenlfs.kernel.requirements import Role
from xenlfs.lab import kernels


def test_recipe_key_changes_with_role_and_source(tmp_path: Path) -> None:
    tarball = tmp_path / "linux-6.1.tar.xz"
    tarball.write_bytes(b"one source")
    domu = kernels.recipe_key(tarball, Role.DOMU)
    assert kernels.recipe_key(tarball, Role.DOMU) == domu
    assert kernels.recipe_key(tarball, Role.DOM0) != domu
    tarball.write_bytes(b"another source")
    assert kernels.recipe_key(tarball, Role.DOMU) != domu
