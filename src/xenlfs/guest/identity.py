"""What makes a clone its own machine: its name, hostname and hosts line, a fresh machine-id,
new SSH host keys, its own network setting and MAC. Planned inside the clone's root (reading
only, through the confined GuestRoot), then applied in one place, as step 5's edits are."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import secrets
import tempfile
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

from xenlfs import run
from xenlfs.errors import CommandFailed, ToolMissing
from xenlfs.guest import detect, edits
from xenlfs.guest import plan as edit_plan
from xenlfs.guest.rootfs import GuestPathError, GuestRoot

XEN_OUI = (0x00, 0x16, 0x3E)
SSH_DIR = "/etc/ssh"
HOST_KEY = re.compile(r"ssh_host_([a-z0-9]+)_key(\.pub)?")


def new_mac(avoid: Collection[str] = (), randbytes: Callable[[int], bytes] = secrets.token_bytes
            ) -> str:
    """A MAC in Xen's OUI 00:16:3e, as libxl makes one (the fourth octet below 0x80), never
    one of `avoid` (the source's and every other guest's)."""
    taken = {mac.lower() for mac in avoid}
    for _ in range(1000):
        tail = bytearray(randbytes(3))
        tail[0] &= 0x7F
        mac = ":".join(f"{b:02x}" for b in (*XEN_OUI, *tail))
        if mac not in taken:
            return mac
    raise RuntimeError("no free MAC after 1000 draws")  # 2^23 addresses: never in practice


def new_machine_id() -> str:
    """A machine-id as systemd and dbus write it: 32 lower-case hex digits and a newline."""
    return uuid.uuid4().hex + "\n"


@dataclass(frozen=True)
class Options:
    name: str
    hostname: str
    iface: str = "eth0"
    network: edits.Network = field(default_factory=lambda: edits.Network(dhcp=True))


@dataclass(frozen=True)
class RemoveFile:
    path: str
    why: str

    def describe(self) -> str:
        return f"remove {self.path} ({self.why})"

    def apply(self, root: GuestRoot) -> None:
        root.remove(self.path)


@dataclass
class Plan:
    edits: edit_plan.Plan
    removals: list[RemoveFile] = field(default_factory=list)
    key_types: list[str] = field(default_factory=list)  # ssh host keys to make anew
    machine_id: str = ""

    def lines(self, verb: str) -> list[str]:
        out = [f"{verb}: {a.describe()}" for a in self.edits.actions]
        out += [f"{verb}: {r.describe()}" for r in self.removals]
        if self.key_types:
            out.append(f"{verb}: make new SSH host keys ({', '.join(self.key_types)}) with "
                       "this host's ssh-keygen")
        out += [f"already: {line}" for line in self.edits.done]
        out += [f"not applied: {line}" for line in self.edits.skipped]
        out += [f"PROBLEM: {line}" for line in self.edits.problems]
        return out


def plan(root: GuestRoot, opts: Options) -> Plan:
    """The edits that make this copy of the source a machine of its own."""
    system = detect.detect(root)
    result = Plan(edit_plan.Plan(system), machine_id=new_machine_id())
    found = result.edits
    edit_plan.plan_file(root, found, "/etc/hostname", lambda _t: edits.hostname(opts.hostname))
    edit_plan.plan_file(root, found, "/etc/hosts", lambda t: edits.hosts(t, opts.hostname))
    machine_id = result.machine_id
    edit_plan.plan_file(root, found, "/etc/machine-id", lambda _t: machine_id, mode=0o444,
                      why="a fresh machine-id")
    dbus = "/var/lib/dbus/machine-id"
    try:
        kind = root.node(dbus, follow=False).kind
    except GuestPathError as e:
        found.problems.append(f"{dbus}: {e.message}; not changed")
        kind = "missing"
    if kind == "file":  # a symlink to /etc/machine-id is left: it follows that one
        edit_plan.plan_file(root, found, dbus, lambda _t: machine_id, why="dbus's copy")
    if system.init == detect.LFS:
        edit_plan.plan_file(root, found, f"/etc/sysconfig/ifconfig.{opts.iface}",
                          lambda t: edits.ifconfig(t, iface=opts.iface, network=opts.network),
                          why="its own address" if opts.network.ip else "DHCP")
        _check_gateway(root, found, opts)
    else:
        found.skipped.append(f"network: not an LFS-bootscripts guest ({system.evidence}); "
                             f"give {opts.iface} its own address in its own way")
    _plan_host_keys(root, result)
    return result


def _check_gateway(root: GuestRoot, found: edit_plan.Plan, opts: Options) -> None:
    """A static clone keeps the source's GATEWAY unless given one: say so when it lies
    outside the clone's own network (the clone could not reach it)."""
    ip = opts.network.ip
    if not ip or opts.network.gateway:
        return
    written = next((a.new for a in found.actions if isinstance(a, edit_plan.WriteFile)
                    and a.path.endswith(f"ifconfig.{opts.iface}")), None)
    if written is None:
        written = root.read_text(f"/etc/sysconfig/ifconfig.{opts.iface}") or ""
    gateway = next((line.split("=", 1)[1].strip() for line in written.splitlines()
                    if line.startswith("GATEWAY=")), None)
    with contextlib.suppress(ValueError):
        if gateway and ipaddress.IPv4Address(gateway) not in \
                ipaddress.IPv4Interface(ip).network:
            found.skipped.append(f"GATEWAY={gateway} (the source's) lies outside {ip}; "
                                 "kept: give --gateway for the clone's own")


