"""Hint step 5 verb: `guest prepare NAME --snapshot ARCHIVE --target …`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from xenlfs import run, settings, ui
from xenlfs.commands.parser import ArgumentParser, add_dry_run
from xenlfs.errors import UsageError

if TYPE_CHECKING:
    from xenlfs.guest import flow


def add_prepare(sub: argparse._SubParsersAction[ArgumentParser], common: ArgumentParser) -> None:
    p = sub.add_parser(
        "prepare", parents=[common], help="step 5: a guest's root filesystem from a snapshot",
        description="Put a snapshot on a partition, LVM volume, image file or directory and "
        "make the hint's edits for a Xen guest: directories, var/run and var/lock links, "
        "console and null nodes, fstab (root on the guest's xvda1), inittab (a getty on hvc0), "
        "the network interface, hostname; then write its xl config. Guest files are only "
        "ever reached inside the guest's root: the host's are never touched.")
    p.add_argument("name", metavar="NAME", help="the guest's name (xl config NAME.cfg, LV name)")
    p.add_argument("--snapshot", type=Path, required=True, metavar="ARCHIVE",
                   help="a snapshot made by 'xenlfs snapshot create' (or any root tar)")
    p.add_argument("--target", type=Path, metavar="PATH",
                   help="a block device (partition, disk, /dev/VG/LV), an image file (made "
                   "if missing, with --size) or a directory")
    p.add_argument("--vg", metavar="VG", help="make (or use) the LV NAME in this volume group")
    p.add_argument("--size", metavar="SIZE", help="size of a new image or LV, e.g. 4G "
                   "(default: 1.5× the snapshot + 256M)")
    p.add_argument("--partition-table", choices=("none", "dos", "gpt"), default="none",
                   help="a new image gets this table with one partition (guest disk xvda, "
                   "root xvda1); default none: the image is the filesystem (xvda1)")
    p.add_argument("--mkfs", choices=("ext4", "ext3", "ext2", "none"),
                   help="make this filesystem (default: ext4 on a new or empty volume, else "
                   "keep the one there); over an existing one it asks first")
    p.add_argument("--yes", action="store_true", help="do not ask before mkfs over a filesystem")
    p.add_argument("--hostname", help="the guest's host name (default: NAME)")
    p.add_argument("--swap", metavar="DEVICE", help="an fstab swap line for this guest device, "
                   "e.g. /dev/xvda2")
    net = p.add_mutually_exclusive_group()
    net.add_argument("--ip", metavar="ADDR/PREFIX", help="static address, e.g. 192.168.1.2/24")
    net.add_argument("--dhcp", action="store_true", help="get the address by DHCP (dhcpcd)")
    p.add_argument("--gateway", metavar="ADDR", help="static gateway")
    p.add_argument("--broadcast", metavar="ADDR", help="static broadcast (default: computed)")
    p.add_argument("--root-password-hash", metavar="HASH",
                   help="root's password as a crypt hash (openssl passwd -6)")
    p.add_argument("--ssh-key", type=Path, metavar="FILE",
                   help="add this public key to root's authorized_keys")
    p.add_argument("--vif", action="append", metavar="SPEC",
                   help="a vif for the xl config (default: '' as in the hint)")
    p.add_argument("--ramdisk", metavar="FILE", help="an initramfs for the xl config")
    settings.add_flags(p, "guest")
    settings.add_flags(p, "xl", only=["config_dir"])
    add_dry_run(p)
    p.set_defaults(handler=prepare_cmd, writes_log=True)


def prepare_cmd(args: argparse.Namespace, config: settings.Config) -> int:
    # Imported here: `xenlfs guest list` in the lab's slow dom0 should not pay for step 5.
    from xenlfs.guest import edits, flow, prepare, storage

    try:
        size = settings.parse_size(args.size) if args.size else None
    except ValueError as e:
        raise UsageError(f"argument --size: {e}") from e
    if (args.gateway or args.broadcast) and not args.ip:
        raise UsageError("--gateway and --broadcast go with --ip")
    ssh_key = None
    if args.ssh_key:
        try:
            ssh_key = args.ssh_key.read_text().strip()
        except OSError as e:
            raise UsageError(f"--ssh-key {args.ssh_key}: {e.strerror}") from e
    request = storage.Request(args.name, args.target, args.vg, size, args.partition_table,
                              args.mkfs, args.yes)
    opts = prepare.GuestOptions(
        name=args.name, hostname=edits.check_hostname(args.hostname or args.name),
        swap_device=args.swap, iface=config["guest.iface"],
        network=edits.Network(args.dhcp, args.ip, args.gateway, args.broadcast),
        root_password_hash=args.root_password_hash, ssh_key=ssh_key)
    xl = flow.XlRequest(config["xl.config_dir"], config["guest.kernel"],
                        config["guest.memory"], tuple(args.vif or [""]), args.ramdisk)
    # SIGTERM unwinds like Ctrl-C (cli.main): mounts are unmounted and loops detached.
    return show(flow.prepare_guest(args.snapshot, request, opts, xl))


def show(report: flow.Report) -> int:
    plan = report.plan
    assert plan is not None
    out = ui.stdout
    verb = "would" if run.dry_run() else "did"
    if run.dry_run():
        for diff in report.diffs:
            out.print(diff, end="", markup=False)
    out.print(f"guest: {plan.system.init} ({plan.system.evidence})", markup=False)
    for action in plan.actions:
        out.print(f"  {verb}: {action.describe()}", markup=False)
    for line in plan.done:
        out.print(f"  already: {line}", markup=False)
    for line in plan.skipped:
        out.print(f"  not applied: {line}", markup=False)
    for line in plan.problems:
        out.print(f"  PROBLEM: {line}", markup=False)
    where = f" {report.xl_config}" if report.xl_config else ""
    if report.xl_note:
        out.print(f"  xl config{where}: {report.xl_note}", markup=False)
    if report.times.steps:
        out.print(report.times.report(), markup=False)
    if plan.problems:
        ui.log.error("the snapshot has paths the guest cannot resolve (listed above); the "
                     "guest was prepared without those edits")
        return 1
    return 0
