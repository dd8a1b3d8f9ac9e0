"""`xenlfs guest check`: errors where xl would refuse a config, warnings where xl accepts it
but almost surely not as meant (xl itself ignores unknown keys, wrong value types, bad MACs).
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from xenlfs.errors import SourceError
from xenlfs.xl import cfg, cnum, disk, guest_type, keys, values, vif
from xenlfs.xl.finding import Finding as Finding  # re-exported: callers know check.Finding
from xenlfs.xl.finding import shown as shown


@dataclass
class Guest:
    """What xl makes of a config (the parts xenlfs models)."""

    name: str | None = None
    type: str = "pv"
    kernel: str | None = None
    ramdisk: str | None = None
    cmdline: str | None = None
    memory: int | None = None  # MiB
    maxmem: int | None = None
    vcpus: int | None = None
    maxvcpus: int | None = None
    disks: list[disk.Disk] = field(default_factory=list)
    vifs: list[vif.Vif] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        out = asdict(self)
        out["disks"] = [{k: v for k, v in asdict(d).items() if k != "options"} for d in self.disks]
        out["vifs"] = [{"spec": v.spec, **v.fields} for v in self.vifs]
        return out


@dataclass
class Report:
    path: str
    findings: list[Finding] = field(default_factory=list)
    guest: Guest | None = None  # None when the file does not parse
    disk_pos: list[cfg.Pos] = field(default_factory=list)  # where each of guest.disks is
    vif_pos: list[cfg.Pos] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)


strtol = cnum.strtol


class _Checker:
    def __init__(self, config: cfg.Config, host: Host) -> None:
        self.c = config
        self.host = host
        self.report = Report(config.path, guest=Guest())
        self.guest: Guest = self.report.guest  # type: ignore[assignment]

    def add(self, severity: str, pos: cfg.Pos, what: str, fix: str | None = None) -> None:
        self.report.findings.append(Finding(severity, self.c.path, pos.line, pos.col, what, fix))

    def at(self, key: str) -> cfg.Pos:
        return self.c.where(key).pos

    def string(self, key: str) -> str | None:
        value = self.c.values.get(key)
        return value.text if isinstance(value, cfg.Atom) else None

    def number(self, key: str) -> int | None:
        text = self.string(key)
        if text is None:
            return None
        if self.c.ops[key] == "+=":
            self.add("warning", self.at(key), f"'{key} +=' on a number: xl ignores {key}",
                     f"write {key} = NUMBER")
            return None
        value = strtol(text)
        if value is None:
            self.add("warning", self.c.values[key].pos,
                     f"{key} = '{text}' is not a whole number: xl ignores it",
                     f"write a plain number{' of MiB' if key in ('memory', 'maxmem') else ''}")
        return value

    def keys(self) -> None:
        seen: dict[str, cfg.Assignment] = {}
        for a in self.c.assignments:
            if a.op == "=" and a.name in seen:
                self.add("warning", seen[a.name].pos, f"{a.name} is set again on line "
                         f"{a.pos.line}, which wins: this line has no effect",
                         "remove one of them")
            seen[a.name] = a
        for name, value in self.c.values.items():
            pos = self.at(name)
            if name not in keys.KNOWN:
                close = keys.suggest(name)
                self.add("warning", pos, f"unknown key '{name}': xl ignores it",
                         f"did you mean '{close}'?" if close else "see xl.cfg(5)")
            elif name in keys.LIST and isinstance(value, cfg.Atom) and name not in values.RULES:
                self.add("warning", value.pos, f"{name} must be a list: xl ignores it",
                         f"write {name} = [ \"...\" ]")
            elif name in keys.STRING | keys.NUMBER and isinstance(value, cfg.List):
                self.add("warning", value.pos, f"{name} must be a single value, not a list: "
                         "xl ignores it", f"write {name} = \"...\" without [ ]")

    def basics(self) -> None:
        g, c = self.guest, self.c
        g.name = self.string("name")
        if g.name is None:
            where = self.at("name") if "name" in c.values else cfg.Pos(1, 1)
            self.add("error", where, "the guest has no name", 'add: name = "GUEST"')
        elif not g.name:
            self.add("warning", self.at("name"), "the guest's name is empty",
                     'name it: name = "GUEST"')
        for key in ("type", "builder"):
            text = self.string(key)
            if text is None:
                continue
            names = ("hvm", "pv", "pvh") if key == "type" else ("hvm", "generic")
            found = next((n for n in names if n.startswith(text)), None)
            if found is None:
                self.add("error", self.at(key), f"unknown {key} '{text}'",
                         f"{key} is one of: {', '.join(names)}")
            elif key == "type":
                g.type = found
            elif self.string("type") is not None and g.type != {"generic": "pv"}.get(found,
                                                                                   found):
                self.add("error", self.at(key), "builder contradicts type", "remove builder")
            else:
                g.type = {"generic": "pv"}.get(found, found)
        uuid = self.string("uuid")
        if uuid is not None and not re.fullmatch(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}"
                                                 r"-[0-9a-fA-F]{12}", uuid):
            self.add("error", self.at("uuid"), f"'{uuid}' is not a UUID",
                     "remove uuid (xl makes one) or write 8-4-4-4-12 hex digits")
        for key in ("on_poweroff", "on_reboot", "on_watchdog", "on_crash", "on_soft_reset"):
            action = self.string(key)
            if action is not None and action not in keys.ACTIONS:
                self.add("error", self.at(key), f"unknown {key} action '{action}'",
                         f"one of: {', '.join(keys.ACTIONS)}")
        for key in ("max_grant_frames", "max_maptrack_frames", "max_grant_version"):
            if key in c.values:
                text = self.string(key)
                n = strtol(text) if text is not None and c.ops[key] == "=" else None
                if n is None or not 0 <= n <= 0x7FFFFFFF:
                    self.add("error", self.at(key), f"{key} must be a whole number",
                             f"write {key} = NUMBER")

    def resources(self) -> None:
        g = self.guest
        g.memory, g.maxmem = self.number("memory"), self.number("maxmem")
        g.vcpus = self.number("vcpus")
        if g.vcpus is not None and g.vcpus < 0:
            self.add("error", self.at("vcpus"), f"vcpus = {g.vcpus}", "give 1 or more vcpus")
        g.maxvcpus = self.number("maxvcpus")
        # xl compares a non-zero maxvcpus with vcpus, which is 1 when not given.
        vcpus = 1 if g.vcpus is None else g.vcpus
        if g.maxvcpus and g.maxvcpus < vcpus:
            self.add("error", self.at("maxvcpus"), f"maxvcpus {g.maxvcpus} < vcpus {vcpus}",
                     "raise maxvcpus or lower vcpus")
        if g.memory is not None and g.maxmem is not None and g.memory > g.maxmem:
            self.add("warning", self.at("maxmem"), f"memory {g.memory} MiB is more than maxmem "
                     f"{g.maxmem} MiB", "raise maxmem or lower memory")
        if g.memory is not None and g.memory <= 0:
            self.add("warning", self.at("memory"), f"memory = {g.memory} MiB",
                     "give the guest memory in MiB, e.g. memory = 1024")

    def boot(self) -> None:
        g = self.guest
        g.kernel, g.ramdisk = self.string("kernel"), self.string("ramdisk")
        cmdline, root, extra = self.string("cmdline"), self.string("root"), self.string("extra")
        if cmdline is not None:
            g.cmdline = cmdline
            if root is not None or extra is not None:
                self.add("warning", self.at("cmdline"), "cmdline is set, so xl ignores root and "
                         "extra", "put everything in cmdline, or drop cmdline")
        elif root is not None:
            g.cmdline = f"root={root} {extra}" if extra is not None else f"root={root}"
        else:
            g.cmdline = extra
        if g.type == "hvm" and g.kernel is not None \
                and posixpath.basename(g.kernel) == "hvmloader":
            self.add("warning", self.c.values["kernel"].pos, "xl ignores kernel = "
                     f"\"{g.kernel}\" in an HVM guest (its firmware is always hvmloader)",
                     "remove kernel; firmware_override sets another firmware")
            g.kernel = None
        firmware = self.string("firmware")
        if g.type in ("pv", "pvh") and firmware is not None:
            if g.kernel is not None:
                self.add("error", self.at("firmware"), "both kernel and firmware are set",
                         "remove one of them")
            elif not any(fw.startswith(firmware) for fw in ("pvgrub32", "pvgrub64")):
                self.add("error", self.at("firmware"), f"unknown firmware '{firmware}'",
                         "for PV guests firmware is pvgrub32 or pvgrub64")
        if g.type in ("pv", "pvh") and g.kernel is None and self.string("bootloader") is None \
                and firmware is None:
            self.add("error", cfg.Pos(1, 1), "neither kernel nor bootloader is set",
                     'add: kernel = "/boot/vmlinuz-..." (the domU kernel of hint step 4)')
        for key, path in (("kernel", g.kernel), ("ramdisk", g.ramdisk)):
            if path and not os.path.isfile(path):
                self.add("warning", self.c.values[key].pos, f"{key} {path} does not exist "
                         "on this machine", "build and install it (hint step 4), or fix the path")

    def values(self) -> None:
        """The table of values.py: what xl refuses key by key."""
        g, c = self.guest, self.c
        host = values.Context(g.type, 0, self.host.cpus, self.host.online_cpus,
                              self.host.nodes, self.host.node_cpus)
        vnuma = values.vnuma(c, host)
        if vnuma.memkb is not None and g.maxmem is None:
            g.maxmem = vnuma.memkb >> 10  # xl takes the vnodes' sum as maxmem
        if vnuma.vcpus and not g.maxvcpus:  # 0 vcpus: xl falls back on vcpus
            g.maxvcpus = vnuma.vcpus
            if vnuma.vcpus < (g.vcpus or 0):
                self.add("error", c.values["vnuma"].pos, f"vnuma gives {vnuma.vcpus} vcpus, "
                         f"fewer than vcpus = {g.vcpus}", "give the vnodes more vcpus, or set "
                         "maxvcpus")
        counted = g.maxvcpus or g.vcpus or 0
        problems = vnuma.problems + values.problems(c, replace(host, max_vcpus=counted))
        for p in problems:
            self.add(p.severity, p.pos, p.what, p.fix)

    def devices(self) -> None:
        for key, parse in (("disk", self.disk), ("vif", self.vif)):
            value = self.c.values.get(key)
            if not isinstance(value, cfg.List):
                continue
            for n, item in enumerate(value.items):
                if isinstance(item, cfg.List):
                    rest = len(value.items) - n - 1
                    self.add("warning", item.pos, f"nested list in {key}: xl stops reading "
                             f"{key} here" + (f" and ignores the {rest} after it" if rest else ""),
                             "write each device as a string, without inner [ ]")
                    break
                parse(item)

    def disk(self, item: cfg.Atom) -> None:
        try:
            d = disk.parse(item.text)
        except disk.DiskSpecError as e:
            self.add("error", cfg.Pos(item.pos.line, item.pos.col + 1 + e.offset),
                     f"disk '{item.text}': {e.what}", e.fix)
            return
        self.guest.disks.append(d)
        self.report.disk_pos.append(item.pos)
        if d.vdev is not None and disk.vdev_number(d.vdev) is None:
            self.add("warning", item.pos, f"disk '{item.text}': libxl cannot use vdev "
                     f"'{d.vdev}'", "use a name like xvda, xvda1, xvdb (or hda, sda)")
        if d.target and not d.script and not os.path.exists(d.target):
            self.add("warning", item.pos, f"disk target {d.target} does not exist on this "
                     "machine", "create the partition, volume or image (hint step 5)")

    def vif(self, item: cfg.Atom) -> None:
        try:
            v = vif.parse(item.text)
        except vif.VifSpecError as e:
            self.add("error", item.pos, f"vif '{item.text}': {e.what}", e.fix)
            return
        self.guest.vifs.append(v)
        self.report.vif_pos.append(item.pos)
        for what, fix in v.problems:
            self.add("warning", item.pos, f"vif '{item.text}': {what}", fix)


@dataclass(frozen=True)
class Host:
    """What xl asks the hypervisor while reading a config, when known (on the Xen host);
    unknown, the checks that depend on it are left out."""

    cpus: int | None = None  # bits in libxl's CPU maps
    online_cpus: int | None = None
    nodes: int | None = None  # NUMA nodes
    node_cpus: tuple[int, ...] | None = None  # each node's CPUs, as a bit mask


def check_config(config: cfg.Config, host: Host = Host(), *, kernel: bool = True) -> Report:
    """What xl 4.17 refuses or ignores in `config`. With `kernel`, also what its domain
    builder would refuse in the kernel file itself (the Xen notes the type needs), which
    `xl -N create` never loads."""
    checker = _Checker(config, host)
    for step in (checker.keys, checker.basics, checker.resources, checker.boot,
                 checker.values, checker.devices):
        step()
    guest = checker.report.guest
    if guest is not None:
        checker.report.findings += guest_type.check(config, guest.type,
                                                    guest.kernel if kernel else None)
    checker.report.findings.sort(key=lambda f: (f.line, f.col))
    return checker.report


def check_file(path: Path, host: Host = Host(), *, kernel: bool = True) -> Report:
    try:
        config = cfg.read(path)
    except SourceError as e:
        return Report(str(path), [Finding("error", e.path, e.line, e.col, e.what, e.fix)])
    return check_config(config, host, kernel=kernel)


def check_bridges(report: Report, bridges_dir: Path = Path("/sys/class/net")) -> None:
    """On the Xen host: each vif's bridge (xenbr0 when not given) must exist."""
    if report.guest is None:
        return
    for v, pos in zip(report.guest.vifs, report.vif_pos, strict=True):
        bridge = str(v.fields.get("bridge", "xenbr0"))
        if not (bridges_dir / bridge / "bridge").is_dir():
            report.findings.append(Finding(
                "warning", report.path, pos.line, pos.col,
                f"vif '{v.spec}': bridge {bridge} does not exist on this host: the guest "
                "will not start", "create it: xenlfs bridge setup "
                "(hint step 1), or set bridge= in the vif"))


