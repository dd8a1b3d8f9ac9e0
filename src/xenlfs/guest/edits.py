"""The hint's hand edits of the guest's files, one small pure function each (text in, text out).

Each is idempotent: run on its own output it changes nothing, so a second `guest prepare`
converges. Which of them applies to a snapshot is decided in plan.py.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from xenlfs.errors import UsageError

# fstab lines for these stay: the guest needs them and they name no host device (hint step 5).
VIRTUAL_FS = frozenset({"proc", "sysfs", "devpts", "tmpfs", "devtmpfs", "cgroup", "cgroup2",
                        "securityfs", "debugfs", "tracefs", "efivarfs", "mqueue", "hugetlbfs",
                        "configfs", "pstore", "bpf", "fusectl", "binfmt_misc", "ramfs"})
# A spec naming a local disk: it is the host's, and a domU cannot see it.
HOST_DEVICE = re.compile(r"^(/dev/|UUID=|LABEL=|PARTUUID=|PARTLABEL=|ID=)")
HOST_MARK = "#xenlfs: host device, not in the guest: "

# LFS's fstab for a new system has these; a snapshot without an fstab gets them.
LFS_VIRTUAL_LINES = (
    "proc           /proc        proc     nosuid,noexec,nodev 0     0",
    "sysfs          /sys         sysfs    nosuid,noexec,nodev 0     0",
    "devpts         /dev/pts     devpts   gid=5,mode=620      0     0",
    "tmpfs          /run         tmpfs    defaults            0     0",
    "devtmpfs       /dev         devtmpfs mode=0755,nosuid    0     0",
)


def _lines(text: str | None) -> list[str]:
    return (text or "").splitlines()


def _joined(lines: list[str]) -> str:
    return "\n".join(lines) + "\n" if lines else ""


def fstab_root_line(device: str, fstype: str) -> str:
    return f"{device:<14} /            {fstype:<8} defaults            1     1"


_FSTAB_SPEC = re.compile(r"^(/dev/|(UUID|LABEL|PARTUUID|PARTLABEL)=)\S+$")


def check_swap(device: str) -> str:
    """An fstab device field: a /dev path or UUID=/LABEL=…, nothing that splits the line."""
    if not _FSTAB_SPEC.fullmatch(device) or not device.isprintable():
        raise UsageError(f"--swap {device!r} is not a device fstab can name",
                         hint="the guest's swap device, e.g. --swap /dev/xvda2 (or UUID=...)")
    return device


def fstab(text: str | None, *, root: str = "/dev/xvda1", fstype: str = "ext4",
          swap: str | None = None) -> str:
    """Root on the guest's virtual disk; virtual filesystems kept; the host's disks and swap
    commented out (the domU cannot see them); a swap line for the guest's own swap."""
    if swap:
        check_swap(swap)
    if text is None:
        lines = [fstab_root_line(root, fstype), *LFS_VIRTUAL_LINES]
        if swap:
            lines.append(f"{swap:<14} swap         swap     pri=1               0     0")
        return "# /etc/fstab of a Xen guest, written by xenlfs\n" + _joined(lines)
    out: list[str] = []
    root_done = False
    swap_line = f"{swap:<14} swap         swap     pri=1               0     0" if swap else None
    for line in _lines(text):
        fields = line.split()
        if not fields or fields[0].startswith("#") or len(fields) < 3:
            out.append(line)
            continue
        spec, mountpoint, fstype_here = fields[0], fields[1], fields[2]
        if mountpoint == "/":
            if not root_done:
                out.append(line if (spec, fstype_here) == (root, fstype)
                           else fstab_root_line(root, fstype))
                root_done = True
            continue
        if swap and spec == swap:
            swap_line = None if fstype_here == "swap" else swap_line
            out.append(line)
        elif fstype_here in VIRTUAL_FS or not HOST_DEVICE.match(spec):
            out.append(line)
        else:
            out.append(HOST_MARK + line)
    if not root_done:
        first = next((i for i, line in enumerate(out) if line.strip()
                      and not line.lstrip().startswith("#")), len(out))
        out.insert(first, fstab_root_line(root, fstype))
    if swap_line:
        out.append(swap_line)
    return _joined(out)


GETTYS = ("agetty", "getty", "mingetty", "fgetty")
_VT = re.compile(r"^(/dev/)?(tty\d+|vc/\d+)$")