def _plan_host_keys(root: GuestRoot, result: Plan) -> None:
    """Every ssh_host_*_key(.pub) goes; the types the source had are made anew, here: the
    BLFS sshd bootscript only starts sshd, which without host keys would not start."""
    try:
        node = root.node(SSH_DIR)
    except GuestPathError as e:
        result.edits.problems.append(f"{SSH_DIR}: {e.message}; its host keys not changed")
        return
    if node.kind != "dir":
        result.edits.done.append(f"{SSH_DIR}: none (no SSH host keys to replace)")
        return
    types: list[str] = []
    for name in root.listdir(SSH_DIR):
        match = HOST_KEY.fullmatch(name)
        if match is None:
            continue
        result.removals.append(RemoveFile(f"{SSH_DIR}/{name}", "the source's SSH host key"))
        if match[1] not in types:
            types.append(match[1])
    result.key_types = [t for t in ("rsa", "ecdsa", "ed25519", "dsa") if t in types] + \
        sorted(t for t in types if t not in ("rsa", "ecdsa", "ed25519", "dsa"))


def apply(root: GuestRoot, result: Plan, hostname: str) -> list[str]:
    """Make the planned edits; returns notes (keys that could not be made)."""
    edit_plan.apply(root, result.edits)
    for removal in result.removals:
        removal.apply(root)
    notes = []
    for key_type in result.key_types:
        try:
            private, public = _host_key(key_type, hostname)
        except (CommandFailed, ToolMissing) as e:
            notes.append(f"no new {key_type} SSH host key ({e.message}); run ssh-keygen -A "
                         "in the guest before sshd starts")
            continue
        root.write_text(f"{SSH_DIR}/ssh_host_{key_type}_key", private, mode=0o600)
        root.write_text(f"{SSH_DIR}/ssh_host_{key_type}_key.pub", public, mode=0o644)
    return notes


def _host_key(key_type: str, hostname: str) -> tuple[str, str]:
    """A new key pair made by ssh-keygen in a private directory of the host."""
    with tempfile.TemporaryDirectory(prefix="xenlfs-hostkey-") as tmp:
        path = Path(tmp) / "key"
        run.run(["ssh-keygen", "-q", "-t", key_type, "-N", "", "-C", f"root@{hostname}",
                 "-f", path])
        private = path.read_text()
        public = path.with_suffix(".pub").read_text()
        os.unlink(path)
        return private, public
