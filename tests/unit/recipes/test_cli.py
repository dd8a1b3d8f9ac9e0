"""`xenlfs build … --dry-run` prints the plan and touches nothing."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.mark.parametrize("name", ["yajl", "libaio", "acpica", "dev86", "xen"])
def test_dry_run_builds_nothing(xenlfs, name: str, tmp_path: Path) -> None:
    result = xenlfs("build", name, "--dry-run", "--destdir", str(tmp_path / "d"),
                    "--cache-dir", str(tmp_path / "cache"))
    assert result.returncode == 0, result.stderr
    assert "would build" in result.stdout and not (tmp_path / "d").exists()
    assert "  copy into place\n" in result.stdout
    assert not (tmp_path / "cache").exists()


def test_xen_dry_run_shows_configure_args_and_targets(xenlfs, tmp_path: Path) -> None:
    result = xenlfs("build", "xen", "--dry-run", "--configure-args=--disable-stubdom",
                    "--targets", "dist-xen dist-tools", "--jobs", "3", "--prefix", "/opt/xen",
                    "--cache-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "    ./configure --prefix=/opt/xen --disable-stubdom\n" in result.stdout
    assert "  gthread check\n" in result.stdout
    assert "    make -j3 dist-xen dist-tools\n" in result.stdout