def _getty_tty(process: str) -> str | None:
    """The terminal a getty process line serves, or None if it is not a getty."""
    words = process.split()
    if not words or words[0].rsplit("/", 1)[-1] not in GETTYS:
        return None
    return next((w for w in words[1:] if not w.startswith("-") and not w.isdigit()), "")


def hvc_getty(ident: str, runlevels: str, console: str = "hvc0") -> str:
    return f"{ident}:{runlevels}:respawn:/sbin/agetty --noclear {console} 9600"


def inittab(text: str, *, console: str = "hvc0") -> str:
    """The first getty on a virtual terminal serves hvc0 instead; the other virtual-terminal
    gettys are commented out (a domU has no ttys). Serial and other lines stay."""
    out: list[str] = []
    has_console = any(_getty_tty(line.split(":", 3)[3]) in (console, f"/dev/{console}")
                      for line in _lines(text)
                      if not line.lstrip().startswith("#") and line.count(":") >= 3)
    for line in _lines(text):
        if line.lstrip().startswith("#") or line.count(":") < 3:
            out.append(line)
            continue
        ident, runlevels, _action, process = line.split(":", 3)
        tty = _getty_tty(process)
        if tty is None or not _VT.match(tty):
            out.append(line)
        elif not has_console:
            out.append(hvc_getty(ident, runlevels, console))
            has_console = True
        else:
            out.append("#" + line)
    if not has_console:
        out.append(hvc_getty("hv", "2345", console))
    return _joined(out)


@dataclass(frozen=True)
class Network:
    """The guest's network: static (ip with prefix) or DHCP."""

    dhcp: bool = False
    ip: str | None = None  # "192.168.1.2/24"
    gateway: str | None = None
    broadcast: str | None = None

    def __post_init__(self) -> None:
        if self.dhcp and self.ip:
            raise UsageError("give either --dhcp or --ip, not both")
        if self.ip:
            try:
                ipaddress.IPv4Interface(self.ip)
            except ValueError as e:
                raise UsageError(f"--ip {self.ip}: {e}", hint="e.g. --ip 192.168.1.2/24") from e
            if "/" not in self.ip:
                raise UsageError(f"--ip {self.ip} needs a prefix length",
                                 hint="e.g. --ip 192.168.1.2/24")
        for flag, value in (("--gateway", self.gateway), ("--broadcast", self.broadcast)):
            if value is not None:
                try:  # written as is into ifconfig.*: a newline would add a line
                    ipaddress.IPv4Address(value)
                except ValueError:
                    raise UsageError(f"{flag} {value!r} is not an IPv4 address",
                                     hint=f"e.g. {flag} 192.168.1.1") from None

    def keys(self) -> dict[str, str]:
        if self.dhcp:
            return {"SERVICE": "dhcpcd", "DHCP_START": '"-b -q"', "DHCP_STOP": '"-k"'}
        if not self.ip:
            return {}
        interface = ipaddress.IPv4Interface(self.ip)
        keys = {"SERVICE": "ipv4-static", "IP": str(interface.ip)}
        if self.gateway:
            keys["GATEWAY"] = self.gateway
        keys["PREFIX"] = str(interface.network.prefixlen)
        keys["BROADCAST"] = self.broadcast or str(interface.network.broadcast_address)
        return keys


STATIC_KEYS = ("IP", "GATEWAY", "PREFIX", "BROADCAST")
DHCP_KEYS = ("DHCP_START", "DHCP_STOP")
_ASSIGN = re.compile(r"^\s*([A-Z_][A-Z0-9_]*)=")


_IFACE = re.compile(r"[A-Za-z0-9_.:-]{1,15}")


def check_iface(name: str) -> str:
    """A Linux interface name: it names etc/sysconfig/ifconfig.NAME and its IFACE line."""
    if not _IFACE.fullmatch(name) or name in (".", ".."):
        raise UsageError(f"--iface {name!r} is not a network interface name",
                         hint="1 to 15 letters, digits, '_', '.', ':' or '-', e.g. eth0 or enX0")
    return name


