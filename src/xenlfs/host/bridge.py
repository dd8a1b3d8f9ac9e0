"""Hint step 1: move the host's network onto the bridge xenbr0 that guests' vifs join.

LFS configures interfaces with /etc/sysconfig/ifconfig.IFACE files (shell KEY=value) read by
ifup; BLFS's bridge-utils page adds the `bridge` service that creates IFACE from the
INTERFACE_COMPONENTS. The IP settings move from the interface's file to the bridge's, and the
old file is moved out of ifup's reach (the network bootscript starts every ifconfig.* file).
LFS-Bootscripts alone have no `bridge` service (it comes with BLFS's bootscripts): where
/lib/services has none, xenlfs installs its own small one, which ifup runs the same way.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from xenlfs import files, run
from xenlfs.errors import PreconditionError, SourceError

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RETIRED_DIR = "xenlfs-retired"
# Set by the interface's file but meaning the interface itself: not moved to the bridge.
NOT_MOVED = {"IFACE", "SERVICE", "ONBOOT", "INTERFACE_COMPONENTS", "CHECK_LINK", "VIRTINT"}
SERVICES_DIR = "lib/services"

# Run by LFS's ifup as `IFCONFIG=FILE /lib/services/bridge IFACE up|down`, before the
# ipv4-static service gives the bridge its address (SERVICE="bridge ipv4-static").
BRIDGE_SERVICE = """\
#!/bin/sh
# Begin /lib/services/bridge
# Written by 'xenlfs bridge setup' because BLFS's bridge service is not installed: makes
# the bridge IFACE from INTERFACE_COMPONENTS with iproute2 (no bridge-utils needed).

. /lib/lsb/init-functions
. "${IFCONFIG}"

STP_STATE=0
[ "${STP}" = "yes" ] && STP_STATE=1

case "${2}" in
   up)
      log_info_msg "Creating the ${1} bridge..."
      ip link show "${1}" >/dev/null 2>&1 ||
         ip link add name "${1}" type bridge stp_state "${STP_STATE}"
      evaluate_retval
      for port in ${INTERFACE_COMPONENTS}; do
         log_info_msg "Adding ${port} to ${1}..."
         ip link set "${port}" master "${1}" && ip link set "${port}" up
         evaluate_retval
      done
      ip link set "${1}" up
      ;;
   down)
      for port in ${INTERFACE_COMPONENTS}; do
         ip link set "${port}" nomaster 2>/dev/null
      done
      log_info_msg "Removing the ${1} bridge..."
      ip link set "${1}" down 2>/dev/null
      ip link delete "${1}" type bridge
      evaluate_retval
      ;;
   *)
      echo "Usage: ${0} [interface] {up|down}"
      exit 1
      ;;
esac

# End /lib/services/bridge
"""


def _value(line: str, start: int, path: str, number: int) -> str:
    """A shell word from line[start:]: quotes, backslashes, then an optional # comment."""
    out, i = [], start
    while i < len(line):
        c = line[i]
        if c in "'\"":
            end = line.find(c, i + 1)
            while c == '"' and end > 0 and line[end - 1] == "\\":
                end = line.find(c, end + 1)
            if end < 0:
                raise SourceError(path, number, i + 1, f"unterminated {c} quote",
                                  "close the quote on the same line")
            text = line[i + 1:end]
            out.append(text.replace('\\"', '"') if c == '"' else text)
            i = end + 1
        elif c == "\\" and i + 1 < len(line):
            out.append(line[i + 1])
            i += 2
        elif c in " \t":
            rest = line[i:].strip()
            if rest and not rest.startswith("#"):
                raise SourceError(path, number, i + 1 + (len(line[i:]) - len(line[i:].lstrip())),
                                  "unquoted space in a value",
                                  'put the value in quotes: KEY="a b"')
            break
        elif c in ";&|<>`$(" :
            raise SourceError(path, number, i + 1, f"{c!r} in a value: this is not a plain"
                              " KEY=value line", "quote the value or move shell code elsewhere")
        else:
            out.append(c)
            i += 1
    return "".join(out)


def parse_ifconfig(text: str, path: str) -> dict[str, str]:
    """KEY=value settings of an LFS ifconfig file; bad lines are file:line:col errors."""
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        stripped = line.lstrip()
        col = len(line) - len(stripped) + 1
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("export "):
            stripped, col = stripped[7:].lstrip(), col + 7
        match = _KEY.match(stripped)
        if not match or stripped[match.end():match.end() + 1] != "=":
            raise SourceError(path, number, col, "expected KEY=value",
                              "ifconfig files hold only lines like IP=192.168.1.2 and comments")
        values[match[0]] = _value(line, col - 1 + match.end() + 1, path, number)
    return values


