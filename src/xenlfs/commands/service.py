"""`xenlfs service install|status`: xencommons at boot, and is dom0 on Xen (hint step 4)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

from xenlfs import run, settings, ui
from xenlfs.commands.parser import ArgumentParser, add_dry_run, add_group, add_json
from xenlfs.host import service


def register(verbs: argparse._SubParsersAction[ArgumentParser], common: ArgumentParser) -> None:
    sub = add_group(verbs, "service", "start Xen's daemons at boot and check them (hint step 4)",
                    common)
    install = sub.add_parser(
        "install", parents=[common], help="install and enable the xencommons bootscript",
        description="Write /etc/rc.d/init.d/xencommons in the LFS bootscript style and link it "
        "into /etc/rc.d/rcN.d (S in runlevels 3-5, K in 0, 1, 2, 6).")
    settings.add_flags(install, "service")
    install.add_argument("--root", type=Path, default=Path("/"), metavar="DIR",
                         help="the LFS system's top directory (default /)")
    add_dry_run(install)
    install.set_defaults(handler=install_script)

    status = sub.add_parser(
        "status", parents=[common], help="check dom0 runs on Xen with its daemons",
        description="Check /proc/xen/capabilities says control_d and that xenstored and "
        "xenconsoled run; exit 1 if not, saying what to do.")
    status.add_argument("--proc", type=Path, default=Path("/proc"), help=argparse.SUPPRESS)
    add_json(status)
    status.set_defaults(handler=show_status)


def install_script(args: argparse.Namespace, config: settings.Config) -> int:
    plan = service.plan_install(args.root, config.service.xen_prefix)
    script, links = service.pending(plan)
    if script is None and not links:
        ui.stderr.print(f"{plan.script} is installed and enabled, nothing to do")
        return 0
    service.apply_install(plan)
    if run.dry_run():
        for link, target in links:
            sys.stdout.write(f"ln -sfn {target} {link}\n")
        return 0
    ui.stderr.print(f"installed {plan.script}" + "".join(f"\n  {link} -> {target}"
                                                         for link, target in links))
    return 0


def show_status(args: argparse.Namespace, config: settings.Config) -> int:
    checks = service.status(args.proc)
    healthy = all(c.ok for c in checks)
    if args.json:
        ui.print_json({"healthy": healthy, "checks": [asdict(c) for c in checks]})
    else:
        for c in checks:
            ui.stdout.print(f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}", markup=False)
            if not c.ok:
                ui.stdout.print(f"     fix: {c.fix}", markup=False)
    return 0 if healthy else 1