def ifconfig(text: str | None, *, iface: str = "eth0", network: Network | None = None) -> str:
    """LFS's etc/sysconfig/ifconfig.<iface>: IFACE is the guest's interface (the hint: a domU's
    first NIC, whatever the host's is called); static or DHCP as asked, else as it was."""
    network = network or Network()
    wanted = {"ONBOOT": "yes", "IFACE": iface, **network.keys()}
    if text is None and not network.ip and not network.dhcp:
        wanted.update(Network(dhcp=True).keys())
    drop = DHCP_KEYS if network.ip else STATIC_KEYS if network.dhcp else ()
    out: list[str] = []
    seen: set[str] = set()
    for line in _lines(text):
        match = _ASSIGN.match(line)
        key = match[1] if match else None
        if key in drop:
            continue
        if key in wanted and key is not None:
            if key not in seen:
                out.append(f"{key}={wanted[key]}")
                seen.add(key)
            continue
        out.append(line)
    out.extend(f"{k}={v}" for k, v in wanted.items() if k not in seen)
    return _joined(out)


_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def check_hostname(name: str) -> str:
    if not _HOSTNAME.match(name):
        raise UsageError(f"{name!r} is not a valid host name",
                         hint="letters, digits and '-', at most 63, not starting or ending "
                         "with '-'")
    return name


def hostname(name: str) -> str:
    return check_hostname(name) + "\n"


def hosts(text: str | None, name: str) -> str:
    """localhost kept (added if missing); the guest's own name on 127.0.1.1, the host's
    name there removed."""
    check_hostname(name)
    out: list[str] = []
    has_localhost = False
    for line in _lines(text):
        fields = line.split("#", 1)[0].split()
        if fields and fields[0] == "127.0.1.1":
            continue
        if fields and fields[0] == "127.0.0.1" and "localhost" in fields[1:]:
            has_localhost = True
        out.append(line)
    mine = f"127.0.1.1      {name}"
    if not has_localhost:
        out.insert(0, "127.0.0.1      localhost")
    index = next(i for i, line in enumerate(out)
                 if line.split()[:1] == ["127.0.0.1"] and "localhost" in line.split())
    out.insert(index + 1, mine)
    return _joined(out)


def check_password_hash(password_hash: str) -> str:
    if not password_hash.startswith("$") or not password_hash.isprintable() \
            or any(c in password_hash for c in ": "):
        raise UsageError("the root password hash must be a crypt(3) hash like $6$salt$...",
                         hint="make one with: openssl passwd -6")
    return password_hash


def shadow_root(text: str | None, password_hash: str) -> str:
    """root's password hash in etc/shadow (the rest of the line and file kept)."""
    check_password_hash(password_hash)
    out: list[str] = []
    found = False
    for line in _lines(text):
        fields = line.split(":")
        if fields[0] == "root" and len(fields) >= 2:
            fields[1] = password_hash
            line = ":".join(fields)
            found = True
        out.append(line)
    if not found:
        out.insert(0, f"root:{password_hash}:19000:0:99999:7:::")
    return _joined(out)


def check_ssh_key(key: str) -> str:
    """One line of printable text, as a public key file (ssh-ed25519 AAAA... comment) is."""
    key = key.strip()
    if not key or not key.isprintable():
        raise UsageError("the SSH key must be one line of a public key file (ssh-ed25519 ...)",
                         hint="give the .pub file, e.g. --ssh-key ~/.ssh/id_ed25519.pub")
    return key


MAX_KEY_BYTES = 16 << 10  # an RSA-16384 public key is about 2.8 KiB


def read_ssh_key(path: Path) -> str:
    """--ssh-key FILE: a small regular file of one printable line (never /dev/zero, a FIFO,
    a private key or binary)."""
    bad = UsageError(f"--ssh-key {path} is not a public key file: one line of text, like "
                     "'ssh-ed25519 AAAA... comment'",
                     hint="give the .pub file, e.g. --ssh-key ~/.ssh/id_ed25519.pub")
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise bad
        with open(path, "rb") as f:
            data = f.read(MAX_KEY_BYTES + 1)
    except OSError as e:
        raise UsageError(f"--ssh-key {path}: {e.strerror}") from e
    if len(data) > MAX_KEY_BYTES:
        raise bad
    try:
        return check_ssh_key(data.decode("utf-8"))
    except (UnicodeDecodeError, UsageError):
        raise bad from None


def authorized_keys(text: str | None, key: str) -> str:
    """root's ~/.ssh/authorized_keys with this key added once."""
    key = check_ssh_key(key)
    lines = _lines(text)
    return _joined(lines if key in (line.strip() for line in lines) else [*lines, key])
