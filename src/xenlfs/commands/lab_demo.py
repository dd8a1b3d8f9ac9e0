"""`xenlfs lab demo`: the README's main job — the hint end to end, proven in the lab."""

from __future__ import annotations

import argparse
import logging

from xenlfs import settings, ui
from xenlfs.cli import ArgumentParser, add_json
from xenlfs.lab import demo

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
    from xenlfs.commands.lab import build_options, require_qemu, up_options

    require_qemu()
    options = demo.DemoOptions(
        cache_dir=config["xenlfs.cache_dir"], mirror=config["lab.mirror"],
        build=build_options(config), up=up_options(args, config), guest=args.guest,
        memory_mib=args.guest_memory, keep_up=args.keep_up, guest_type=args.guest_type,
        login_timeout=600.0 if args.guest_type == "hvm" else 240.0)
    report = demo.demo(options)
    problems = demo.check(report, options)
    if args.json:
        ui.print_json({"steps": dict(report.times.steps), "guest_view": report.guest_view,
                       "guest_listed": report.guest_listed, "logs": report.logs,
                       "type": args.guest_type, "login_seconds": report.login_seconds,
                       "virtualisation": report.virtualisation,
                       "problems": problems})
        return 1 if problems else 0
    out = ui.stdout
    out.print(f"\n[bold]The {args.guest_type.upper()} guest's console, last lines:[/bold]")
    for line in report.console_tail:
        out.print("  " + line, markup=False)
    out.print("\n[bold]What the guest reports about itself:[/bold]")
    for key, value in report.guest_view.items():
        out.print(f"  {key}: {value}", markup=False)
    listed = report.guest_listed
    out.print(f"\n[bold]xenlfs guest list:[/bold] {listed.get('name')} id {listed.get('id')} "
              f"memory {listed.get('memory')} MiB")
    out.print("\n[bold]Steps:[/bold]\n" + report.times.report())
    out.print("\n[bold]Logs:[/bold]")
    for what, path in report.logs.items():
        out.print(f"  {what}: {path}")
    for problem in problems:
        log.error("%s", problem)
    if not problems:
        out.print(f"\n[green]The {args.guest_type.upper()} guest booted under Xen from a "
                  "snapshot of the reference root, logged in on its console and shut down "
                  "cleanly.[/green]")
    return 1 if problems else 0
