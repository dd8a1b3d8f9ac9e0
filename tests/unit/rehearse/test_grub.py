from __future__ import annotations

import pytest

from xenlfs.errors import PreconditionError, UsageError
from xenlfs.host import grub as host_grub
from xenlfs.rehearse import grub

LFS_CFG = """\
set default=0
set timeout=5
insmod ext2
set root=(hd0,1)

menuentry "GNU/Linux, Linux 6.1-lfs" {
        linux   /vmlinuz-6.1-lfs root=/dev/sda2 ro
}
"""
ENTRY = host_grub.Entry("xenlfs-xen", "LFS, Xen", "/xen.gz", "/vmlinuz-6.1-dom0",
                        "dom0_mem=1024M", "root=/dev/sda2 ro console=tty0", False)
DEBIAN_SUBMENU = """\
submenu 'Xen hypervisor, version 4.17' $menuentry_id_option 'xen-hypervisor-4.17-x' {
\tmenuentry 'Debian GNU/Linux, with Xen 4.17 and Linux 6.1' --class debian {
\t\tinsmod gzio
\t\techo 'Loading Xen 4.17 ...'
\t\tmultiboot2 /boot/xen-4.17-amd64.gz placeholder  ${xen_rm_opts}
\t\tmodule2 /boot/vmlinuz-6.1.0-50-amd64 placeholder root=UUID=abc ro quiet
\t\tmodule2 --nounzip /boot/initrd.img-6.1.0-50-amd64
\t}
}
"""


def test_the_xen_entry_is_found_and_only_it_changes():
    text = host_grub.plan_add(LFS_CFG, ENTRY, make_default=True)
    (entry,) = grub.xen_entries(text)
    assert (entry.id, entry.xen, entry.kernel) == ("xenlfs-xen", "/xen.gz", "/vmlinuz-6.1-dom0")
    copy = grub.rehearsal_copy(text, entry)
    # The host's own lines are all still there, in order; only the entry's loaders changed.
    kept = [line for line in text.splitlines() if "multiboot" not in line and
            "module" not in line]
    body = copy.split("# xenlfs-rehearse: the rehearsed entry")[0]
    assert [line for line in body.splitlines() if line in kept and line] == \
        [line for line in kept if line]
    assert copy.startswith("# xenlfs-rehearse")
    assert "terminal_output serial\n" in copy
    assert "multiboot /xen.gz placeholder dom0_mem=1024M console=com1 com1=115200,8n1\n" in copy
    assert "console=tty0 console=hvc0\n" in copy
    assert copy.rstrip().endswith('set default="xenlfs-xen"\nset timeout=0\nunset fallback')
    host_grub.check_syntax(copy, "copy")


def test_entries_in_a_submenu_are_named_by_their_path():
    (entry,) = grub.xen_entries(LFS_CFG + DEBIAN_SUBMENU)
    # GRUB takes titles too (the id here is a variable host/grub.py does not expand)
    assert entry.default == "Xen hypervisor, version 4.17>Debian GNU/Linux, with Xen 4.17 and " \
        "Linux 6.1"
    assert entry.kernel == "/boot/vmlinuz-6.1.0-50-amd64"
    copy = grub.rehearsal_copy(LFS_CFG + DEBIAN_SUBMENU, entry)
    assert "module2 --nounzip /boot/initrd.img-6.1.0-50-amd64\n" in copy  # not the kernel's
    host_grub.check_syntax(copy, "copy")


def test_a_hosts_own_terminal_output_does_not_take_grub_off_the_serial_port():
    debian = "insmod gfxterm\nterminal_output gfxterm\n" + LFS_CFG + DEBIAN_SUBMENU
    (entry,) = grub.xen_entries(debian)
    lines = grub.rehearsal_copy(debian, entry).splitlines()
    # GRUB runs the whole file, then boots: the last terminal_output is the one in force.
    assert [line for line in lines if line.startswith("terminal_output")][-1] == \
        "terminal_output serial"
    assert lines.index("terminal_output gfxterm") < len(lines) - 1 - lines[::-1].index(
        "terminal_output serial")


def test_choosing_among_several_or_none():
    text = host_grub.plan_add(LFS_CFG + DEBIAN_SUBMENU, ENTRY, make_default=False)
    entries = grub.xen_entries(text)
    assert len(entries) == 2
    with pytest.raises(UsageError, match="several Xen entries") as e:
        grub.choose(entries, None)
    assert "xenlfs-xen" in str(e.value)
    assert grub.choose(entries, "LFS, Xen").id == "xenlfs-xen"
    with pytest.raises(UsageError, match="no Xen entry"):
        grub.choose(entries, "Windows")
    with pytest.raises(PreconditionError, match="no entry that loads Xen"):
        grub.choose(grub.xen_entries(LFS_CFG), None)