def check_shared_disks(reports: Iterable[Report]) -> None:
    """Two guests (or two disks) writing the same target corrupt its filesystem."""
    writers: dict[str, str] = {}
    for report in reports:
        disks = report.guest.disks if report.guest else []
        for d, pos in zip(disks, report.disk_pos, strict=True):
            if not d.target or not d.readwrite:
                continue
            target = os.path.realpath(d.target) if os.path.exists(d.target) else d.target
            if target in writers:
                report.findings.append(Finding(
                    "warning", report.path, pos.line, pos.col,
                    f"disk {d.target} is also written by {writers[target]}: two writers "
                    "corrupt its filesystem",
                    "give each guest its own disk, or share it read-only (access r)"))
            else:
                writers[target] = f"{report.path} ({report.guest.name if report.guest else ''})"



def check_shared_addresses(reports: Iterable[Report]) -> None:
    """Two guests with one MAC (a clone that kept its source's) or one vif ip= take each
    other's traffic once both run."""
    owners: dict[tuple[str, str], str] = {}
    for report in reports:
        vifs = report.guest.vifs if report.guest else []
        for v, pos in zip(vifs, report.vif_pos, strict=True):
            for what in ("mac", "ip"):
                if what not in v.fields:
                    continue
                for value in str(v.fields[what]).lower().split():
                    if (what, value) in owners:
                        report.findings.append(Finding(
                            "warning", report.path, pos.line, pos.col,
                            f"vif {what} {value} is also given by {owners[what, value]}: the "
                            "two guests take each other's traffic when both run",
                            "give each guest its own (xenlfs guest clone makes new MACs)"
                            if what == "mac" else "give each guest its own address"))
                    else:
                        owners[what, value] = \
                            f"{report.path} ({report.guest.name if report.guest else ''})"


def check_shared(reports: list[Report]) -> list[Finding]:
    """What these guests share that they must not (a writable disk, a MAC, an address): the
    findings are added to the reports and returned."""
    before = [len(r.findings) for r in reports]
    check_shared_disks(reports)
    check_shared_addresses(reports)
    return [f for r, n in zip(reports, before, strict=True) for f in r.findings[n:]]


def check_guests_in(config_dir: Path) -> list[Finding]:
    """What the guest configs in CONFIG_DIR (xl's own place) share that they must not."""
    paths = sorted(p for p in config_dir.glob("*.cfg") if p.is_file())
    return check_shared([check_file(path, kernel=False) for path in paths])
