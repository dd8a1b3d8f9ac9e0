"""Hint step 6 verbs: `guest check/config` (xl config files) and the lifecycle over xl."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xenlfs import files, run, settings, ui
from xenlfs.commands.parser import ArgumentParser, add_dry_run, add_json
from xenlfs.errors import UsageError
from xenlfs.xl import check, finding, toolstack, write
from xenlfs.xl import name as guest_name


def register(sub: argparse._SubParsersAction[ArgumentParser], common: ArgumentParser) -> None:
    def verb(name: str, help: str, handler: object, *, flags: bool = False) -> ArgumentParser:
        parser = sub.add_parser(name, parents=[common], help=help, description=help)
        if flags:
            settings.add_flags(parser, "xl")
        parser.set_defaults(handler=handler)
        return parser

    p = verb("check", "check xl guest configs as xl reads them: errors and likely mistakes",
             check_cmd)
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--host", action="store_true",
                   help="this is the Xen host: also check that each vif's bridge exists "
                   "(on by default in dom0)")
    add_json(p)

    p = verb("config", "write a guest's xl config, or edit one with --set", config_cmd,
             flags=True)
    p.add_argument("guest", metavar="NAME|FILE", type=guest_name.name_or_file,
                   help="the guest's name (file CONFIG_DIR/NAME.cfg) or a config file")
    settings.add_flags(p, "guest", only=["kernel", "memory"])
    p.add_argument("--type", dest="guest_type", choices=("pv", "pvh", "hvm"),
                   help="pv (xl's default, the hint's), pvh, or hvm: an emulated PC with "
                   "serial = \"pty\" and vga = \"none\", booting from its disk (no --kernel) "
                   "or with xl's "
                   "direct kernel boot (--kernel)")
    p.add_argument("--disk", action="append", default=[], metavar="SPEC",
                   help="a disk spec, e.g. phy:/dev/sdc12,xvda1,w (repeat for more)")
    p.add_argument("--vif", action="append", default=[], metavar="SPEC",
                   help="a network interface, e.g. bridge=xenbr0 ('' for xl's defaults)")
    p.add_argument("--root", help='the root device line, e.g. "/dev/xvda1 ro"')
    p.add_argument("--ramdisk", help="an initramfs for the guest kernel")
    p.add_argument("--extra", help="more kernel command line")
    p.add_argument("--vcpus", type=int, help="virtual CPUs")
    p.add_argument("--maxmem", type=int, metavar="MiB", help="memory the guest may grow to")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="edits",
                   help="change KEY in an existing file, keeping its comments and order")
    p.add_argument("-o", "--output", type=Path, metavar="FILE",
                   help="write here instead of CONFIG_DIR/NAME.cfg")
    p.add_argument("--force", action="store_true", help="replace an existing file that says "
                   "something else (a backup is kept); the same text is left as it is")
    add_dry_run(p)

    p = verb("create", "start a guest (xl create) after checking its config", create_cmd,
             flags=True)
    p.add_argument("guest", metavar="NAME|FILE", type=guest_name.name_or_file)
    p.add_argument("-c", "--console", action="store_true",
                   help="attach to its console (Ctrl-] leaves)")
    add_dry_run(p)

    p = verb("list", "list running domains (xl list); warn when guest configs in CONFIG_DIR "
             "share a MAC, an address or a writable disk", list_cmd)
    settings.add_flags(p, "xl", only=["config_dir"])
    add_json(p)
    p = verb("top", "one sample of each domain's CPU, memory, network and disk use (xentop)",
             top_cmd)
    add_json(p)
    p = verb("console", "attach to a guest's console (Ctrl-] leaves)", console_cmd)
    p.add_argument("guest", metavar="NAME", type=guest_name.argument)
    p = verb("shutdown", "ask a guest to shut down (xl shutdown)", shutdown_cmd, flags=True)
    p.add_argument("guest", metavar="NAME", type=guest_name.argument)
    p.add_argument("-w", "--wait", action="store_true", help="wait until it is gone")
    add_dry_run(p)
    p = verb("destroy", "stop a guest at once, like pulling its plug (xl destroy)",
             destroy_cmd)
    p.add_argument("guest", metavar="NAME", type=guest_name.argument)
    add_dry_run(p)


def check_cmd(args: argparse.Namespace, config: settings.Config) -> int:
    host = toolstack.host()  # in dom0: the CPUs and NUMA nodes xl will see
    reports = [check.check_file(path, host) for path in args.files]
    check.check_shared(reports)
    if args.host or toolstack.in_dom0():
        for report in reports:
            check.check_bridges(report)
    if args.json:
        ui.print_json([{"file": r.path, "ok": r.ok,
                        "findings": [vars(f) for f in r.findings],
                        "guest": r.guest.to_json() if r.guest else None} for r in reports])
    else:
        finding.show((f for r in reports for f in r.findings), sys.stdout)
        for r in reports:
            errors = sum(f.severity == "error" for f in r.findings)
            warnings = len(r.findings) - errors
            ui.say(f"{check.shown(r.path)}: {'ok' if r.ok else 'xl would refuse it'} "
                   f"({errors} errors, {warnings} warnings)", style="" if r.ok else "red")
    return 0 if all(r.ok for r in reports) else 1


def config_cmd(args: argparse.Namespace, config: settings.Config) -> int:
    target = toolstack.config_path(args.guest, config.xl.config_dir)
    if args.edits:
        if not target.is_file():
            raise UsageError(f"--set edits an existing file; {target} does not exist",
                             hint="write it first: xenlfs guest config NAME --kernel ...")
        old = files.read_text(target, "an xl config file")
        new = write.set_values(old, str(target), [write.parse_assignment(e) for e in args.edits])
        # --set changes the file it edits; another file named by --output needs --force
        replace = args.force or (args.output or target) == target
    else:
        if config.guest.kernel is None and args.guest_type != "hvm":
            raise UsageError("a new config needs --kernel (or [guest] kernel in the config file)",
                             hint="e.g. xenlfs guest config xenguest1 --kernel /boot/vmlinuz-"
                             "domU --memory 1024 --disk phy:/dev/sdc12,xvda1,w "
                             "--root '/dev/xvda1 ro'")
        name = guest_name.check(Path(args.guest).name.removesuffix(".cfg"))
        guest = write.GuestConfig(
            name=name, kernel=config.guest.kernel, memory=config.guest.memory,
            disks=tuple(args.disk),
            vifs=tuple(args.vif), root=args.root, ramdisk=args.ramdisk, extra=args.extra,
            vcpus=args.vcpus, maxmem=args.maxmem, type=args.guest_type,
            others=write.HVM_CONSOLE if args.guest_type == "hvm" else ())
        new = write.render(guest)
        replace = args.force
    change = write.config_change(args.output or target, new, replace=replace)
    write.write_config(change)
    if not change.needed:
        ui.stderr.print(f"{change.path}: already as needed, nothing to do")
    return 0


def create_cmd(args: argparse.Namespace, config: settings.Config) -> int:
    path = toolstack.config_path(args.guest, config.xl.config_dir)
    report = toolstack.checked(path)
    finding.show(report.findings)
    name = report.guest.name if report.guest else path.stem
    if not run.dry_run():
        toolstack.require_dom0()
        if any(d.name == name for d in toolstack.list_domains()):
            raise UsageError(f"{name} is already running",
                             hint=f"see it: xenlfs guest console {name}; stop it first: "
                             f"xenlfs guest shutdown {name} --wait")
    toolstack.create(path, console=args.console)
    if not args.console and not run.dry_run():
        print(f"{name} is running; its console: xenlfs guest console {name}")
    return 0


def list_cmd(args: argparse.Namespace, config: settings.Config) -> int:
    toolstack.require_dom0()
    domains = toolstack.list_domains()
    # To stderr, before the list: stdout stays the list (or its JSON) alone.
    finding.show(check.check_guests_in(config.xl.config_dir))
    if args.json:
        ui.print_json([vars(d) for d in domains])
        return 0
    table = ui.Table("name", "id", "memory", "vcpus", "state", "cpu time")
    for d in domains:
        table.add_row(d.name, d.id, ui.size(d.memory << 20), d.vcpus, d.state,
                      ui.seconds(d.time))
    table.print()
    return 0


def top_cmd(args: argparse.Namespace, config: settings.Config) -> int:
    toolstack.require_dom0()
    rows = toolstack.top()
    if args.json:
        ui.print_json(rows)
        return 0
    table = ui.Table("name", "cpu", "memory", "vcpus")
    for row in rows:
        kib = row.get("MEM(k)", "")
        table.add_row(row["NAME"], f"{row.get('CPU(%)', '?')} %",
                      ui.size(int(kib) << 10) if kib.isdigit() else "?", row.get("VCPUS", "?"))
    table.print()
    return 0


def console_cmd(args: argparse.Namespace, config: settings.Config) -> int:
    toolstack.require_dom0()
    toolstack.console(args.guest)
    return 0


def shutdown_cmd(args: argparse.Namespace, config: settings.Config) -> int:
    toolstack.require_dom0()
    toolstack.shutdown(args.guest, wait=args.wait, timeout=config.xl.shutdown_timeout)
    return 0


def destroy_cmd(args: argparse.Namespace, config: settings.Config) -> int:
    toolstack.require_dom0()
    toolstack.destroy(args.guest)
    return 0
