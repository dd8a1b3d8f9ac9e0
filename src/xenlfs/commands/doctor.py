"""`xenlfs doctor`: hint step 1, every prerequisite of building and running Xen."""

from __future__ import annotations

import argparse
from pathlib import Path

from xenlfs import settings, ui
from xenlfs.commands.parser import ArgumentParser, add_json
from xenlfs.doctor.check import doctor
from xenlfs.doctor.findings import Status

_COLOUR = {Status.OK: "green", Status.MISSING: "red", Status.OLD: "red", Status.ABSENT: "yellow",
           Status.WARN: "yellow", Status.INFO: "cyan"}


def register(verbs: argparse._SubParsersAction[ArgumentParser], common: ArgumentParser) -> None:
    help = "hint step 1: check the prerequisites of building and running Xen"
    parser = verbs.add_parser("doctor", parents=[common], help=help, description=help
                              + "; exits 1 if anything required is missing")
    parser.add_argument("--xen-version", default="4.17", metavar="VERSION",
                        help="the Xen release to check for (dev86 is needed before 4.14)")
    parser.add_argument("--root", type=Path, default=Path("/"), metavar="DIR",
                        help="check the system installed under DIR (headers, .pc files, "
                        "/proc, /boot) instead of this one")
    add_json(parser)
    parser.set_defaults(handler=run_doctor)


def run_doctor(args: argparse.Namespace, config: settings.Config) -> int:
    findings = doctor(root=args.root, xen_version=args.xen_version)
    problems = [f for f in findings if f.problem]
    if args.json:
        ui.print_json({"xen_version": args.xen_version, "ok": not problems,
                       "findings": [f.as_dict() for f in findings]})
        return 1 if problems else 0
    table = ui.Table("status", "what", "found", "needed", "how to fix",
                     title=f"Prerequisites of Xen {args.xen_version}")
    for f in findings:
        table.add_row(f.status, f.name, f.found, f.needed, f.fix, style=_COLOUR[f.status])
    if problems:
        table.print(f"{len(problems)} required prerequisite(s) missing: "
                    + ", ".join(f.name for f in problems), style="red")
        return 1
    table.print("everything required is there", style="green")
    return 0