def _shell(value: str) -> str:
    return value if re.fullmatch(r"[A-Za-z0-9_./:,+@%-]+", value) else \
        '"' + re.sub(r'(["\\$`])', r"\\\1", value) + '"'


def render(iface: str, bridge: str, old: dict[str, str]) -> str:
    service = old.get("SERVICE", "ipv4-static").split()
    lines = [
        f"# Written by 'xenlfs bridge setup' from ifconfig.{iface}: {iface} now carries the",
        f"# bridge {bridge}, which owns the IP settings; guests join it with vif bridge={bridge}.",
        "ONBOOT=yes",
        f"IFACE={bridge}",
        # A virtual interface: ifup brings it up after its services made it, not before.
        "VIRTINT=yes",
        f"SERVICE={_shell(' '.join(['bridge', *[s for s in service if s != 'bridge']]))}",
        "CHECK_LINK=no",
        f"INTERFACE_COMPONENTS={_shell(iface)}",
        f"STP={_shell(old.get('STP', 'no'))}",
    ]
    lines += [f"{k}={_shell(v)}" for k, v in old.items() if k not in NOT_MOVED | {"STP"}]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Plan:
    source: Path
    target: files.FileChange  # ifconfig.BRIDGE
    retire_to: Path | None
    # LFS-Bootscripts are installed but no bridge service: xenlfs's goes here.
    service: files.FileChange | None = None

    @property
    def needed(self) -> bool:
        return self.target.needed or self.retire_to is not None or self.service is not None


def plan_setup(root: Path, iface: str, bridge: str) -> Plan:
    sysconfig = root / "etc/sysconfig"
    source, target = sysconfig / f"ifconfig.{iface}", sysconfig / f"ifconfig.{bridge}"
    retired = sysconfig / RETIRED_DIR / source.name
    if not source.is_file():
        if target.is_file() and retired.exists():
            text = files.read_text(target, "an ifconfig file")
            # Done by an earlier run (but for the service, if that run was killed first).
            return Plan(source, files.FileChange(target, text, text), None,
                        missing_service(root))
        raise PreconditionError(f"{source} does not exist",
                                hint=f"configure {iface} the LFS way first (LFS book, 'General "
                                "Network Configuration'), or name the interface with --iface")
    values = parse_ifconfig(files.read_text(source, "an ifconfig file"), str(source))
    if values.get("IFACE", iface) != iface:
        raise PreconditionError(f"{source} configures IFACE={values['IFACE']}, not {iface}",
                                hint=f"use --iface {values['IFACE']}")
    retire_to = files.backup_path(retired) if retired.exists() else retired
    change = files.FileChange.to(target, render(iface, bridge, values), what="an ifconfig file",
                                 mode=0o644)
    return Plan(source, change, retire_to, missing_service(root))


def missing_service(root: Path) -> files.FileChange | None:
    """xenlfs's bridge service, where ifup's services are and `bridge` is not."""
    services = root / SERVICES_DIR
    if services.is_dir() and not (services / "bridge").exists():
        return files.FileChange(services / "bridge", None, BRIDGE_SERVICE, mode=0o755)
    return None


def apply_setup(plan: Plan) -> None:
    """Bridge file first, then retire: a crash between leaves a state a re-run completes."""
    try:
        if plan.service is not None:
            plan.service.apply()
        plan.target.apply()
        if plan.retire_to is not None and not run.dry_run():
            plan.retire_to.parent.mkdir(exist_ok=True)
            plan.source.rename(plan.retire_to)
            files.fsync_dir(plan.source.parent)
    except PermissionError as e:
        raise PreconditionError(f"cannot write {e.filename}: {e.strerror}",
                                hint="run as root") from e


@dataclass(frozen=True)
class Port:
    name: str
    state: str


@dataclass(frozen=True)
class BridgeStatus:
    name: str
    exists: bool
    is_bridge: bool
    up: bool
    operstate: str
    ports: tuple[Port, ...]

    @property
    def healthy(self) -> bool:
        return self.exists and self.is_bridge and self.up and bool(self.ports)


def status(bridge: str) -> BridgeStatus:
    """The live bridge, from iproute2's JSON output."""
    result = run.run(["ip", "-j", "-d", "link", "show", "dev", bridge], check=False)
    if result.returncode != 0:
        return BridgeStatus(bridge, False, False, False, "absent", ())
    link = json.loads(result.stdout)[0]
    kind = link.get("linkinfo", {}).get("info_kind")
    ports = [p for p in json.loads(run.run(["bridge", "-j", "link", "show"]).stdout or "[]")
             if p.get("master") == bridge]
    return BridgeStatus(bridge, True, kind == "bridge", "UP" in link.get("flags", []),
                        link.get("operstate", "UNKNOWN"),
                        tuple(Port(p["ifname"], p.get("state", "unknown")) for p in ports))
