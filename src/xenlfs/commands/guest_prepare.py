"""Hint step 5 verb: `guest prepare NAME --snapshot ARCHIVE --target …`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from xenlfs import run, settings, ui
from xenlfs.commands.parser import ArgumentParser, add_dry_run
from xenlfs.errors import UsageError
from xenlfs.xl import name as guest_name

if TYPE_CHECKING:
    from xenlfs.guest import prepare


def add_prepare(sub: argparse._SubParsersAction[ArgumentParser], common: ArgumentParser) -> None:
    p = sub.add_parser(
        "prepare", parents=[common], help="step 5: a guest's root filesystem from a snapshot",
        description="Put a snapshot on a partition, LVM volume, image file or directory and "
        "make the hint's edits for a Xen guest: directories, var/run and var/lock links, "
        "console and null nodes, fstab (root on the guest's xvda1), inittab (a getty on hvc0), "
        "the network interface, hostname; then write its xl config. Guest files are only "
        "ever reached inside the guest's root: the host's are never touched.")
    p.add_argument("name", metavar="NAME", type=guest_name.argument,
                   help="the guest's name (xl config NAME.cfg, LV name)")
    p.add_argument("--snapshot", type=Path, required=True, metavar="ARCHIVE",
                   help="a snapshot made by 'xenlfs snapshot create' (or any root tar)")
    p.add_argument("--target", type=Path, metavar="PATH",
                   help="a block device (partition, disk, /dev/VG/LV), an image file (made "
                   "if missing, with --size) or a directory")
    p.add_argument("--vg", metavar="VG", help="make (or use) the LV NAME in this volume group")
    p.add_argument("--size", metavar="SIZE", help="size of a new image or LV, e.g. 4G "
                   "(default: 1.5× the snapshot + 256M)")
    p.add_argument("--partition-table", choices=("none", "dos", "gpt"),
                   help="a new image gets this table with one partition (guest disk xvda, "
                   "root xvda1); default none: the image is the filesystem (xvda1); "
                   "dos for --type hvm, whose BIOS boots GRUB from the disk")
    p.add_argument("--mkfs", choices=("ext4", "ext3", "ext2", "none"),
                   help="make this filesystem (default: ext4 on a new or empty volume, else "
                   "keep the one there); over an existing one it asks first")
    p.add_argument("--yes", action="store_true", help="do not ask before mkfs over a "
                   "filesystem or data of no kind blkid knows")
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
    p.add_argument("--force", action="store_true", help="replace an xl config already there "
                   "that says something else (a backup is kept; the same text is left as it "
                   "is). Without it such a config is refused before anything is built")
    p.add_argument("--type", dest="guest_type", choices=("pv", "pvh", "hvm"), default="pv",
                   help="how Xen runs it (xl.cfg's type). pv (default, the hint's): Xen "
                   "starts --kernel, console hvc0. pvh: the same with type = \"pvh\" (the "
                   "kernel needs CONFIG_XEN_PVH). hvm: an emulated PC booting from its own "
                   "disk: xenlfs puts the kernel in the guest's /boot, BIOS GRUB in the "
                   "image's MBR (grub-install --target=i386-pc) and a grub.cfg with "
                   "root=/dev/xvda1 and console=ttyS0; the getty and xl console use the "
                   "serial port (serial = \"pty\", and vga = \"none\": no screen to "
                   "emulate), no kernel= line. hvm with --kernel: "
                   "xl's direct kernel boot instead, no GRUB")
    p.add_argument("--boot-kernel", type=Path, metavar="FILE",
                   help="--type hvm from its disk: the kernel to copy into the guest's /boot "
                   "for GRUB (default: the newest vmlinuz-* already there)")
    settings.add_flags(p, "guest")
    settings.add_flags(p, "xl", only=["config_dir"])
    add_dry_run(p)
    p.set_defaults(handler=prepare_cmd, writes_log=True)


def prepare_cmd(args: argparse.Namespace, config: settings.Config) -> int:
    # Imported here: `xenlfs guest list` in the lab's slow dom0 should not pay for step 5.
    from xenlfs.guest import edits, plan, prepare, storage

    # Every value is checked here, before a volume is made or a mount is done.
    try:
        size = settings.parse_size(args.size) if args.size is not None else None
    except ValueError as e:
        raise UsageError(f"argument --size: {e}") from e
    if size == 0:
        raise UsageError("--size 0: an image or LV needs a size", hint="e.g. --size 4G, or "
                         "leave it out for 1.5× the snapshot + 256M")
    if (args.gateway or args.broadcast) and not args.ip:
        raise UsageError("--gateway and --broadcast go with --ip")
    if args.swap is not None:
        edits.check_swap(args.swap)
    if args.root_password_hash is not None:
        edits.check_password_hash(args.root_password_hash)
    ssh_key = edits.read_ssh_key(args.ssh_key) if args.ssh_key else None
    if args.boot_kernel and (args.guest_type != "hvm" or config.guest.kernel):
        raise UsageError("--boot-kernel is for --type hvm booting from its disk (no --kernel)",
                         hint="drop --boot-kernel, or --kernel for a direct kernel boot")
    if args.boot_kernel and not args.boot_kernel.is_file():
        raise UsageError(f"argument --boot-kernel: {args.boot_kernel} is not a file")
    table = args.partition_table or ("dos" if args.guest_type == "hvm" else "none")
    request = storage.Request(args.name, args.target, args.vg, size, table,
                              args.mkfs, args.yes)
    opts = plan.GuestOptions(
        name=args.name, hostname=edits.check_hostname(args.hostname or args.name),
        swap_device=args.swap, iface=edits.check_iface(config.guest.iface),
        network=edits.Network(args.dhcp, args.ip, args.gateway, args.broadcast),
        root_password_hash=args.root_password_hash, ssh_key=ssh_key,
        console="ttyS0" if args.guest_type == "hvm" else "hvc0")
    xl = prepare.XlRequest(config.xl.config_dir, config.guest.kernel,
                           config.guest.memory, tuple(args.vif or [""]), args.ramdisk,
                           args.guest_type, args.boot_kernel)
    # SIGTERM unwinds like Ctrl-C (cli.main): mounts are unmounted and loops detached.
    return show(prepare.prepare_guest(args.snapshot, request, opts, xl,
                                      replace_config=args.force))


def show(report: prepare.Report) -> int:
    plan = report.plan
    assert plan is not None
    out = ui.stdout
    verb = "would" if run.dry_run() else "did"
    if run.dry_run():
        for diff in plan.diffs():
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
    if report.boot:
        out.print(f"  boot: {report.boot}", markup=False)
    where = f" {report.xl_config}" if report.xl_config else ""
    if report.xl_note:
        out.print(f"  xl config{where}: {report.xl_note}", markup=False)
    if report.times.steps:
        report.times.table().print()
    if plan.problems:
        ui.log.error("the snapshot has paths the guest cannot resolve (listed above); the "
                     "guest was prepared without those edits")
        return 1
    return 0
