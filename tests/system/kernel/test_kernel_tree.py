"""Step 4 on a real tree: Debian's linux-source-6.1, its own kconfig tools, a real build.

The tree is unpacked once into the cache (CACHE/kernel/src/…-tests); the domU kernel is
built only if the cache lacks it (kernels.cached_domu_kernel), so CI builds it at most once.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from xenlfs.kernel import check, config, fix
from xenlfs.kernel.kconfig import read_tree
from xenlfs.kernel.requirements import Role
from xenlfs.lab import kernels
from xenlfs.settings import default_cache_dir

BUILT_IN = ("XEN_BLKDEV_FRONTEND", "EXT4_FS", "HVC_XEN", "DEVTMPFS", "DEVTMPFS_MOUNT")


@pytest.fixture(scope="module")
def tree() -> Path:
    return kernels.unpacked_tree(default_cache_dir(), kernels.DEBIAN_SOURCE, "tests")


def test_tinyconfig_plus_fix_gives_a_domU(xenlfs, tree: Path) -> None:
    result = xenlfs("kernel", "fix", "--src", str(tree), "--role", "domU", "--start",
                    "tinyconfig", "--localversion=-xen-domU")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "did not stick" not in result.stdout
    fixed = config.load(tree / ".config")
    for symbol in BUILT_IN:
        assert fixed.get(symbol) == "y", symbol
    assert fixed.get("LOCALVERSION") == "-xen-domU"
    report = json.loads(xenlfs("kernel", "check", "--src", str(tree), "--role", "domU",
                               "--json").stdout)
    assert report["ok"] and report["config"] == str(tree / ".config")
    assert all(o["met"] for o in report["options"] if o["level"] == "required")


def test_dry_run_prints_the_diff_and_writes_nothing(xenlfs, tree: Path) -> None:
    fix.make_config(tree, "tinyconfig", tree / ".config")
    before = (tree / ".config").read_bytes()
    result = xenlfs("kernel", "fix", "--src", str(tree), "--role", "dom0", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert (tree / ".config").read_bytes() == before
    assert " XEN_DOM0 n -> y" in result.stdout or "+XEN_DOM0 y" in result.stdout
    assert "+BRIDGE y" in result.stdout  # tinyconfig has no module support: built in


def test_explain_says_why_and_where(xenlfs, tree: Path) -> None:
    fix.make_config(tree, "tinyconfig", tree / ".config")
    result = xenlfs("kernel", "explain", "--src", str(tree), "XEN_DOM0", "HVC_XEN")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert 'CONFIG_XEN_DOM0 "Xen Dom0 support" [=n]  (arch/x86/xen/Kconfig:' in out
    assert "menuconfig: Processor type and features → Linux guest support (HYPERVISOR_GUEST)" in out
    assert "needs: PCI [=n]" in out and "CONFIG_HYPERVISOR_GUEST" in out
    report = json.loads(xenlfs("kernel", "check", "--src", str(tree), "--role", "dom0",
                               "--json").stdout)
    xen = next(o for o in report["options"] if o["symbol"] == "CONFIG_XEN")
    assert xen["explanation"]["defined_at"].startswith("arch/x86/xen/Kconfig:")


def test_the_wikis_vanished_symbols_are_not_in_this_kernel(tree: Path) -> None:
    kconfig = read_tree(tree)
    empty = config.parse("", "empty")
    for gone in ("PARAVIRT_GUEST", "XEN_TMEM", "ACPI_PROCFS"):
        assert check.status_of(gone, empty, kconfig) is check.Status.NOT_IN_KERNEL
    assert check.status_of("XEN_DOM0", empty, kconfig) is check.Status.MISSING


def test_defconfig_plus_fix_gives_a_dom0(xenlfs, tree: Path) -> None:
    result = xenlfs("kernel", "fix", "--src", str(tree), "--role", "dom0", "--start",
                    "defconfig", "--localversion=-xen-dom0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert xenlfs("kernel", "check", "--src", str(tree), "--role", "dom0").returncode == 0
    fixed = config.load(tree / ".config")
    # defconfig has modules: backends and the bridge become modules, as in xen.config.
    assert fixed.get("XEN_DOM0") == "y" and fixed.get("BRIDGE") == "m"
    assert fixed.get("XEN_NETDEV_BACKEND") == "m" and fixed.get("LOCALVERSION") == "-xen-dom0"


def bzimage_version(image: Path) -> str:
    """The version string a bzImage carries (boot protocol: header 'HdrS', kernel_version)."""
    data = image.read_bytes()
    assert data[0x202:0x206] == b"HdrS", "not a bzImage"
    (offset,) = struct.unpack_from("<H", data, 0x20E)
    return data[offset + 0x200:].split(b"\0", 1)[0].decode()


def test_cached_domU_kernel_builds_and_installs(xenlfs, tmp_path: Path) -> None:
    image = kernels.cached_domu_kernel(default_cache_dir())
    assert image.stat().st_size > 500_000
    release = (image.parent / "release").read_text().strip()
    assert release == "6.1.192-xen-domU"
    assert bzimage_version(image).startswith(release + " ")
    built = config.load(image.parent / "config")
    assert not check.failed(check.check(built, Role.DOMU))
    for symbol in BUILT_IN:
        assert built.get(symbol) == "y", symbol
    assert kernels.cached_domu_kernel(default_cache_dir()) == image  # cached: no rebuild
    recipe = (default_cache_dir() / "kernel/builds/recipes"
              / kernels.recipe_key(kernels.DEBIAN_SOURCE, Role.DOMU))
    assert recipe.read_text().strip() == image.parent.name
    recipe.write_text("cleaned-away\n")  # a recipe whose build is gone is not trusted
    assert kernels.cached_domu_kernel(default_cache_dir()) == image
    assert recipe.read_text().strip() == image.parent.name
    domu_tree = kernels.unpacked_tree(default_cache_dir(), kernels.DEBIAN_SOURCE, "domU")
    if not (domu_tree / "arch/x86/boot/bzImage").is_file():
        # The cached image came from another tree (another checkout sharing the cache):
        # build this one with the CLI, as a user would.
        (domu_tree / ".config").write_text((image.parent / "config").read_text())
        built = xenlfs("kernel", "build", "--src", str(domu_tree), "--jobs", "2", "--nice", "19")
        assert built.returncode == 0, built.stderr
        assert f"built {release}: {domu_tree}/arch/x86/boot/bzImage" in built.stdout
    boot = tmp_path / "boot"
    result = xenlfs("kernel", "install", "--src", str(domu_tree), "--boot", str(boot),
                    "--root", str(tmp_path))
    assert result.returncode == 0, result.stderr
    # The tree's own image (another build of the same release may have replaced the cached
    # one's files in the tree since: compare with the tree, and with the release).
    installed = boot / f"vmlinuz-{release}"
    assert installed.read_bytes() == (domu_tree / "arch/x86/boot/bzImage").read_bytes()
    assert bzimage_version(installed).startswith(release + " ")
    assert (boot / f"config-{release}").read_text() == (domu_tree / ".config").read_text()
    assert (boot / f"System.map-{release}").stat().st_size > 0


def test_tinyconfig_ignores_the_trees_own_config(tree: Path, tmp_path: Path) -> None:
    # 6.1's tinyconfig rule merges onto the tree's .config whatever KCONFIG_CONFIG says.
    fix.make_config(tree, "defconfig", tree / ".config")
    assert config.load(tree / ".config").get("NET") == "y"
    tiny = tmp_path / "tiny.config"
    fix.make_config(tree, "tinyconfig", tiny)
    made = config.load(tiny)
    assert made.get("NET") == "n" and made.get("BLOCK") == "n" and made.get("64BIT") == "y"
    assert not list(tmp_path.glob(".tmp.config*")) and not list(tree.glob(".tmp.config*"))


def test_fix_for_hvm_turns_the_vga_console_off(xenlfs, tree: Path) -> None:
    # tinyconfig + the PV fix: the VT comes with its default VGA text console.
    fixed = xenlfs("kernel", "fix", "--src", str(tree), "--role", "domU", "--start",
                   "tinyconfig")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert config.load(tree / ".config").get("VGA_CONSOLE") == "y"
    plan = xenlfs("kernel", "fix", "--src", str(tree), "--role", "domU", "--type", "hvm",
                  "--dry-run")
    assert " VGA_CONSOLE y -> n" in plan.stdout.splitlines(), plan.stdout
    fixed = xenlfs("kernel", "fix", "--src", str(tree), "--role", "domU", "--type", "hvm")
    assert fixed.returncode == 0 and "did not stick" not in fixed.stdout, fixed.stdout
    after = config.load(tree / ".config")
    assert after.get("VGA_CONSOLE") == "n" and after.get("VT") == "y"
    report = json.loads(xenlfs("kernel", "check", "--src", str(tree), "--role", "domU",
                               "--type", "hvm", "--json").stdout)
    vga = next(o for o in report["options"] if o["symbol"] == "CONFIG_VGA_CONSOLE")
    assert vga["status"] == "off" and vga["met"]
    explained = xenlfs("kernel", "explain", "--src", str(tree), "VGA_CONSOLE").stdout
    assert "should be off for --type hvm (kernel check warns while it is on, kernel fix " \
        "turns it off): the VGA text console" in explained, explained


def test_an_unwanted_option_that_cannot_be_turned_off_is_reported(xenlfs, tree: Path) -> None:
    # defconfig has no EXPERT: VGA_CONSOLE has no prompt then, olddefconfig turns it back on.
    result = xenlfs("kernel", "fix", "--src", str(tree), "--role", "domU", "--type", "hvm",
                    "--start", "defconfig", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr  # a warning, not an error
    stuck = result.stdout.split("did not stick (make olddefconfig undid them):", 1)[1]
    assert "CONFIG_VGA_CONSOLE" in stuck and "Its prompt shows only with EXPERT=y" in stuck


def test_a_killed_fixs_temporary_directory_is_removed_by_the_next_run(xenlfs, tree: Path,
                                                                      tmp_path: Path) -> None:
    # kill -9 xenlfs (and the make it runs) while it works on its copy of the .config.
    fix.make_config(tree, "tinyconfig", tree / ".config")
    before = (tree / ".config").read_bytes()
    env = {**os.environ, "TMPDIR": str(tmp_path),
           "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    killed = subprocess.Popen([sys.executable, "-m", "xenlfs", "kernel", "fix", "--src",
                               str(tree), "--role", "dom0"], env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob("xenlfs-kernel-*/.config")):
            assert killed.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait()
    [left] = tmp_path.glob("xenlfs-kernel-*")
    assert (tree / ".config").read_bytes() == before
    result = xenlfs("kernel", "fix", "--src", str(tree), "--role", "dom0",
                    env={"TMPDIR": str(tmp_path)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert not left.exists() and list(tmp_path.iterdir()) == []
    assert config.load(tree / ".config").get("XEN_DOM0") == "y"


def test_the_demos_kernel_fix_makes_the_caches_config(xenlfs, tree: Path) -> None:
    # `lab demo`'s step 4 without a cached kernel runs kernels.verbs(): their .config is the
    # one cached_kernel makes in-process, so the build lands in the cached directory.
    image = kernels.cached_domu_kernel(default_cache_dir())
    fix_argv, _ = kernels.verbs(tree, Role.DOMU)
    result = xenlfs(*fix_argv)
    assert result.returncode == 0, result.stdout + result.stderr
    digest = kernels.config_digest((tree / ".config").read_text())
    assert image.parent.name == f"{fix.tree_version(tree)}-domU-{digest}"


def test_keep_puts_a_built_tree_where_cached_kernel_keeps_it(xenlfs, tmp_path: Path) -> None:
    image = kernels.cached_domu_kernel(default_cache_dir())
    wanted = (image.parent / "config").read_text()
    with kernels.source_tree(default_cache_dir(), Role.DOMU) as domu_tree:
        if ((domu_tree / ".config").read_text() != wanted
                or not (domu_tree / "arch/x86/boot/bzImage").is_file()):
            (domu_tree / ".config").write_text(wanted)  # built from another tree: build this
            built = xenlfs(*kernels.verbs(domu_tree, Role.DOMU)[1])
            assert built.returncode == 0, built.stderr
        assert kernels.lookup(tmp_path, Role.DOMU) is None
        kept = kernels.keep(tmp_path, domu_tree, Role.DOMU)
        assert (kept / "bzImage").read_bytes() == (
            domu_tree / "arch/x86/boot/bzImage").read_bytes()
    assert kept.name == image.parent.name and kept.parent == tmp_path / "kernel/builds"
    assert (kept / "config").read_text() == wanted
    assert (kept / "release").read_text() == "6.1.192-xen-domU\n"
    assert (kept / "System.map").stat().st_size > 0
    assert kernels.lookup(tmp_path, Role.DOMU) == kept  # the next demo finds it at once
    assert kernels.cached_domu_kernel(tmp_path) == kept / "bzImage"  # and so does CI's
