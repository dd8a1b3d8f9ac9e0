"""A host whose init is Debian's sysv-rc with insserv (the distribution's own init scripts,
not LFS's): startpar starts only the scripts /etc/init.d/.depend.start lists, so the
rehearsal's probe must be listed there in the copy. Proven with Debian's real startpar, in
a private mount namespace whose /etc/init.d and /etc/rc2.d are a test tree's."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from xenlfs.rehearse import flow, probe

pytestmark = [pytest.mark.system]

# As insserv writes it on Debian 12 with Xen's packages (trimmed).
DEPEND_START = """\
TARGETS = killprocs bootlogs single xen rmnologin xendomains rc.local
INTERACTIVE =
single: killprocs
xendomains: xen
rc.local: xendomains rmnologin bootlogs
"""
SCRIPTS = ("killprocs", "bootlogs", "single", "xen", "rmnologin", "xendomains", "rc.local")
# As Debian's grub-mkconfig (20_linux_xen) writes it, not xenlfs.
GRUB_CFG = """\
set default=0
set timeout=5
menuentry 'Debian GNU/Linux, with Xen hypervisor' --class debian {
\tinsmod part_msdos
\tinsmod ext2
\tset root='hd0,msdos1'
\techo\t'Loading Xen 4.17-amd64 ...'
\tmultiboot2\t/boot/xen-4.17-amd64.gz placeholder  dom0_mem=512M ${xen_rm_opts}
\techo\t'Loading Linux 6.1.0-50-amd64 ...'
\tmodule2\t/boot/vmlinuz-6.1.0-50-amd64 placeholder root=/dev/vda1 ro  quiet
\techo\t'Loading initial ramdisk ...'
\tmodule2\t--nounzip   /boot/initrd.img-6.1.0-50-amd64
}
"""


@pytest.fixture(scope="module")
def startpar() -> str:
    if shutil.which("startpar") is None:
        subprocess.run(["apt-get", "-y", "-q", "-o", "DPkg::Lock::Timeout=600", "install",
                        "startpar"], check=True, capture_output=True)
    return "startpar"


def debian_host(root: Path) -> None:
    """A Debian-style tree: /etc/init.d (no LFS rc.d), runlevel 2, insserv's order."""
    for rel, text in {"etc/fstab": "/dev/vda1 / ext4 defaults 0 1\n",
                      "etc/inittab": "id:2:initdefault:\n",
                      "etc/init.d/.depend.start": DEPEND_START,
                      "boot/grub/grub.cfg": GRUB_CFG}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "etc/rc2.d").mkdir()
    for number, name in enumerate(SCRIPTS, 1):
        script = root / "etc/init.d" / name
        script.write_text(f'#!/bin/sh\necho "{name} $1" >> {root.parent / "ran"}\n')
        script.chmod(0o755)
        (root / f"etc/rc2.d/S{number:02d}{name}").symlink_to(f"../init.d/{name}")


def run_level_2(root: Path) -> list[str]:
    """Debian's /lib/init/rc for runlevel 2 (startpar -M start), on this tree's scripts."""
    ran = root.parent / "ran"
    ran.unlink(missing_ok=True)
    script = (f"mount --bind {root / 'etc/init.d'} /etc/init.d && "
              f"mount --bind {root / 'etc/rc2.d'} /etc/rc2.d && "
              "exec startpar -p 4 -t 20 -T 3 -M start -P N -R 2")
    subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                   check=True, capture_output=True, timeout=120)
    return ran.read_text().split("\n")[:-1] if ran.exists() else []


def test_the_probe_is_started_last_by_debians_startpar(tmp_path, startpar):
    root = tmp_path / "root"
    debian_host(root)
    before = (root / "etc/init.d/.depend.start").read_text()
    plan = flow.plan(flow.Request("root", root, tmp_path / "work"), flow.read_tree(root, ()))
    assert plan.probe_places == ("etc/init.d/xenlfs-rehearse",
                                 "etc/rc2.d/S99xenlfs-rehearse", "../init.d/xenlfs-rehearse")
    assert any(".depend.start" in change for change in plan.copy_changes())
    # Debian's own grub.cfg entry (multiboot2/module2) is the one rehearsed.
    assert (plan.entry.xen, plan.entry.kernel) == ("/boot/xen-4.17-amd64.gz",
                                                   "/boot/vmlinuz-6.1.0-50-amd64")
    assert "multiboot2\t/boot/xen-4.17-amd64.gz placeholder  dom0_mem=512M ${xen_rm_opts} " \
        "console=com1" in plan.grub_after
    copy = tmp_path / "copy"
    shutil.copytree(root, copy, symlinks=True)
    flow.change_copy(plan, copy)
    # The probe, made harmless here: it only says that it ran.
    (copy / "etc/init.d/xenlfs-rehearse").write_text(
        f'#!/bin/sh\necho "xenlfs-rehearse $1" >> {copy.parent / "ran"}\n')
    ran = run_level_2(copy)
    assert ran[-1] == "xenlfs-rehearse start" and len(ran) == len(SCRIPTS) + 1, ran
    # Without the copy's change startpar never starts it: the rehearsal would wait in vain.
    (copy / "etc/init.d/.depend.start").write_text(before)
    assert "xenlfs-rehearse start" not in run_level_2(copy)
    assert (root / "etc/init.d/.depend.start").read_text() == before  # the host: unchanged
    assert probe.started_last(probe.started_last(before) or "") is None  # once is enough
