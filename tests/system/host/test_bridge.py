"""bridge setup on a fixture /etc/sysconfig; bridge status on a real bridge in a private
network namespace (the host's own network is never touched)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from xenlfs.host import bridge
from xenlfs.lab import lfs_files

ETH0 = ("# /etc/sysconfig/ifconfig.eth0 (LFS book, General Network Configuration)\n"
        + lfs_files.IFCONFIG_ETH0)


def sysconfig(tmp_path: Path, text: str = ETH0) -> Path:
    d = tmp_path / "etc/sysconfig"
    d.mkdir(parents=True)
    (d / "ifconfig.eth0").write_text(text)
    return d


def test_setup_moves_eth0_onto_xenbr0_once(xenlfs, tmp_path):
    d = sysconfig(tmp_path)
    dry = xenlfs("bridge", "setup", "--root", str(tmp_path), "--dry-run")
    assert dry.returncode == 0 and "+IFACE=xenbr0" in dry.stdout
    assert f"mv {d}/ifconfig.eth0 {d}/xenlfs-retired/ifconfig.eth0" in dry.stdout
    assert sorted(p.name for p in d.iterdir()) == ["ifconfig.eth0"]

    result = xenlfs("bridge", "setup", "--root", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "ifdown eth0; ifup xenbr0" in result.stderr
    # The LFS network bootscript brings up every /etc/sysconfig/ifconfig.*: only the bridge.
    assert sorted(p.name for p in d.glob("ifconfig.*")) == ["ifconfig.xenbr0"]
    assert (d / "xenlfs-retired/ifconfig.eth0").read_text() == ETH0
    values = bridge.parse_ifconfig((d / "ifconfig.xenbr0").read_text(), "xenbr0")
    assert values["SERVICE"] == "bridge ipv4-static"
    assert values["INTERFACE_COMPONENTS"] == "eth0" and values["IP"] == "192.168.1.2"
    # LFS's ifup brings IFACE up before its services unless it is virtual (BLFS's bridge page).
    assert values["VIRTINT"] == "yes"
    # The file is valid shell, as ifup sources it.
    out = subprocess.run(["sh", "-c", f'. "{d}/ifconfig.xenbr0"; echo "$IFACE $SERVICE"'],
                         capture_output=True, text=True, check=True).stdout
    assert out == "xenbr0 bridge ipv4-static\n"

    again = xenlfs("bridge", "setup", "--root", str(tmp_path))
    assert again.returncode == 0 and "nothing to do" in again.stderr


def test_lfs_bootscripts_without_bridge_service_get_xenlfs_own(xenlfs, tmp_path):
    d = sysconfig(tmp_path)
    services = tmp_path / "lib/services"
    services.mkdir(parents=True)
    (services / "ipv4-static").write_text("#!/bin/sh\n")
    dry = xenlfs("bridge", "setup", "--root", str(tmp_path), "--dry-run")
    assert dry.returncode == 0 and "has no bridge service" in dry.stderr
    assert not (services / "bridge").exists()
    result = xenlfs("bridge", "setup", "--root", str(tmp_path))
    assert result.returncode == 0, result.stderr
    script = services / "bridge"
    assert script.read_text() == bridge.BRIDGE_SERVICE and os.access(script, os.X_OK)
    assert subprocess.run(["sh", "-n", str(script)]).returncode == 0
    assert (d / "ifconfig.xenbr0").is_file()
    assert "nothing to do" in xenlfs("bridge", "setup", "--root", str(tmp_path)).stderr


def test_garbage_in_ifconfig_is_located_and_nothing_is_written(xenlfs, tmp_path):
    d = sysconfig(tmp_path, ETH0 + 'GATEWAY="192.168.1.1\n')
    result = xenlfs("bridge", "setup", "--root", str(tmp_path))
    assert result.returncode == 1
    assert f"{d}/ifconfig.eth0:9:9: unterminated \" quote" in result.stderr
    assert sorted(p.name for p in d.iterdir()) == ["ifconfig.eth0"]


def test_missing_interface_file_says_what_to_do(xenlfs, tmp_path):
    sysconfig(tmp_path)
    result = xenlfs("bridge", "setup", "--root", str(tmp_path), "--iface", "enp1s0")
    assert result.returncode == 3 and "ifconfig.enp1s0 does not exist" in result.stderr


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"xenlfs-test-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True)


def ns(name: str, *argv: str) -> None:
    subprocess.run(["ip", "-n", name, *argv], check=True)


def status_in(name: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), XDG_CONFIG_HOME="/nonexistent")
    return subprocess.run(["ip", "netns", "exec", name, sys.executable, "-m", "xenlfs",
                           "bridge", "status", *extra], capture_output=True, text=True, env=env,
                          check=False)


def test_status_of_a_real_bridge_in_a_private_namespace(netns):
    absent = status_in(netns, "--json")
    assert absent.returncode == 1 and json.loads(absent.stdout)["exists"] is False

    ns(netns, "link", "add", "xenbr0", "type", "bridge")
    ns(netns, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1")
    down = status_in(netns)
    assert down.returncode == 1 and "down" in down.stdout and "no ports" in down.stdout

    ns(netns, "link", "set", "veth0", "master", "xenbr0")
    for link in ("veth0", "veth1", "xenbr0"):
        ns(netns, "link", "set", link, "up")
    up = status_in(netns, "--json")
    report = json.loads(up.stdout)
    assert up.returncode == 0, up.stdout
    assert report["healthy"] and report["is_bridge"] and report["up"]
    assert [p["name"] for p in report["ports"]] == ["veth0"]

    not_bridge = status_in(netns, "--bridge", "veth1")
    assert not_bridge.returncode == 1 and "not a bridge" in not_bridge.stdout


@pytest.mark.parametrize(("flag", "value"), [("--bridge", "../x"), ("--bridge", "../../passwd"),
                                             ("--iface", "eth0/../../x"), ("--iface", "a b"),
                                             ("--bridge", "x" * 16), ("--bridge", ""),
                                             ("--bridge", "-x"), ("--iface", "eth0\nIP=1")])
def test_bad_interface_names_are_refused_before_anything_is_read(xenlfs, tmp_path, flag, value):
    d = sysconfig(tmp_path)
    result = xenlfs("bridge", "setup", "--root", str(tmp_path), f"{flag}={value}")
    assert result.returncode == 2, result.stderr
    assert "is not an interface name" in result.stderr and "internal error" not in result.stderr
    assert sorted(p.name for p in d.iterdir()) == ["ifconfig.eth0"]
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["etc", "ifconfig.eth0", "sysconfig"]


@pytest.mark.parametrize("content", [b"IP=192.168.1.2\n\x00\x01\x02\xff",
                                     "# Ethernet de la cuisine\nIP=10.0.0.2\n".encode("latin-1")
                                     .replace(b"cuisine", b"cuisin\xe9")])
def test_binary_or_latin1_ifconfig_is_an_error_and_left_alone(xenlfs, tmp_path, content):
    d = sysconfig(tmp_path)
    (d / "ifconfig.eth0").write_bytes(content)
    result = xenlfs("bridge", "setup", "--root", str(tmp_path))
    assert result.returncode == 1, result.stderr
    assert f"{d / 'ifconfig.eth0'}:" in result.stderr and "internal error" not in result.stderr
    assert (d / "ifconfig.eth0").read_bytes() == content
    assert sorted(p.name for p in d.iterdir()) == ["ifconfig.eth0"]
