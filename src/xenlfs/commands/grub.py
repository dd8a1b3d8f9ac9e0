"""`xenlfs grub add|list|remove`: the hint's hand-written grub.cfg entry for Xen (step 4)."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

from xenlfs import files, run, settings, ui
from xenlfs.commands.parser import ArgumentParser, add_dry_run, add_group, add_json
from xenlfs.errors import UsageError
from xenlfs.host import grub


def register(verbs: argparse._SubParsersAction[ArgumentParser], common: ArgumentParser) -> None:
    sub = add_group(verbs, "grub", "the grub.cfg entry that boots Xen and dom0 (hint step 4)",
                    common)
    add = sub.add_parser(
        "add", parents=[common], help="add or update xenlfs's Xen entry in grub.cfg",
        description="Add a menu entry that boots Xen, then the dom0 kernel, to grub.cfg. Paths "
        "are written as GRUB sees them (relative to the filesystem holding them). Running it "
        "again changes nothing; changed arguments replace the entry. Never runs grub-mkconfig.")
    settings.add_flags(add, "grub")
    add.add_argument("--xen", type=Path, default=Path("/boot/xen.gz"), metavar="FILE",
                     help="the Xen image GRUB loads (default %(default)s)")
    add.add_argument("--kernel", type=Path, required=True, metavar="FILE",
                     help="the dom0 kernel, e.g. /boot/vmlinuz-6.1-xen-dom0")
    add.add_argument("--root", metavar="DEVICE",
                     help="dom0's root device, e.g. /dev/sda2 (written as root=DEVICE ro; "
                     "leave it out only when an initramfs finds the root)")
    add.add_argument("--initrd", type=Path, metavar="FILE",
                     help="an initramfs for dom0, loaded as a second module (LFS needs none)")
    add.add_argument("--id", default="xenlfs-xen", help="the entry's GRUB id (default %(default)s)")
    add.add_argument("--multiboot2", action="store_true",
                     help="load Xen with multiboot2/module2 (needed for UEFI)")
    add.add_argument("--default", action="store_true",
                     help="make it the default entry; the old default becomes GRUB's fallback")
    add.add_argument("--once", action="store_true",
                     help="boot it on the next boot only, then the usual default again (GRUB's "
                     "next_entry in grubenv, as grub-reboot; GRUB cannot write grubenv on LVM, "
                     "RAID or btrfs)")
    add.add_argument("--boot-mount", type=Path, metavar="DIR",
                     help="treat DIR as the top of the filesystem GRUB reads the files from "
                     "(default: found in /proc/self/mountinfo)")
    add_dry_run(add)
    add.set_defaults(handler=add_entry)

    lister = sub.add_parser("list", parents=[common], help="list grub.cfg's menu entries",
                            description="List grub.cfg's menu entries, marking xenlfs's own and"
                            " the default.")
    settings.add_flags(lister, "grub", only=["grub_cfg"])
    add_json(lister)
    lister.set_defaults(handler=list_entries)

    remove = sub.add_parser("remove", parents=[common], help="remove xenlfs's Xen entry",
                            description="Remove the entry 'xenlfs grub add' wrote (and the "
                            "default it set).")
    settings.add_flags(remove, "grub", only=["grub_cfg"])
    remove.add_argument("--id", default="xenlfs-xen", help="the entry's id (default %(default)s)")
    add_dry_run(remove)
    remove.set_defaults(handler=remove_entry)


def _write(change: files.FileChange) -> None:
    if not change.needed:
        ui.stderr.print(f"{change.path}: already up to date, nothing to do")
    grub.write_cfg(change)


def add_entry(args: argparse.Namespace, config: settings.Config) -> int:
    path = config.grub.grub_cfg
    old = grub.read_cfg(path)
    entry = grub.boot_entry(
        entry_id=args.id, title=config.grub.title, xen=args.xen,
        kernel=args.kernel, root=args.root, initrd=args.initrd,
        xen_args=config.grub.xen_args, kernel_args=config.grub.kernel_args,
        multiboot2=args.multiboot2, grub_cfg=path, boot_mount=args.boot_mount)
    if args.once and args.default:
        raise UsageError("--once and --default contradict each other",
                         hint="--once: Xen on the next boot only; --default: Xen from now on")
    new = grub.plan_add(old, entry, args.default, args.once)
    _write(files.FileChange(path, old, new))
    if args.once and grub.next_entry(path) != entry.id:
        grub.boot_once(path, entry.id)
        if not run.dry_run():
            ui.stderr.print(f"the next boot (only) boots {entry.id}: {grub.grubenv(path)}")
    return 0


def list_entries(args: argparse.Namespace, config: settings.Config) -> int:
    path = config.grub.grub_cfg
    found = grub.entries(grub.read_cfg(path))
    if args.json:
        ui.print_json([asdict(e) for e in found])
        return 0
    table = ui.Table("", "where", "kind", "title", "id", title=f"menu entries of {path}")
    for e in found:
        marks = ("*" if e.default else " ") + ("x" if e.xenlfs else " ")
        table.add_row(marks, f"{path}:{e.line}", e.kind, repr(e.title), e.id or "",
                      style="bold" if e.default else "")
    table.print("(* default, x written by xenlfs)")
    return 0


def remove_entry(args: argparse.Namespace, config: settings.Config) -> int:
    path = config.grub.grub_cfg
    old = grub.read_cfg(path)
    _write(files.FileChange(path, old, grub.without(old, grub.check_id(args.id))))
    if grub.next_entry(path) == args.id:
        run.run(["grub-editenv", str(grub.grubenv(path)), "unset", "next_entry"], writes=True)
    return 0
