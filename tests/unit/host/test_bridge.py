from __future__ import annotations

import pytest

from xenlfs.errors import SourceError
from xenlfs.host import bridge

ETH0 = """\
# eth0, static
ONBOOT=yes
IFACE=eth0
SERVICE="ipv4-static"   # LFS's static service
IP=192.168.1.2
GATEWAY='192.168.1.1'
PREFIX=24
BROADCAST=192.168.1.255
"""


def test_parse_handles_quotes_comments_and_export():
    values = bridge.parse_ifconfig(ETH0 + 'export MTU=1500\nNOTE="a \\"b\\" #c"\n', "f")
    assert values["SERVICE"] == "ipv4-static"
    assert values["GATEWAY"] == "192.168.1.1"
    assert values["MTU"] == "1500"
    assert values["NOTE"] == 'a "b" #c'


@pytest.mark.parametrize(("line", "col", "what"), [
    ("IP 192.168.1.2", 1, "expected KEY=value"),
    ("  IP=a b", 8, "unquoted space"),
    ('SERVICE="ipv4-static', 9, "unterminated"),
    ("IP=$(hostname)", 4, "'$'"),
    ("1IP=x", 1, "expected KEY=value"),
])
def test_garbage_is_reported_with_line_and_column(line, col, what):
    with pytest.raises(SourceError) as e:
        bridge.parse_ifconfig("ONBOOT=yes\n" + line + "\n", "/etc/sysconfig/ifconfig.eth0")
    assert (e.value.line, e.value.col) == (2, col)
    assert what in e.value.what
    assert str(e.value).startswith(f"/etc/sysconfig/ifconfig.eth0:2:{col}: ")


def test_bridge_file_takes_the_ip_settings_and_the_interface():
    text = bridge.render("eth0", "xenbr0", bridge.parse_ifconfig(ETH0, "f"))
    values = bridge.parse_ifconfig(text, "out")
    assert values["IFACE"] == "xenbr0"
    assert values["SERVICE"] == "bridge ipv4-static"
    assert values["INTERFACE_COMPONENTS"] == "eth0"
    assert values["ONBOOT"] == "yes" and values["STP"] == "no"
    for key in ("IP", "GATEWAY", "PREFIX", "BROADCAST"):
        assert values[key] == bridge.parse_ifconfig(ETH0, "f")[key]


def test_dhcp_interface_gives_a_dhcp_bridge():
    text = bridge.render("enp1s0", "xenbr0", {"IFACE": "enp1s0", "SERVICE": "dhcpcd"})
    assert bridge.parse_ifconfig(text, "out")["SERVICE"] == "bridge dhcpcd"
