"""`xenlfs kernel check` as a user runs it: exit codes, --json, colour and NO_COLOR."""

from __future__ import annotations

import json
import re
from pathlib import Path

from xenlfs.kernel import build, fix
from xenlfs.kernel.config import parse

DATA = Path(__file__).parent / "data"
DEBIAN = str(DATA / "debian-6.1-amd64.config.xz")
TINY = str(DATA / "tinyconfig-6.1.config")


def test_check_exit_codes_and_json(xenlfs) -> None:
    ok = xenlfs("kernel", "check", DEBIAN, "--role", "dom0", "--json")
    assert ok.returncode == 0, ok.stderr
    report = json.loads(ok.stdout)
    assert report["ok"] and report["version"] == "6.1.192"
    bridge = next(o for o in report["options"] if o["symbol"] == "CONFIG_BRIDGE")
    assert bridge["status"] == "module" and bridge["met"]
    bad = xenlfs("kernel", "check", TINY, "--role", "domU")
    assert bad.returncode == 1
    assert re.search(r"^missing +CONFIG_XEN +Xen guest support$", bad.stdout, re.M)
    assert "required option(s) missing for a domU" in bad.stdout
    assert "add --src TREE to see why" in bad.stdout


def test_colour_on_request_and_no_color(xenlfs) -> None:
    coloured = xenlfs("kernel", "check", TINY, "--role", "domU", env={"FORCE_COLOR": "1",
                                                                       "TERM": "xterm"})
    assert "\x1b[" in coloured.stdout
    plain = xenlfs("kernel", "check", TINY, "--role", "domU",
                   env={"FORCE_COLOR": "1", "TERM": "xterm", "NO_COLOR": "1"})
    assert "\x1b[31m" not in plain.stdout and "missing" in plain.stdout


def test_usage_errors(xenlfs, tmp_path: Path) -> None:
    assert xenlfs("kernel", "check", DEBIAN).returncode == 2  # --role is required
    result = xenlfs("kernel", "fix", "--role", "domU", "--src", str(tmp_path))
    assert result.returncode == 3 and "not a Linux source tree" in result.stderr
    result = xenlfs("kernel", "explain", "XEN")
    assert result.returncode == 2 and "--src TREE" in result.stderr


def test_build_phases_from_kbuild_lines() -> None:
    assert build.phase_of("  HOSTCC  scripts/basic/fixdep") == "prepare"
    assert build.phase_of("  CC      kernel/fork.o") == "compile"
    assert build.phase_of("  LD      vmlinux.o") == "link vmlinux"
    assert build.phase_of("  CC      arch/x86/boot/a20.o") == "bzImage"
    assert build.phase_of("Kernel: arch/x86/boot/bzImage is ready  (#1)") == "bzImage"
    assert build.phase_of("  CC [M]  drivers/net/xen-netback/netback.o") == "modules"
    assert build.phase_of("make[1]: Entering directory") is None


def test_diff_is_symbol_by_symbol() -> None:
    before = parse("CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=m\n", "a")
    after = parse("CONFIG_A=y\nCONFIG_B=y\nCONFIG_C=y\nCONFIG_D=m\n", "b")
    assert fix.diff(before, after) == [" B n -> y", " C m -> y", "+D m"]


def test_tree_version_from_makefile(tmp_path: Path) -> None:
    (tmp_path / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 192\n"
                                       "EXTRAVERSION =\nNAME = Curry Ramen\n")
    assert fix.tree_version(tmp_path) == "6.1.192"
