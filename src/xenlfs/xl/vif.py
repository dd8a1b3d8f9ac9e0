"""Network specs (xl-network-configuration(5)), read as xl 4.17 reads them.

A vif spec is comma-separated KEY=VALUE options (empty pieces are skipped, so '' is one NIC
with every default). xl refuses a file only for a bad rate=, devid= or mtu=; an unknown
option, a bad mac= or type= is reported on stderr and otherwise ignored, so the guest comes up
without what was meant. Those are `problems` here, which the checker turns into warnings.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from xenlfs.xl.cnum import cint

# libxl field each option sets; the colo_* options exist too but are for COLO replication
OPTIONS = {"mac": "mac", "bridge": "bridge", "ip": "ip", "script": "script",
           "backend": "backend_domname", "vifname": "ifname", "model": "model",
           "type": "nictype", "rate": "rate", "gatewaydev": "gatewaydev",
           "netdev": "gatewaydev", "forwarddev": "coloft_forwarddev", "devid": "devid",
           "mtu": "mtu", "accel": "accel"}
MAC = re.compile(r"[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}")


class VifSpecError(Exception):
    def __init__(self, what: str, fix: str) -> None:
        super().__init__(what)
        self.what, self.fix = what, fix


@dataclass
class Vif:
    spec: str
    fields: dict[str, str | int] = field(default_factory=dict)  # libxl field → value
    problems: list[tuple[str, str]] = field(default_factory=list)  # (what, fix): not fatal


def _strtoul(text: str, base: int) -> tuple[int | None, str]:
    """C strtoul: (value or None if nothing converted, the rest)."""
    digits = "0-9a-fA-F" if base == 16 else "0-9"
    prefix = "(?:0[xX])?" if base == 16 else ""
    m = re.match(rf"[ \t\n\v\f\r]*([+-]?)({prefix}[{digits}]+)", text)
    if not m:
        return None, text
    value = cint(m[2], base)
    return (-value % (1 << 64) if m[1] == "-" else value), text[m.end():]


def _mac(vif: Vif, value: str, tail: str) -> None:
    """xl reads six hex numbers, each after skipping one character, from the spec as it lies
    in memory (`tail`: the value and whatever follows it); octets read before a failure stay."""
    rest, octets, failed = tail, [0] * 6, False
    for n in range(6):
        number, after = _strtoul(rest, 16)
        if number is None or number > 255:
            vif.problems.append((f"invalid mac '{value}': xl ignores it"
                                 + (" and picks a random one" if not any(octets) else ""),
                                 "write six hex pairs, e.g. mac=00:16:3e:12:34:56"))
            failed = True
            break
        octets[n] = number
        rest = after[1:]
    if any(octets):
        vif.fields["mac"] = ":".join(f"{o:02x}" for o in octets)
    if failed or not any(octets):
        return
    mac = vif.fields["mac"]
    if not MAC.fullmatch(value):
        vif.problems.append((f"mac '{value}' is read as {mac}",
                             "write six two-digit hex pairs separated by ':'"))
    if octets[0] & 1:
        vif.problems.append((f"mac {mac} is a multicast address: the guest's network will "
                             "not work", "use an even first octet; Xen's prefix is 00:16:3e"))


def _rate_error(what: str) -> VifSpecError:
    return VifSpecError(what, "write rate=NUMBER[K|M|G](B|b)/s[@INTERVAL[s|ms|us]], "
                        "e.g. rate=10Mb/s@20ms")


def rate(value: str) -> tuple[int, int]:
    """rate= → (bytes per interval, interval in microseconds), as libxlu computes them."""
    amount, at, interval = value.partition("@")
    if not amount:
        raise _rate_error(f"no rate in rate='{value}'")
    if not re.fullmatch(r"[0-9]+[GMK]?[Bb]/s", amount):
        raise _rate_error(f"invalid rate '{amount}'")
    m = re.match(r"0[0-7]*|[1-9][0-9]*", amount)  # strtoull base 0: a leading 0 is octal
    number = cint(m[0], 8) if m and m[0].startswith("0") else cint(m[0]) if m else 0
    unit = amount[m.end():] if m else amount
    if number == 0 or number > 0xFFFFFFFF:
        raise _rate_error(f"rate '{amount}' is zero or too large")
    number *= {"G": 10**9, "M": 10**6, "K": 10**3}.get(unit[:1], 1)
    if unit[:1] == "b" or unit[1:2] == "b":
        number //= 8
    usecs = 50000
    if at:
        if not re.fullmatch(r"[0-9]+[mu]?s?", interval):
            raise _rate_error(f"invalid interval '{interval}'")
        m = re.match(r"0[0-7]*|[1-9][0-9]*", interval)
        usecs = (cint(m[0], 8) if m[0].startswith("0") else cint(m[0])) if m else 0
        unit = interval[m.end():] if m else interval
        if usecs == 0 or usecs > 0xFFFFFFFF:
            raise _rate_error(f"interval '{interval}' is zero or too large")
        usecs *= {"s": 10**6, "": 10**6, "m": 1000}.get(unit[:1], 1)
        if usecs > 0xFFFFFFFF:
            raise _rate_error(f"interval '{interval}' is too large")
    return number * usecs // 10**6, usecs


def parse(spec: str) -> Vif:
    """One vif spec → Vif, or VifSpecError where xl would refuse the file."""
    vif = Vif(spec)
    offset = 0
    for piece in spec.split(","):
        start, offset = offset, offset + len(piece) + 1
        token = piece.lstrip(" ")
        if not piece:
            continue
        key, eq, value = token.partition("=")
        if token in ("trusted", "untrusted"):
            vif.fields["trusted"] = int(token == "trusted")
        elif not eq or (key not in OPTIONS and not key.startswith("colo_")):
            close = difflib.get_close_matches(key, list(OPTIONS), 1)
            vif.problems.append((f"unknown vif option '{token}': xl ignores it",
                                 f"did you mean {close[0]}=?" if close else
                                 "known: " + ", ".join(sorted(OPTIONS))))
        elif key == "mac":
            _mac(vif, value, spec[start + len(piece) - len(value):])
        elif key == "type":
            if value in ("vif", "ioemu"):
                vif.fields["nictype"] = "vif" if value == "vif" else "vif_ioemu"
            else:
                vif.problems.append((f"type={value} is not vif or ioemu: xl ignores it",
                                     "remove it (PV guests use type=vif)"))
        elif key == "rate":
            vif.fields["rate_bytes_per_interval"], vif.fields["rate_interval_usecs"] = \
                rate(value)
        elif key in ("devid", "mtu"):
            number, _ = _strtoul(value, 10)
            if number is None or number >= (1 << 64) - 1:
                raise VifSpecError(f"{key}={value} is not a number", f"write {key}=NUMBER")
            vif.fields[key] = number
        elif key == "accel":
            vif.problems.append(("accel= is not supported by xl and is ignored", "remove it"))
        else:
            vif.fields[OPTIONS.get(key, key)] = value
    return vif
