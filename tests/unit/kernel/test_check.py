"""Requirement logic on real configs: Debian's 6.1 amd64 config and 6.1's tinyconfig.

data/debian-6.1-amd64.config.xz is Debian's config-6.1 as shipped in linux-config-6.1
(/usr/src/linux-config-6.1/config.amd64_none_amd64.xz); data/tinyconfig-6.1.config is
`make ARCH=x86_64 tinyconfig` in a clean linux-source-6.1 tree (fix.make_config).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from xenlfs.errors import PreconditionError, SourceError
from xenlfs.kernel import check, config
from xenlfs.kernel.requirements import REQUIREMENTS, GuestType, Level, Role

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def debian() -> config.KernelConfig:
    return config.load(DATA / "debian-6.1-amd64.config.xz")


@pytest.fixture(scope="module")
def tiny() -> config.KernelConfig:
    return config.load(DATA / "tinyconfig-6.1.config")


def failing(cfg: config.KernelConfig, role: Role) -> dict[str, check.Result]:
    return {r.requirement.symbol: r for r in check.failed(check.check(cfg, role))}


def test_debian_config_passes_dom0(debian: config.KernelConfig) -> None:
    assert debian.version == "6.1.192"
    assert failing(debian, Role.DOM0) == {}
    results = {r.requirement.symbol: r for r in check.check(debian, Role.DOM0)}
    assert results["XEN_DOM0"].status is check.Status.ENABLED
    # Debian builds the backends as modules: fine for a dom0, which has an initramfs.
    assert results["XEN_NETDEV_BACKEND"].status is check.Status.MODULE
    assert results["XEN_NETDEV_BACKEND"].met


def test_debian_config_is_no_initramfs_free_domU(debian: config.KernelConfig) -> None:
    # Debian relies on its initramfs: blkfront and ext4 are modules, devtmpfs not automounted.
    fails = failing(debian, Role.DOMU)
    assert set(fails) == {"XEN_BLKDEV_FRONTEND", "EXT4_FS", "DEVTMPFS_MOUNT"}
    assert fails["EXT4_FS"].status is check.Status.MODULE
    assert "built in" in (fails["EXT4_FS"].problem() or "")
    assert fails["DEVTMPFS_MOUNT"].status is check.Status.MISSING


def test_tinyconfig_fails_for_the_right_reasons(tiny: config.KernelConfig) -> None:
    for role in Role:
        fails = failing(tiny, role)
        # tinyconfig turns off the guest menu and everything under it ...
        # ... and everything a userland needs, down to ELF programs, ttys and printk ...
        for symbol in ("HYPERVISOR_GUEST", "PARAVIRT", "XEN", "XEN_PV", "HVC_XEN", "NET",
                       "UNIX", "TMPFS", "XEN_BLKDEV_FRONTEND", "BLOCK", "TTY", "PRINTK",
                       "BINFMT_ELF", "MULTIUSER", "EPOLL"):
            assert fails[symbol].status is check.Status.MISSING, symbol
        # ... but with ARCH=x86_64 it is a 64-bit kernel, the one requirement it meets.
        assert "64BIT" not in fails
        assert {r.requirement.symbol for r in check.check(tiny, role) if r.met} == {"64BIT"}
    assert {"XEN_DOM0", "PCI", "BRIDGE", "XEN_PRIVCMD"} <= set(failing(tiny, Role.DOM0))
    assert {"EXT4_FS", "DEVTMPFS_MOUNT"} <= set(failing(tiny, Role.DOMU))


def test_recommended_options_never_fail(tiny: config.KernelConfig) -> None:
    for result in check.check(tiny, Role.DOM0):
        if result.requirement.level is Level.RECOMMENDED:
            assert not result.met and not result.fails


def test_domU_needs_its_boot_path_built_in() -> None:
    domu = {r.symbol: r for r in REQUIREMENTS[Role.DOMU]}
    for symbol in ("XEN_BLKDEV_FRONTEND", "EXT4_FS", "HVC_XEN", "DEVTMPFS", "DEVTMPFS_MOUNT"):
        assert domu[symbol].builtin and domu[symbol].level is Level.REQUIRED
    dom0 = {r.symbol: r for r in REQUIREMENTS[Role.DOM0]}
    assert not dom0["XEN_BLKDEV_FRONTEND"].builtin
    assert "BRIDGE" in dom0 and "BRIDGE" not in domu


def test_config_formats_and_errors(tmp_path: Path, debian: config.KernelConfig) -> None:
    import gzip

    plain = config.read_text(DATA / "debian-6.1-amd64.config.xz")
    (tmp_path / "config.gz").write_bytes(gzip.compress(plain.encode()))
    assert config.load(tmp_path / "config.gz").values == debian.values
    assert debian.get("LOCALVERSION") == "" and debian.get("NO_SUCH_OPTION") == "n"
    bad = tmp_path / ".config"
    bad.write_text("CONFIG_A=y\n\nCONFIG_B y\n")
    with pytest.raises(SourceError) as error:
        config.load(bad)
    assert str(error.value).startswith(f"{bad}:3:1: not a kernel config line")


def test_locate_prefers_explicit_then_tree(tmp_path: Path) -> None:
    (tmp_path / ".config").write_text("CONFIG_A=y\n")
    assert config.locate(None, tmp_path) == tmp_path / ".config"
    other = tmp_path / "other"
    other.write_text("")
    assert config.locate(other, tmp_path) == other
    with pytest.raises(PreconditionError):
        config.locate(tmp_path / "missing", tmp_path)


def test_debian_config_is_a_domU_of_every_type_with_its_initramfs(
        debian: config.KernelConfig) -> None:
    for types in ((GuestType.PV,), (GuestType.PVH,), (GuestType.HVM,), tuple(GuestType)):
        assert check.failed(check.check(debian, Role.DOMU, types=types, initramfs=True)) == []


def test_each_type_asks_for_its_own_entry(tiny: config.KernelConfig) -> None:
    def fails(*types: GuestType) -> set[str]:
        return {r.requirement.symbol for r in check.failed(check.check(tiny, Role.DOMU,
                                                                       types=types))}
    assert "XEN_PV" in fails(GuestType.PV) and "XEN_PVH" not in fails(GuestType.PV)
    assert "XEN_PVH" in fails(GuestType.PVH) and "XEN_PV" not in fails(GuestType.PVH)
    hvm = fails(GuestType.HVM)
    # An HVM guest needs nothing of Xen's, but a serial console; PV drivers are recommended.
    assert {"SERIAL_8250", "SERIAL_8250_CONSOLE", "EXT4_FS"} <= hvm
    assert not hvm & {"XEN", "XEN_PV", "XEN_PVH", "HVC_XEN", "XEN_BLKDEV_FRONTEND"}
    recommended = {r.requirement.symbol for r in check.check(tiny, Role.DOMU,
                                                              types=(GuestType.HVM,))
                   if r.requirement.level is Level.RECOMMENDED}
    assert {"XEN_PVHVM_GUEST", "XEN_BLKDEV_FRONTEND"} <= recommended
    assert fails(*GuestType) == fails(GuestType.PV) | fails(GuestType.PVH) | hvm


def test_kernel_check_type_on_the_command_line(xenlfs) -> None:
    debian = str(DATA / "debian-6.1-amd64.config.xz")
    result = xenlfs("kernel", "check", debian, "--role", "domU", "--type", "pvh,hvm",
                    "--initramfs")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "as a PVH+HVM domU with an initramfs\n" in result.stdout
    tiny = str(DATA / "tinyconfig-6.1.config")
    result = xenlfs("kernel", "check", tiny, "--role", "domU", "--type", "hvm")
    assert result.returncode == 1 and "as an HVM domU\n" in result.stdout
    assert re.search(r"CONFIG_XEN_PVHVM_GUEST \(recommended\) +PV-on-HVM drivers",
                     result.stdout)
    result = xenlfs("kernel", "check", tiny, "--role", "domU", "--type", "pv,bsd")
    assert result.returncode == 2 and "give pv, pvh or hvm" in result.stderr
    result = xenlfs("kernel", "check", tiny, "--role", "dom0", "--type", "pvh")
    assert result.returncode == 2 and "--type is for a domU" in result.stderr


def test_hvm_wants_the_vga_console_off_and_only_warns(debian: config.KernelConfig,
                                                      tiny: config.KernelConfig) -> None:
    def vga(cfg: config.KernelConfig, *types: GuestType) -> check.Result:
        results = check.check(cfg, Role.DOMU, types=types, initramfs=True)
        return next(r for r in results if r.requirement.symbol == "VGA_CONSOLE")

    on = vga(debian, GuestType.HVM)  # Debian's VT has the VGA text console
    assert on.requirement.level is Level.UNWANTED and on.status is check.Status.ENABLED
    assert not on.met and not on.fails  # a warning: the kernel boots, slowly under emulation
    assert (on.problem() or "").startswith("on, but it should be off: the VGA text console")
    assert on.as_dict()["wanted"] == "n" and on.as_dict()["level"] == "unwanted"
    assert not vga(debian, *GuestType).met  # the lab's kernel for all three types too
    off = vga(tiny, GuestType.HVM)
    assert off.status is check.Status.OFF and off.met
    # PV and PVH guests have no VGA: their checks do not ask.
    for kind in (GuestType.PV, GuestType.PVH):
        assert all(r.requirement.symbol != "VGA_CONSOLE"
                   for r in check.check(debian, Role.DOMU, types=(kind,)))
    assert all(r.requirement.symbol != "VGA_CONSOLE" for r in check.check(debian, Role.DOM0))


def test_kernel_check_shows_an_unwanted_option(xenlfs) -> None:
    debian = str(DATA / "debian-6.1-amd64.config.xz")
    result = xenlfs("kernel", "check", debian, "--role", "domU", "--type", "hvm",
                    "--initramfs")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^enabled +CONFIG_VGA_CONSOLE \(should be off\) +on, but it should be "
                     r"off: the VGA text console", result.stdout, re.M), result.stdout
    tiny = str(DATA / "tinyconfig-6.1.config")
    result = xenlfs("kernel", "check", tiny, "--role", "domU", "--type", "hvm", "--json")
    vga = next(o for o in json.loads(result.stdout)["options"]
               if o["symbol"] == "CONFIG_VGA_CONSOLE")
    assert vga["status"] == "off" and vga["met"] and vga["wanted"] == "n"
