"""Slow tier, hint step 3 end to end: `xenlfs build xen` builds the hypervisor from Debian's
xen orig tarball, and the lab boots that xen.gz with its dom0.

Hypervisor only (dist-xen, tools disabled): the lab's dom0 has Debian's xl of the same 4.17
series; the tools' build needs GLib, Pixman, yajl, … and, offline, system QEMU and SeaBIOS.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from xenlfs.lab import images, instance
from xenlfs.lab.instance import UpOptions
from xenlfs.recipes import sources

pytestmark = pytest.mark.slow

CONFIGURE = "--disable-tools --disable-stubdom --disable-docs"


def test_the_built_xen_gz_boots_the_lab(xenlfs, lab_cache_dir: Path, tmp_path: Path) -> None:
    tarball = sources.debian_orig("xen", lab_cache_dir)
    dest = tmp_path / "dest"
    result = xenlfs("build", "xen", "--source", str(tarball), "--destdir", str(dest),
                    "--cache-dir", str(lab_cache_dir), "--log-dir", str(tmp_path / "logs"),
                    f"--configure-args={CONFIGURE}", "--targets", "dist-xen",
                    "--jobs", str(os.cpu_count() or 1), "--nice", "19", "--reuse")
    assert result.returncode == 0, result.stdout + result.stderr
    xen_gz = dest / "boot/xen.gz"
    assert f"installed {xen_gz}" in result.stdout
    assert xen_gz.read_bytes()[:2] == b"\x1f\x8b"
    version = tarball.name.split("_")[1].split("+")[0].removesuffix(".orig.tar.xz")
    artefacts = images.build(images.BuildOptions(cache_dir=lab_cache_dir, xen=xen_gz))
    with instance.one_shot(artefacts, UpOptions(name=f"pytest-built-xen-{os.getpid()}")) as lab:
        # `xl info` pads its keys: "xen_major              : 4"
        info = {key.strip(): value.strip() for key, value in
                (line.split(":", 1) for line in
                 lab.channel.run(["xl", "info"]).stdout.splitlines() if ":" in line)}
        assert f"{info['xen_major']}.{info['xen_minor']}{info['xen_extra']}".startswith(version)
        # The hypervisor running is the one built here, not Debian's: it carries its own
        # build time.
        assert info["cc_compile_date"].encode() in gzip.decompress(xen_gz.read_bytes())
        assert lab.channel.run(["cat", "/proc/xen/capabilities"]).stdout.strip() == "control_d"
