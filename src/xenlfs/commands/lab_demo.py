"""`xenlfs lab demo`: the README's main job — the hint end to end, proven in the lab."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TextIO

from xenlfs import settings, ui
from xenlfs.commands.lab_options import build_options, require_qemu, up_options
from xenlfs.commands.parser import ArgumentParser, add_json
from xenlfs.lab import demo
from xenlfs.xl import name as guest_name

log = logging.getLogger("xenlfs.lab")


def add_demo(sub: argparse._SubParsersAction[ArgumentParser], common: ArgumentParser,
             names: tuple[str, ...]) -> None:
    parser = sub.add_parser(
        "demo", parents=[common], help="the whole hint end to end: a Xen guest logging in",
        description="Snapshot a reference LFS-like root (step 0), build a domU kernel with "
        "'kernel fix --role domU' (step 4), prepare the guest's partition on a disk image "
        "(step 5), write its xl config (step 6), boot Xen and dom0 in QEMU, run 'xenlfs guest "
        "create' in dom0, log in on the guest's hvc0 console, list it and shut it down.")
    settings.add_flags(parser, "lab", only=names)
    parser.add_argument("--guest", default="xenguest1", metavar="NAME",
                        type=guest_name.argument,
                        help="the guest's name (default xenguest1, as in the hint)")
    parser.add_argument("--guest-memory", type=int, default=256, metavar="MiB",
                        help="memory given to the guest (default 256)")
    parser.add_argument("--type", dest="guest_type", choices=("pv", "pvh", "hvm"),
                        default="pv", help="the guest's type: pv (the hint's, default); pvh "
                        "(a kernel built with --type pv,pvh,hvm); hvm (that kernel in the "
                        "guest's /boot, GRUB in its MBR, the lab's HVM dom0 flavour with "
                        "qemu-system-xen, log in on the serial port)")
    parser.add_argument("--keep-up", action="store_true",
                        help="leave the lab running afterwards (stop it with 'xenlfs lab down')")
    add_json(parser)
    parser.set_defaults(handler=cmd_demo, writes_log=True, disk=[])


def cmd_demo(args: argparse.Namespace, config: settings.Config) -> int:
    require_qemu()
    options = demo.DemoOptions(
        cache_dir=config.xenlfs.cache_dir, mirror=config.lab.mirror,
        build=build_options(config), up=up_options(args, config), guest=args.guest,
        memory_mib=args.guest_memory, keep_up=args.keep_up, guest_type=args.guest_type,
        # HVM: SeaBIOS, GRUB reading the kernel through emulated disk I/O, a serial console:
        # 513 s to its login on the lab's 2 busy cores (docs/benchmarks.md).
        login_timeout=900.0 if args.guest_type == "hvm" else 240.0)
    report = demo.demo(options)
    problems = demo.check(report, options)
    if args.json:
        ui.print_json({"steps": dict(report.times.steps), "guest_view": report.guest_view,
                       "guest_listed": report.guest_listed, "logs": report.logs,
                       "type": args.guest_type, "login_seconds": report.login_seconds,
                       "virtualisation": report.virtualisation,
                       "problems": problems})
        return 1 if problems else 0
    print_report(report, problems, guest_type=args.guest_type)
    return 1 if problems else 0


def print_report(report: demo.DemoReport, problems: list[str],
                 stream: TextIO | None = None, *, guest_type: str = "pv") -> None:
    """The demo's report: sections of ui.Table, each in the form its stream calls for."""
    out = stream or sys.stdout
    sections = [ui.Table("", title=f"The {guest_type.upper()} guest's console, last lines:"),
                ui.Table("", "", title="What the guest reports about itself:"),
                ui.Table("name", "id", "memory", title="xenlfs guest list (in dom0):"),
                report.times.table(),
                ui.Table("", "", title="Logs:")]
    for line in report.console_tail:
        sections[0].add_row(line)
    for key, value in report.guest_view.items():
        sections[1].add_row(key, value)
    listed = report.guest_listed
    memory = listed.get("memory")
    sections[2].add_row(listed.get("name", ""), listed.get("id", ""),
                        ui.size(memory << 20) if isinstance(memory, int) else memory or "")
    for what, path in report.logs.items():
        sections[4].add_row(what, path)
    for table in sections:
        out.write("\n")
        table.print(stream=out)
    for problem in problems:
        log.error("%s", problem)
    if not problems:
        out.write("\n")
        ui.say(f"The {guest_type.upper()} guest booted under Xen from a snapshot of the "
               "reference root, logged in on its console and shut down cleanly.",
               style="green", stream=out)
