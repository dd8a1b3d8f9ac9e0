"""`xenlfs ganeti install-os|script`: xenlfs as a Ganeti OS provider (OS API 20)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from xenlfs import run, settings, ui
from xenlfs.commands.parser import ArgumentParser, add_dry_run, add_group
from xenlfs.errors import ExitCode

DEFAULT_DIR = Path("/srv/ganeti/os/xenlfs")  # the first directory of Ganeti's OS search path


def register(verbs: argparse._SubParsersAction[ArgumentParser], common: ArgumentParser) -> None:
    sub = add_group(verbs, "ganeti", "many hosts: xenlfs as a Ganeti OS provider", common)
    install = sub.add_parser(
        "install-os", parents=[common], help="write the OS provider Ganeti runs",
        description="Write Ganeti's OS provider 'xenlfs' (OS API 20): ganeti_api_version, "
        "variants.list (one variant per snapshot, so 'gnt-instance add -o xenlfs+VARIANT' "
        "picks one), parameters.list and the scripts create, import, export, rename and "
        "verify, which run this xenlfs. Run it again after new snapshots. Copy the directory "
        "to every node (gnt-cluster copyfile, or run it on each).")
    install.add_argument("--dir", type=Path, default=DEFAULT_DIR, metavar="DIR",
                         help=f"the provider's directory (default: {DEFAULT_DIR}; Ganeti "
                         "finds OSes under its os_search_path)")
    install.add_argument("--snapshots", type=Path, metavar="DIR",
                         help="the snapshots to offer (default: [snapshot] dir)")
    add_dry_run(install)
    install.set_defaults(handler=install_os, writes_log=True)

    script = sub.add_parser(
        "script", parents=[common], help="what an OS script does (Ganeti runs this)",
        description="Run by the provider's scripts with Ganeti's environment (INSTANCE_NAME, "
        "DISK_0_PATH, OS_VARIANT, OSP_*…): create puts the variant's snapshot on disk 0 "
        "(step 5), rename sets the guest's hostname, export/import stream the guest's root "
        "in the snapshot format on stdout/stdin, verify checks the parameters.")
    script.add_argument("script", choices=("create", "import", "export", "rename", "verify"))
    script.add_argument("checks", nargs="*", help="verify's checks (Ganeti: 'parameters')")
    script.add_argument("--dir", type=Path, default=DEFAULT_DIR, metavar="DIR",
                        help="the provider's directory (its variant → snapshot map)")
    settings.add_flags(script, "guest", only=["iface"])
    settings.add_flags(script, "snapshot", only=["compression"])
    script.set_defaults(handler=run_script, writes_log=True)


def install_os(args: argparse.Namespace, config: settings.Config) -> int:
    from xenlfs.ganeti import provider
    from xenlfs.snapshot import catalog

    snapshots = args.snapshots or config.snapshot.dir
    usable = []
    for row in catalog.listing(snapshots):
        if row["status"] == "ok":
            usable.append(Path(row["archive"]))
        else:
            ui.log.warning("%s: not offered (%s)", ui.escaped(row["archive"]), row["status"])
    provider_dir = Path(os.path.abspath(args.dir))
    # Ganeti runs the scripts with PATH=/sbin:/bin:/usr/sbin:/usr/bin: name this Python.
    command = [sys.executable, "-m", "xenlfs"]
    wanted = provider.provider_files(command, provider_dir, usable,
                                     os.environ.get("PYTHONPATH") or None)
    changes = provider.plan(provider_dir, wanted)
    provider.install(changes)
    if run.dry_run():
        for change in changes:
            ui.stdout.print(f"would write: {change.path} (mode {change.mode or 0o644:o})",
                            markup=False)
    if not changes:
        ui.stdout.print(f"{provider_dir}: already as needed", markup=False)
    for archive in sorted(usable):
        ui.stdout.print(f"variant xenlfs+{provider.variant_name(archive)}: {archive}",
                        markup=False)
    if not usable:
        ui.log.warning("no snapshot in %s: the provider has no variant to install from "
                       "(make one with 'xenlfs snapshot create', then run this again)",
                       snapshots)
    return 0


def run_script(args: argparse.Namespace, config: settings.Config) -> int:
    from xenlfs.ganeti import scripts
    from xenlfs.snapshot import formats

    provider_dir = Path(os.path.abspath(args.dir))
    env = dict(os.environ)
    if args.script == "verify":
        problems = scripts.verify(provider_dir, env)
        for problem in problems:
            ui.log.error("%s", problem)
        return ExitCode.FAILED if problems else 0
    if args.script == "create":
        from xenlfs.commands.guest_prepare import show

        return show(scripts.create_guest(provider_dir, env, config.guest.iface))
    if args.script == "rename":
        plan = scripts.rename_guest(env)
        for action in plan.actions:
            ui.stdout.print(f"  did: {action.describe()}", markup=False)
        for line in plan.done + plan.problems:
            ui.stdout.print(f"  {line}", markup=False)
        return 1 if plan.problems else 0
    if args.script == "export":
        scripts.export_disk(env, sys.stdout.buffer,
                            formats.by_name(config.snapshot.compression))
        return 0
    scripts.import_disk(env, sys.stdin.buffer)
    return 0
