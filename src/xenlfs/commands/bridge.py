"""`xenlfs bridge setup|status`: the xenbr0 bridge guests' vifs join (hint step 1)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

from xenlfs import run, settings, ui
from xenlfs.commands.parser import ArgumentParser, add_dry_run, add_group, add_json
from xenlfs.host import bridge


def register(verbs: argparse._SubParsersAction[ArgumentParser], common: ArgumentParser) -> None:
    sub = add_group(verbs, "bridge", "the network bridge guests join (hint step 1)", common)
    setup = sub.add_parser(
        "setup", parents=[common], help="move the interface's LFS network config onto a bridge",
        description="From /etc/sysconfig/ifconfig.IFACE write ifconfig.BRIDGE for the BLFS "
        "bridge service (IFACE as its component, the IP settings moved over) and move the old "
        f"file to /etc/sysconfig/{bridge.RETIRED_DIR}/, where ifup does not look. Where "
        "/lib/services has no bridge service (LFS-Bootscripts without BLFS's), write xenlfs's "
        "own there. Apply it with 'ifdown IFACE; ifup BRIDGE'.")
    settings.add_flags(setup, "bridge")
    setup.add_argument("--root", type=Path, default=Path("/"), metavar="DIR",
                       help="the LFS system's top directory (default /)")
    add_dry_run(setup)
    setup.set_defaults(handler=setup_bridge)

    status = sub.add_parser("status", parents=[common], help="check the live bridge",
                            description="Check with iproute2 that the bridge exists, is up and "
                            "has ports; exit 1 if not.")
    settings.add_flags(status, "bridge", only=["bridge"])
    add_json(status)
    status.set_defaults(handler=show_status)


def setup_bridge(args: argparse.Namespace, config: settings.Config) -> int:
    iface, name = config.bridge.iface, config.bridge.bridge
    plan = bridge.plan_setup(args.root, iface, name)
    if not plan.needed:
        ui.stderr.print(f"{plan.target.path} is already set up, nothing to do")
        return 0
    if plan.service is not None:
        ui.stderr.print(f"{plan.service.path.parent} has no bridge service (BLFS's bootscripts "
                        f"are not installed): xenlfs {'would write' if run.dry_run() else 'writes'}"
                        f" its own, {plan.service.path}")
    bridge.apply_setup(plan)
    if run.dry_run():
        if plan.retire_to:
            sys.stdout.write(f"mv {plan.source} {plan.retire_to}\n")
        return 0
    ui.stderr.print(f"wrote {plan.target.path}" + (f"; moved {plan.source} to {plan.retire_to}"
                                                   if plan.retire_to else ""))
    ui.stderr.print(f"apply it now with: ifdown {iface}; ifup {name}")
    return 0


def show_status(args: argparse.Namespace, config: settings.Config) -> int:
    st = bridge.status(config.bridge.bridge)
    if args.json:
        ui.print_json({**asdict(st), "healthy": st.healthy})
        return 0 if st.healthy else 1
    if not st.exists:
        ui.stdout.print(f"FAIL {st.name} does not exist", markup=False)
        ui.stdout.print(f"     fix: 'xenlfs bridge setup', then 'ifup {st.name}'", markup=False)
        return 1
    ok = st.is_bridge and st.up
    ui.stdout.print(f"{'ok  ' if ok else 'FAIL'} {st.name}: "
                    f"{'bridge' if st.is_bridge else 'not a bridge'}, "
                    f"{'up' if st.up else 'down'} ({st.operstate})", markup=False)
    if not st.up:
        ui.stdout.print(f"     fix: ifup {st.name} (or: ip link set {st.name} up)", markup=False)
    if st.ports:
        for p in st.ports:
            ui.stdout.print(f"     port {p.name}: {p.state}", markup=False)
    else:
        ui.stdout.print(f"FAIL {st.name} has no ports: the host's interface is not in it",
                        markup=False)
        ui.stdout.print("     fix: check INTERFACE_COMPONENTS in "
                        f"/etc/sysconfig/ifconfig.{st.name}, then ifdown/ifup it", markup=False)
    return 0 if st.healthy else 1
