"""`xenlfs rehearse`: boot this host's own Xen setup under QEMU before the real reboot."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from xenlfs import settings, ui
from xenlfs.commands.parser import ArgumentParser, add_dry_run, add_json
from xenlfs.errors import ExitCode, UsageError
from xenlfs.rehearse import flow, layout, report
from xenlfs.snapshot import excludes as ex


def register(verbs: argparse._SubParsersAction[ArgumentParser], common: ArgumentParser) -> None:
    p = verbs.add_parser(
        "rehearse", parents=[common],
        help="the last step before rebooting into Xen: boot a copy of this host under QEMU",
        description="Copy this host (the running root, --root DIR or --snapshot ARCHIVE) onto a "
        "throwaway disk laid out like the host's (partition numbers, filesystem types, UUIDs, "
        "labels, device names), install BIOS GRUB on it with the host's own grub.cfg, and boot "
        "it under QEMU through the host's Xen entry. Each phase is watched on the serial "
        "console: GRUB, Xen, the dom0 kernel, root, init, the bootscripts, xencommons, "
        "control_d, xl list, the bridge, each guest's login prompt. A failure is reported with "
        "its phase, the lines that show it and the fix. The host is never written; what the "
        "copy changes (serial consoles, the entry made default, a probe) is listed.",
        epilog="exit codes: 0 every phase passed, 1 a phase failed, 2 usage error, "
        "3 a precondition failed (not root, QEMU or GRUB's BIOS files missing)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--root", type=Path, metavar="DIR",
                        help="rehearse the host tree at DIR (default: the running root)")
    source.add_argument("--snapshot", type=Path, metavar="ARCHIVE",
                        help="rehearse a snapshot made by 'xenlfs snapshot create'")
    p.add_argument("--entry", metavar="TITLE|ID",
                   help="the grub.cfg entry to rehearse (default: the one that loads Xen; "
                   "needed when several do)")
    p.add_argument("--guest", action="append", default=[], metavar="NAME",
                   help="also start /etc/xen/NAME.cfg (the guests in /etc/xen/auto always are)")
    p.add_argument("--bus", choices=sorted(layout.DISK_NAMES),
                   help="the disk bus when fstab names filesystems only by UUID or label "
                   "(default: from the device names, else virtio)")
    p.add_argument("--memory", type=int, metavar="MiB",
                   help="the machine's memory (default: dom0_mem + the guests' + 384)")
    p.add_argument("--cpus", type=int, default=2, help="the machine's CPUs (default 2)")
    p.add_argument("--deadline-scale", type=float, default=1.0, metavar="FACTOR",
                   help="multiply every phase's deadline (a slow machine: 2)")
    p.add_argument("--keep", action="store_true",
                   help="keep the disk image and the logs (in CACHE_DIR/rehearse/)")
    add_dry_run(p)
    add_json(p)
    p.set_defaults(handler=rehearse_cmd)


def _request(args: argparse.Namespace, config: settings.Config) -> flow.Request:
    if args.snapshot is not None:
        kind, path = "snapshot", args.snapshot.resolve()
    elif args.root is not None:
        if not args.root.is_dir():
            raise UsageError(f"--root {args.root}: not a directory")
        kind, path = "root", args.root.resolve()
    else:
        kind, path = "running", Path("/")
    for name in args.guest:
        if not name or "/" in name or name.startswith("."):
            raise UsageError(f"--guest {name!r}: not a guest name")
    if args.deadline_scale <= 0 or args.cpus < 1:
        raise UsageError("--deadline-scale and --cpus must be positive")
    return flow.Request(kind, path, config.xenlfs.cache_dir / "rehearse", args.entry,
                        tuple(args.guest), args.bus, args.keep, args.cpus, args.memory,
                        args.deadline_scale)


def _running_facts() -> dict[str, layout.Facts]:
    mounts = {m.point: m.source for m in ex.read_mounts() if m.point in ("/", "/boot")}
    return layout.running_facts(mounts)


def rehearse_cmd(args: argparse.Namespace, config: settings.Config) -> int:
    request = _request(args, config)
    if request.source == "snapshot":
        files = flow.read_snapshot(request.path, request.guests)
    else:
        files = flow.read_tree(request.path, request.guests)
    facts = _running_facts() if request.source == "running" and os.geteuid() == 0 else None
    if args.dry_run:
        plan = flow.plan(request, files, facts)
        if args.json:
            ui.print_json(report.as_json(plan, None, None, False))
        else:
            sys.stdout.write(report.plan_text(plan))
        return 0
    plan, outcome, work = flow.rehearse(request, files, facts)
    if args.json:
        ui.print_json(report.as_json(plan, outcome, work, request.keep))
    else:
        ui.stdout.print(report.outcome_text(plan, outcome, work, request.keep), markup=False,
                        highlight=False)
    return ExitCode.OK if outcome.ok else ExitCode.FAILED
