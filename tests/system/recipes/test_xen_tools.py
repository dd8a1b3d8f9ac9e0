"""Slow tier, hint steps 2–3 into a host tree: libyajl, libaio and iasl built by xenlfs into a
Debian tree that has none of them (no Xen, no -dev packages), then Xen's hypervisor *and*
tools built with those prerequisites taken from the same tree (--deps), installed there, and
checked by `build xen` itself: every installed program finds its libraries in the tree.

The oracle is the tree's own loader: `chroot TREE ldd` and `chroot TREE xl help`. The Xen
build (15–40 min on 2 shared cores) is cached by `--reuse` and shared with the
source-built host (lab/source_host.py), which uses the same options.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from xenlfs.lab import apt, source_host
from xenlfs.recipes import libraries

pytestmark = pytest.mark.slow


def chroot(tree: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["chroot", str(tree), *argv], capture_output=True, text=True)


@pytest.fixture(scope="module")
def tree(cache_dir: Path, deb_src: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = source_host.base_tree(cache_dir, apt.DEFAULT_MIRROR)
    copy = tmp_path_factory.mktemp("host") / "root"
    subprocess.run(["cp", "-a", str(base), str(copy)], check=True)
    return copy


def test_xen_tools_built_against_the_tree_run_from_it(xenlfs, cache_dir: Path, tree: Path,
                                                      tmp_path: Path) -> None:
    # Nothing of what the tools need from xenlfs is in Debian's tree to begin with.
    for name in ("libyajl.so.2", "libaio.so.1"):
        assert not list(tree.glob(f"usr/lib/**/{name}")), name
    found = source_host.find_sources(cache_dir, download=True)
    assert found is not None
    common = ("--destdir", str(tree), "--jobs", "2", "--nice", "19", "--reuse",
              "--cache-dir", str(cache_dir), "--log-dir", str(tmp_path / "logs"))
    for name in ("yajl", "libaio", "acpica"):
        result = xenlfs("build", name, "--source", str(found.by_recipe()[name]), *common)
        assert result.returncode == 0, result.stdout + result.stderr
    result = xenlfs("build", "xen", "--source", str(found.xen), "--deps", str(tree), *common,
                    f"--configure-args={source_host.CONFIGURE}", "--targets",
                    source_host.TARGETS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"installed ELF files finds its interpreter and libraries in {tree}" in result.stdout
    for program in ("usr/sbin/xl", "usr/sbin/xenstored", "usr/sbin/xenconsoled",
                    "usr/lib/xen/bin/xen-init-dom0", "boot/xen.gz"):
        assert (tree / program).exists(), program
    subprocess.run(["chroot", str(tree), "ldconfig"], check=True)
    # The tree's own loader finds xl's libraries, libyajl being xenlfs's build in /usr/lib.
    ldd = chroot(tree, "ldd", "/usr/sbin/xl")
    assert ldd.returncode == 0 and "not found" not in ldd.stdout, ldd.stdout
    # /lib is a link to usr/lib in this (merged-/usr) tree, as in LFS.
    for lib in ("libyajl.so.2", "libxenlight.so.4.17"):
        assert re.search(rf"{lib} => (/usr)?/lib/{lib} ", ldd.stdout), ldd.stdout
    # They run from the tree: xenstored prints its usage; xl gets as far as libxl's own
    # error (no Xen here), so every library it needs was loaded.
    usage = chroot(tree, "/usr/sbin/xenstored", "--help")
    assert usage.returncode == 0 and "xenstored <options>" in usage.stderr, usage
    xl = chroot(tree, "/usr/sbin/xl", "list")
    assert "cannot init xl context" in xl.stderr, xl
    assert "error while loading shared libraries" not in xl.stderr, xl
    # iasl from the tree compiled hvmloader's ACPI tables.
    assert (tree / "usr/lib/xen/boot/hvmloader").is_file()


def test_a_library_missing_from_the_tree_is_named(cache_dir: Path, tree: Path) -> None:
    # Runs after the build above (the same module-scoped tree): take libyajl away again.
    xl = tree / "usr/sbin/xl"
    if not xl.is_file():
        pytest.skip("the build test did not install xl")
    for lib in tree.glob("usr/lib/libyajl.so*"):
        lib.unlink()
    report = libraries.check(tree, [xl, *tree.glob("usr/lib/libxenlight.so.*")])
    assert {(str(m.file), m.library) for m in report.missing} >= {
        ("/usr/sbin/xl", "libyajl.so.2")}
    subprocess.run(["chroot", str(tree), "ldconfig"], check=True)
    assert "libyajl.so.2 => not found" in chroot(tree, "ldd", "/usr/sbin/xl").stdout
