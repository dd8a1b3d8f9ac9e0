"""Each of the hint's step-5 edits on fixture text: the forms real systems have, and that
every edit leaves its own output alone (a second prepare converges)."""

from __future__ import annotations

import pytest

from xenlfs.errors import UsageError
from xenlfs.guest import edits
from xenlfs.lab import lfs_files

# The LFS book's fstab with what other hosts have too: a /home by UUID, an NFS share.
LFS_FSTAB = lfs_files.FSTAB.replace(
    "/dev/sda3 ", "UUID=1234-abcd /home        ext4     defaults            1     2\n/dev/sda3 "
).replace("# End", "server:/export /srv/nfs     nfs      defaults            0     0\n# End")
assert LFS_FSTAB.count("UUID=") == 1 and LFS_FSTAB.count("server:") == 1


def entries(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_fstab_root_on_the_guest_disk_virtual_kept_host_disks_out():
    got = edits.fstab(LFS_FSTAB)
    rows = entries(got)
    assert rows[0] == ["/dev/xvda1", "/", "ext4", "defaults", "1", "1"]
    assert [r[2] for r in rows[1:6]] == ["proc", "sysfs", "devpts", "tmpfs", "devtmpfs"]
    assert rows[6][0] == "server:/export"  # not a host disk: kept
    assert not any(r[0].startswith(("/dev/sd", "UUID=")) for r in rows)
    assert f"{edits.HOST_MARK}/dev/sda1      /boot" in got
    assert "# Begin /etc/fstab" in got and "# End /etc/fstab" in got
    assert edits.fstab(got) == got


def test_fstab_other_root_device_fstype_and_swap():
    got = edits.fstab(LFS_FSTAB, root="/dev/xvdb", fstype="ext3", swap="/dev/xvda2")
    rows = entries(got)
    assert rows[0][:3] == ["/dev/xvdb", "/", "ext3"]
    assert rows[-1][:3] == ["/dev/xvda2", "swap", "swap"]
    assert sum(r[2] == "swap" for r in rows) == 1
    assert edits.fstab(got, root="/dev/xvdb", fstype="ext3", swap="/dev/xvda2") == got


def test_fstab_without_root_line_gets_one_before_the_first_entry():
    text = "# comment\nproc /proc proc defaults 0 0\n"
    got = edits.fstab(text)
    assert got.splitlines()[0] == "# comment"
    assert entries(got)[0][:2] == ["/dev/xvda1", "/"]


def test_fstab_missing_file_gets_lfs_lines():
    rows = entries(edits.fstab(None))
    assert [r[1] for r in rows] == ["/", "/proc", "/sys", "/dev/pts", "/run", "/dev"]


LFS_INITTAB = """\
id:3:initdefault:
si::sysinit:/etc/rc.d/init.d/rc S
1:2345:respawn:/sbin/agetty --noclear tty1 9600
2:2345:respawn:/sbin/agetty tty2 9600
3:2345:respawn:/sbin/agetty tty3 9600
s0:2345:respawn:/sbin/agetty -L ttyS0 115200 vt100
"""
DEBIAN_INITTAB = """\
1:2345:respawn:/sbin/getty --noclear 38400 tty1
2:23:respawn:/sbin/getty 38400 tty2
#T0:23:respawn:/sbin/getty -L ttyS0 9600 vt100
"""
MINGETTY_INITTAB = """\
1:2345:respawn:/sbin/mingetty tty1
2:2345:respawn:/sbin/mingetty /dev/tty2
"""


def test_inittab_lfs_agetty():
    got = edits.inittab(LFS_INITTAB).splitlines()
    assert got[2] == "1:2345:respawn:/sbin/agetty --noclear hvc0 9600"
    assert got[3:5] == ["#2:2345:respawn:/sbin/agetty tty2 9600",
                        "#3:2345:respawn:/sbin/agetty tty3 9600"]
    assert got[5] == "s0:2345:respawn:/sbin/agetty -L ttyS0 115200 vt100"  # serial stays
    assert got[:2] == LFS_INITTAB.splitlines()[:2]


@pytest.mark.parametrize("text", [DEBIAN_INITTAB, MINGETTY_INITTAB])
def test_inittab_getty_and_mingetty_forms(text: str):
    got = edits.inittab(text).splitlines()
    assert got[0] == "1:2345:respawn:/sbin/agetty --noclear hvc0 9600"
    assert got[1].startswith("#2:")
    assert edits.inittab("\n".join(got) + "\n") == "\n".join(got) + "\n"


def test_inittab_is_idempotent_and_keeps_an_existing_hvc0_getty():
    once = edits.inittab(LFS_INITTAB)
    assert edits.inittab(once) == once
    already = "h:2345:respawn:/sbin/agetty hvc0 9600\n1:2345:respawn:/sbin/agetty tty1 9600\n"
    assert edits.inittab(already) == ("h:2345:respawn:/sbin/agetty hvc0 9600\n"
                                      "#1:2345:respawn:/sbin/agetty tty1 9600\n")


def test_inittab_without_gettys_gets_one_on_hvc0():
    got = edits.inittab("id:3:initdefault:\n")
    assert got.splitlines()[-1] == "hv:2345:respawn:/sbin/agetty --noclear hvc0 9600"


STATIC = """\
ONBOOT=yes
IFACE=enp3s0
SERVICE=ipv4-static
IP=192.168.1.2
GATEWAY=192.168.1.1
PREFIX=24
BROADCAST=192.168.1.255
"""


def keys(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def test_ifconfig_keeps_static_settings_and_sets_the_interface():
    got = keys(edits.ifconfig(STATIC, iface="eth0"))
    assert got["IFACE"] == "eth0" and got["IP"] == "192.168.1.2"
    assert got["SERVICE"] == "ipv4-static" and got["ONBOOT"] == "yes"


def test_ifconfig_static_with_custom_interface_name():
    net = edits.Network(ip="10.1.2.3/16", gateway="10.1.0.1")
    text = edits.ifconfig(STATIC, iface="enX0", network=net)
    assert keys(text) == {"ONBOOT": "yes", "IFACE": "enX0", "SERVICE": "ipv4-static",
                          "IP": "10.1.2.3", "GATEWAY": "10.1.0.1", "PREFIX": "16",
                          "BROADCAST": "10.1.255.255"}
    assert edits.ifconfig(text, iface="enX0", network=net) == text


def test_ifconfig_dhcp_drops_static_keys():
    got = keys(edits.ifconfig(STATIC, network=edits.Network(dhcp=True)))
    assert got == {"ONBOOT": "yes", "IFACE": "eth0", "SERVICE": "dhcpcd",
                   "DHCP_START": '"-b -q"', "DHCP_STOP": '"-k"'}


def test_ifconfig_new_file_without_address_is_dhcp():
    assert keys(edits.ifconfig(None, iface="eth1"))["SERVICE"] == "dhcpcd"


@pytest.mark.parametrize("ip", ["10.0.0.1", "300.1.1.1/24", "x/24"])
def test_network_refuses_bad_addresses(ip: str):
    with pytest.raises(UsageError):
        edits.Network(ip=ip)


def test_hostname_and_hosts():
    assert edits.hostname("xenguest1") == "xenguest1\n"
    got = edits.hosts("127.0.0.1 localhost\n127.0.1.1 lfs-host\n::1 localhost\n", "xenguest1")
    assert got == "127.0.0.1 localhost\n127.0.1.1      xenguest1\n::1 localhost\n"
    assert edits.hosts(got, "xenguest1") == got
    assert edits.hosts(None, "g").splitlines() == ["127.0.0.1      localhost",
                                                   "127.0.1.1      g"]
    with pytest.raises(UsageError):
        edits.hostname("-bad_name")


def test_root_password_hash():
    text = "root:*:19000:0:99999:7:::\nbin:*:19000::::::\n"
    got = edits.shadow_root(text, "$6$salt$abc")
    assert got.splitlines() == ["root:$6$salt$abc:19000:0:99999:7:::", "bin:*:19000::::::"]
    with pytest.raises(UsageError):
        edits.shadow_root(text, "plain-password")


def test_authorized_key_added_once():
    key = "ssh-ed25519 AAAAC3Nza me@host"
    once = edits.authorized_keys("ssh-rsa AAAA other\n", key)
    assert once == f"ssh-rsa AAAA other\n{key}\n"
    assert edits.authorized_keys(once, key) == once
