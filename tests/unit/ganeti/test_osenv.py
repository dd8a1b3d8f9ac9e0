"""Ganeti's environment read into an instance; the OSP_* parameters checked, one line each."""

from __future__ import annotations

from pathlib import Path

import pytest

from xenlfs.errors import UsageError
from xenlfs.ganeti import osenv

ENV = {"OS_API_VERSION": "20", "INSTANCE_NAME": "web1.example.org", "OS_VARIANT": "lfs",
       "DISK_COUNT": "1", "DISK_0_PATH": "/srv/ganeti/file-storage/web1/disk0",
       "DISK_0_BACKEND_TYPE": "file:loop", "INSTANCE_HV_root_path": "/dev/xvda1"}
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests root@test"


def test_instance_from_ganeti_environment() -> None:
    inst = osenv.instance({**ENV, "OSP_IP": "dhcp", "INSTANCE_REINSTALL": "1"})
    assert inst.name == "web1.example.org" and inst.hostname == "web1"
    assert inst.disk == Path("/srv/ganeti/file-storage/web1/disk0")
    assert inst.root_device == "/dev/xvda1" and inst.reinstall
    opts = inst.guest_options("eth0")
    assert opts.hostname == "web1" and opts.network.dhcp and opts.root_device == "/dev/xvda1"


def test_parameters_reach_the_guest_options() -> None:
    inst = osenv.instance({**ENV, "OSP_HOSTNAME": "www", "OSP_IP": "10.1.2.3/24",
                           "OSP_GATEWAY": "10.1.2.1", "OSP_SSH_KEY": KEY, "OSP_SWAP": "/dev/xvdb",
                           "OSP_ROOT_PASSWORD_HASH": "$6$salt$hash", "OSP_UNKNOWN": "x"})
    opts = inst.guest_options("enX0")
    assert (opts.hostname, opts.network.ip, opts.network.gateway) == ("www", "10.1.2.3/24",
                                                                      "10.1.2.1")
    assert opts.ssh_key == KEY and opts.swap_device == "/dev/xvdb" and opts.iface == "enX0"
    assert opts.root_password_hash == "$6$salt$hash"


def test_root_device_follows_root_path() -> None:
    env = {k: v for k, v in ENV.items() if k != "INSTANCE_HV_root_path"}
    assert osenv.instance(env).root_device == "/dev/xvda1"  # Ganeti's xen-pvm default
    assert osenv.instance(env).partitioned
    whole = osenv.instance({**env, "INSTANCE_HV_root_path": "/dev/xvda"})
    assert whole.root_device == "/dev/xvda" and not whole.partitioned
    assert osenv.instance({**env, "INSTANCE_HV_root_path": "/dev/sda1"}).partitioned


@pytest.mark.parametrize("root", ["/dev/xvda2", "/dev/xvdb1", "/dev/mapper/root", "xvda1",
                                  "/dev/xvda1 ro"])
def test_a_root_path_not_on_disk_zero_is_refused(root: str) -> None:
    with pytest.raises(UsageError, match="root_path") as caught:
        osenv.instance({**ENV, "INSTANCE_HV_root_path": root})
    assert "gnt-instance modify -H root_path=" in str(caught.value)


@pytest.mark.parametrize(("change", "message"), [
    ({"INSTANCE_NAME": ""}, r"\$INSTANCE_NAME is not set"),
    ({"OS_API_VERSION": "15"}, "speaks 20"),
    ({"DISK_COUNT": "0"}, "has no disk"),
    ({"INSTANCE_NAME": "a/b"}, "cannot name a guest"),
    ({"OSP_HOSTNAME": "-bad"}, "parameter hostname='-bad'"),
])
def test_bad_environment_is_one_clear_error(change: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        osenv.instance({**ENV, **change})


def test_check_parameters_names_each_bad_one() -> None:
    assert osenv.check_parameters({"hostname": "ok", "ip": "dhcp"}) == []
    assert osenv.check_parameters({"ip": "10.0.0.1/24", "gateway": "10.0.0.254",
                                   "root_password_hash": "$6$a$b", "ssh_key": KEY,
                                   "swap": "/dev/xvdb"}) == []
    problems = osenv.check_parameters({"hostname": "under_score", "ip": "10.0.0.300/24",
                                       "gateway": "nope", "root_password_hash": "plain",
                                       "ssh_key": "a\nb", "swap": "xvdb"})
    assert [p.split("=", 1)[0] for p in problems] == [
        "parameter hostname", "parameter ip", "parameter gateway",
        "parameter root_password_hash", "parameter ssh_key", "parameter swap"]
    assert all("\n" not in p for p in problems)
    assert osenv.check_parameters({"ip": "dhcp", "gateway": "10.0.0.1"}) == [
        "parameter gateway: goes with a static ip (ip=ADDR/PREFIX)"]
