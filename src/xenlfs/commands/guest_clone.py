"""`guest clone SOURCE NAME…`: many guests from one prepared guest, each its own machine."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from xenlfs import files, run, settings, ui
from xenlfs.commands.parser import ArgumentParser, add_dry_run, add_json
from xenlfs.errors import UsageError
from xenlfs.xl import name as guest_name

if TYPE_CHECKING:
    from xenlfs.guest import clone


def add_clone(sub: argparse._SubParsersAction[ArgumentParser], common: ArgumentParser) -> None:
    p = sub.add_parser(
        "clone", parents=[common], help="many guests from one prepared guest, copy-on-write",
        description="Make each NAME a copy of the prepared guest SOURCE (not running) that "
        "shares SOURCE's blocks where the host can: an LVM thin snapshot when SOURCE is on a "
        "thin pool, a reflink copy when its image is on XFS (reflink=1) or btrfs. Elsewhere "
        "a full copy is refused unless --full-copy is given (its cost is said first). Each "
        "clone is then its own machine: hostname and hosts, a fresh /etc/machine-id, new "
        "SSH host keys, its own address (--ip, else DHCP), a new MAC (Xen's 00:16:3e) and "
        "its own xl config CONFIG_DIR/NAME.cfg. A clone is made under a temporary name "
        "(.xenlfs-clone-tmp-NAME.img, or the LV xenlfs-clone-tmp-NAME) and renamed only when "
        "whole, its xl config last, so a run killed halfway leaves nothing under NAME (or, "
        "killed between the two renames, a whole volume and a pending config) and running "
        "it again cleans up and finishes. --json prints each clone's name, volume, MACs, address, "
        "machine-id and seconds.")
    p.add_argument("source", metavar="SOURCE", type=guest_name.argument,
                   help="the prepared guest (its xl config CONFIG_DIR/SOURCE.cfg names its disk)")
    p.add_argument("names", metavar="NAME", nargs="+", type=guest_name.argument,
                   help="the new guests' names (LV or image NAME beside SOURCE's, NAME.cfg)")
    p.add_argument("--ip", action="append", metavar="ADDR/PREFIX",
                   help="a static address, once per NAME in the same order (default: DHCP)")
    p.add_argument("--gateway", metavar="ADDR", help="the static gateway (with --ip)")
    p.add_argument("--full-copy", action="store_true",
                   help="copy in full where copy-on-write is not possible (costs SOURCE's "
                   "size per clone, said before anything is done)")
    settings.add_flags(p, "guest", only=["iface"])
    settings.add_flags(p, "xl", only=["config_dir"])
    add_dry_run(p)
    add_json(p)
    p.set_defaults(handler=clone_cmd, writes_log=True)


def clone_cmd(args: argparse.Namespace, config: settings.Config) -> int:
    from xenlfs.guest import clone, edits

    ips: list[str | None] = list(args.ip) if args.ip else [None] * len(args.names)
    if len(ips) != len(args.names):
        raise UsageError(f"{len(ips)} --ip for {len(args.names)} clones",
                         hint="give one --ip per NAME, in the same order, or none for DHCP")
    if args.gateway and not args.ip:
        raise UsageError("--gateway goes with --ip")
    requests = []
    for name, ip in zip(args.names, ips, strict=True):
        if ip is not None:
            edits.Network(ip=ip, gateway=args.gateway)  # refuses a bad address now
        requests.append(clone.Request(name, edits.check_hostname(name), ip, args.gateway))
    given = [ip.split("/")[0] for ip in ips if ip]
    if len(set(given)) != len(given):
        raise UsageError("two clones would share an address", hint="one --ip each")
    report = clone.clone_guests(args.source, requests, config.xl.config_dir,
                                full_copy=args.full_copy,
                                iface=edits.check_iface(config.guest.iface))
    if args.json:
        ui.print_json(clone.as_json(report))
        return 1 if clone.problems(report) else 0
    return show(report)


def show(report: clone.Report) -> int:
    from xenlfs.guest.clone import problems

    out = ui.stdout
    facts, backend = report.facts, report.backend
    cost = "only metadata at first" if not backend.cost else f"{ui.size(backend.cost)} each"
    out.print(f"source: {report.source.name} ({facts.path}, {ui.size(facts.size)})",
              markup=False)
    out.print(f"backend: {backend.kind}: {backend.why}; writes {cost}", markup=False)
    for c in report.clones:
        net = c.request.ip or "DHCP"
        out.print(f"{c.request.name}: {c.volume}; hostname {c.request.hostname}; MAC "
                  f"{', '.join(c.macs) or '(no vif)'}; address {net}"
                  + (f"; machine-id {c.machine_id}" if c.machine_id else ""), markup=False)
        for line in c.lines:
            out.print(f"  {line}", markup=False)
        verb = "would write" if run.dry_run() else "wrote"
        out.print(f"  {verb}: {c.xl_config}", markup=False)
        if run.dry_run():
            out.print(files.unified_diff(str(c.xl_config), None, c.xl_text), end="",
                      markup=False)
    times = ui.Table("clone", "time")
    for c in report.clones:
        times.add_row(c.request.name, ui.seconds(c.seconds))
    if report.clones and not run.dry_run():
        times.print()
    return 1 if problems(report) else 0
