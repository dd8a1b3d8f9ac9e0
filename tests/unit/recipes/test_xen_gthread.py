"""The gthread fix of hint step 3 is applied only when pkg-config, run with the generated
tools/Makefile's PKG_CONFIG_PATH, really does not find gthread-2.0. The oracle is the real
make and shell running that PKG_CONFIG_PATH assignment with the real pkg-config."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from xenlfs.errors import PreconditionError
from xenlfs.recipes import xen
from xenlfs.recipes.recipe import Options

DATA = Path(__file__).parent / "data"
pytestmark = pytest.mark.skipif(shutil.which("pkg-config") is None, reason="needs pkg-config")

GLIB = """prefix=/opt/glib
libdir=${prefix}/lib
includedir=${prefix}/include
Name: GLib
Description: C utility library
Version: 2.74.6
Libs: -L${libdir} -lglib-2.0
Cflags: -I${includedir}/glib-2.0
"""
GTHREAD = """prefix=/opt/glib
Name: GThread
Description: Thread support for GLib
Version: 2.74.6
Requires: glib-2.0
Libs: -pthread
"""


def tree(tmp_path: Path, release: str) -> Path:
    root = tmp_path / f"xen-{release}"
    (root / "tools/pkg-config").mkdir(parents=True)
    shutil.copy(DATA / f"tools-Makefile-{release}", root / "tools/Makefile")
    return root


def glib_dir(tmp_path: Path) -> Path:
    pcdir = tmp_path / "glib/lib/pkgconfig"
    pcdir.mkdir(parents=True)
    (pcdir / "glib-2.0.pc").write_text(GLIB)
    (pcdir / "gthread-2.0.pc").write_text(GTHREAD)
    return pcdir


def make_finds_gthread(root: Path, env: dict[str, str]) -> bool:
    """What the Makefile's own recipe line sees, run by make and sh."""
    line = next(line for line in (root / "tools/Makefile").read_text().splitlines()
                if "PKG_CONFIG_PATH=" in line)
    assignment = re.search(r"PKG_CONFIG_PATH=\S+", line)
    assert assignment is not None
    probe = root / "probe.mk"
    probe.write_text(f"XEN_ROOT={root}\nprobe:\n\t{assignment[0]} pkg-config --exists "
                     "gthread-2.0\n")
    result = subprocess.run(["make", "-s", "-f", str(probe)], env={"PATH": "/usr/bin:/bin",
                            **env}, capture_output=True, check=False)
    return result.returncode == 0


@pytest.mark.parametrize("release", ["4.9", "4.17"])
@pytest.mark.parametrize("where", ["user-path", "default-path"])
def test_detection_agrees_with_make(tmp_path: Path, release: str, where: str) -> None:
    root = tree(tmp_path, release)
    pcdir = glib_dir(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    # An LFS pkg-config whose default path lacks GLib (user-path), or has it (default-path).
    env = ({"PKG_CONFIG_LIBDIR": str(empty), "PKG_CONFIG_PATH": str(pcdir)}
           if where == "user-path" else {"PKG_CONFIG_LIBDIR": str(pcdir)})
    found = xen.check_gthread(root / "tools/Makefile", env)
    assert found.needed is not make_finds_gthread(root, env)
    assert found.pcdir == str(pcdir)
    # The hint's bug is exactly 4.9's Makefile with GLib found through PKG_CONFIG_PATH only.
    assert found.needed is (release == "4.9" and where == "user-path")


def test_the_fix_makes_make_find_gthread_and_is_then_no_longer_needed(tmp_path: Path) -> None:
    root = tree(tmp_path, "4.9")
    pcdir = glib_dir(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {"PKG_CONFIG_LIBDIR": str(empty), "PKG_CONFIG_PATH": str(pcdir)}
    makefile = root / "tools/Makefile"
    before = makefile.read_text()
    assert xen.check_gthread(makefile, env).needed
    makefile.write_text(xen.fix_gthread(before, str(pcdir)))
    assert f"PKG_CONFIG_PATH=$(XEN_ROOT)/tools/pkg-config:{pcdir} \\" in makefile.read_text()
    assert make_finds_gthread(root, env)
    assert not xen.check_gthread(makefile, env).needed
    # Only that line changed.
    changed = [(a, b) for a, b in zip(before.splitlines(), makefile.read_text().splitlines(),
                                      strict=True) if a != b]
    assert len(changed) == 1


def test_no_glib_at_all_is_a_clear_precondition(tmp_path: Path) -> None:
    root = tree(tmp_path, "4.9")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(PreconditionError, match=r"gthread-2\.0") as e:
        xen.check_gthread(root / "tools/Makefile", {"PKG_CONFIG_LIBDIR": str(empty),
                                                    "PKG_CONFIG_PATH": ""})
    assert "BLFS book 'GLib'" in str(e.value)


def test_a_makefile_without_the_assignment_needs_nothing(tmp_path: Path) -> None:
    makefile = tmp_path / "Makefile"
    makefile.write_text("all:\n\ttrue\n")
    assert not xen.check_gthread(makefile, {}).needed


def test_effective_path_expands_like_the_shell() -> None:
    value = "$(XEN_ROOT)/tools/pkg-config$${PKG_CONFIG_PATH:+:$${PKG_CONFIG_PATH}}"
    assert xen.effective_path(value, Path("/x"), "") == "/x/tools/pkg-config"
    assert xen.effective_path(value, Path("/x"), "/a:/b") == "/x/tools/pkg-config:/a:/b"
    assert xen.effective_path("$(XEN_ROOT)/tools/pkg-config", Path("/x"), "/a") == \
        "/x/tools/pkg-config"


@pytest.mark.parametrize(("targets", "extra", "checked"), [
    ((), (), True),
    (("dist-xen",), (), False),
    (("dist-xen", "dist-tools"), (), True),
    (("dist",), ("--disable-tools",), False),
    (("dist",), ("--with-system-qemu=/usr/bin/qemu-system-i386",), False),
])
def test_gthread_is_checked_only_when_qemu_is_built(targets: tuple[str, ...],
                                                    extra: tuple[str, ...],
                                                    checked: bool) -> None:
    names = [p.name for p in xen.phases(Options(targets=targets, extra=extra))]
    assert ("gthread check" in names) is checked
    assert names[0] == "configure" and names[-1].startswith("make ")
