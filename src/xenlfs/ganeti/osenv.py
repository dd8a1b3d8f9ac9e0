"""The environment Ganeti gives an OS script (man ganeti-os-interface; lib/backend.py,
OSCoreEnv and OSEnvironment), read into one value, and the OSP_* parameters checked.

Ganeti keeps the last 20 lines of a script's output for the user, so every problem is one
line naming the parameter, its value and what it should be.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from xenlfs.errors import UsageError
from xenlfs.ganeti import provider
from xenlfs.guest import edits, plan

PARAMETER_NAMES = tuple(name for name, _ in provider.PARAMETERS)


def _required(env: Mapping[str, str], key: str) -> str:
    value = env.get(key, "")
    if not value:
        raise UsageError(f"${key} is not set: this is run by Ganeti as an OS script",
                         hint="Ganeti sets it; by hand, export it as Ganeti would")
    return value


def parameters(env: Mapping[str, str]) -> dict[str, str]:
    """The OSP_* variables, by parameter name (Ganeti upper-cases them, '-' → '_')."""
    return {name: env[f"OSP_{name.upper()}"] for name in PARAMETER_NAMES
            if f"OSP_{name.upper()}" in env}


def check_parameters(params: Mapping[str, str]) -> list[str]:
    """Every problem with the parameters, one line each; [] when they are good."""
    problems = []
    checks = {"hostname": edits.check_hostname, "ip": _check_ip, "gateway": _check_gateway,
              "root_password_hash": lambda v: edits.shadow_root("root:x:0::::::\n", v),
              "ssh_key": lambda v: edits.authorized_keys(None, v), "swap": _check_device}
    for name, value in params.items():
        try:
            checks[name](value)
        except UsageError as e:
            problems.append(f"parameter {name}={value!r}: {e.message}"
                            + (f" ({e.hint})" if e.hint else ""))
    if params.get("gateway") and params.get("ip", "dhcp") == "dhcp":
        problems.append("parameter gateway: goes with a static ip (ip=ADDR/PREFIX)")
    return problems


def _check_ip(value: str) -> None:
    if value != "dhcp":
        edits.Network(ip=value)


def _check_gateway(value: str) -> None:
    try:
        ipaddress.IPv4Address(value)
    except ValueError as e:
        raise UsageError(str(e), hint="an IPv4 address, e.g. 192.168.1.1") from e


def _check_device(value: str) -> None:
    if not value.startswith("/dev/") or any(c.isspace() or ord(c) < 32 for c in value):
        raise UsageError("not a device path", hint="e.g. /dev/xvdb")


@dataclass(frozen=True)
class Instance:
    """What an OS script is asked to do, from Ganeti's environment."""

    name: str
    variant: str
    params: dict[str, str] = field(default_factory=dict)
    disk: Path | None = None  # DISK_0_PATH (IMPORT_/EXPORT_DEVICE for import/export)
    disk_backend: str = ""  # "block" or "file:DRIVER"
    root_device: str = "/dev/xvda1"
    reinstall: bool = False

    @property
    def partitioned(self) -> bool:
        """Root on disk 0's first partition (/dev/xvda1), not on the whole disk (/dev/xvda)."""
        return self.root_device[-1].isdigit()

    @property
    def hostname(self) -> str:
        return self.params.get("hostname") or self.name.split(".", 1)[0]

    def guest_options(self, iface: str) -> plan.GuestOptions:
        ip = self.params.get("ip")
        network = edits.Network(dhcp=ip == "dhcp", ip=ip if ip and ip != "dhcp" else None,
                                gateway=self.params.get("gateway"))
        return plan.GuestOptions(
            name=self.name, hostname=edits.check_hostname(self.hostname),
            root_device=self.root_device, swap_device=self.params.get("swap"), iface=iface,
            network=network, root_password_hash=self.params.get("root_password_hash"),
            ssh_key=self.params.get("ssh_key"))


def instance(env: Mapping[str, str], disk_key: str = "DISK_0_PATH") -> Instance:
    """The instance a create, rename, import or export script works on."""
    api = _required(env, "OS_API_VERSION")
    if api != str(provider.API_VERSION):
        raise UsageError(f"OS_API_VERSION is {api}; this provider speaks {provider.API_VERSION}")
    name = _required(env, "INSTANCE_NAME")
    if "/" in name or any(ord(c) < 33 for c in name):
        raise UsageError(f"INSTANCE_NAME {name!r} cannot name a guest")
    params = parameters(env)
    problems = check_parameters(params)
    if problems:
        raise UsageError("; ".join(problems))
    count = int(env.get("DISK_COUNT", "0") or 0)
    if count < 1:
        raise UsageError("the instance has no disk (DISK_COUNT is 0)",
                         hint="give it one: gnt-instance add … -s SIZE (or --disk 0:size=…)")
    return Instance(name=name, variant=env.get("OS_VARIANT", ""), params=params,
                    disk=Path(_required(env, disk_key)),
                    disk_backend=env.get("DISK_0_BACKEND_TYPE", ""),
                    root_device=root_device(env),
                    reinstall=env.get("INSTANCE_REINSTALL") == "1")


def root_device(env: Mapping[str, str]) -> str:
    """The guest's root device. Ganeti gives disk 0 to the guest whole, as xvda (blockdev_prefix
    + 'a'), and the kernel's root= is the hypervisor's root_path (Ganeti's default for
    xen-pvm: /dev/xvda1): the root goes where root_path says, and fstab names it."""
    root = env.get("INSTANCE_HV_root_path", "").strip() or "/dev/xvda1"
    match = re.fullmatch(r"/dev/([a-z]+)(1?)", root)
    if not match or match[1][-1:] != "a":
        raise UsageError(f"root_path {root!r}: xenlfs puts the root on disk 0, whole "
                         "(/dev/xvda) or its one partition (/dev/xvda1)",
                         hint="gnt-instance modify -H root_path=/dev/xvda1 (or set it "
                         "cluster-wide: gnt-cluster modify -H xen-pvm:root_path=/dev/xvda1)")
    return root
