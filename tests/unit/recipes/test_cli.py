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


def test_xen_takes_its_prerequisites_from_the_deps_tree(xenlfs, tmp_path: Path) -> None:
    tree = tmp_path / "lfs"
    result = xenlfs("build", "xen", "--dry-run", "--deps", str(tree), "--destdir", str(tree),
                    "--configure-args=--disable-stubdom", "--cache-dir", str(tmp_path / "c"))
    assert result.returncode == 0, result.stderr
    assert (f"    ./configure --prefix=/usr --disable-stubdom PREPEND_INCLUDES={tree}/usr/include"
            f" PREPEND_LIB={tree}/usr/lib IASL={tree}/usr/bin/iasl\n") in result.stdout
    # A real run refuses before it builds anything: the tree has none of them yet.
    source = tmp_path / "xen.tar.gz"
    source.write_bytes(b"")
    result = xenlfs("build", "xen", "--deps", str(tree), "--destdir", str(tree),
                    "--source", str(source), "--cache-dir", str(tmp_path / "c"))
    assert result.returncode == 3
    assert f"{tree}/usr/lib/libyajl.so" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "c").exists()
