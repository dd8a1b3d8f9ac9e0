"""`xenlfs lab …`: build, boot and use the QEMU lab (real Xen, dom0 with xl)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import re
import shutil
import sys
import time
from pathlib import Path

from xenlfs import run, settings, ui
from xenlfs.cli import ArgumentParser, add_dry_run, add_group, add_json
from xenlfs.commands import lab_demo
from xenlfs.errors import ToolMissing, UsageError
from xenlfs.lab import boot, images, instance
from xenlfs.lab.boot import Disk

log = logging.getLogger("xenlfs.lab")

QEMU = "qemu-system-x86_64"
BUILD_SETTINGS = ("mirror", "xen", "dom0_kernel", "dom0_modules")
BOOT_SETTINGS = ("instance", "memory", "dom0_memory", "cpu", "boot_timeout", *BUILD_SETTINGS)


def register(verbs: argparse._SubParsersAction[ArgumentParser], common: ArgumentParser) -> None:
    sub = add_group(verbs, "lab", "boot real Xen and a dom0 with xl under QEMU, and use it",
                    common)

    def verb(name: str, help: str, description: str, names: tuple[str, ...]) -> ArgumentParser:
        parser = sub.add_parser(name, parents=[common], help=help, description=description)
        settings.add_flags(parser, "lab", only=names)
        return parser

    build = verb("build", "build (or find in the cache) what the lab boots",
                 "Build Xen, the dom0 kernel and the dom0 initramfs, or find them in the "
                 "cache (keyed by Debian package versions and options).", BUILD_SETTINGS)
    add_json(build)
    build.set_defaults(handler=cmd_build)

    up = verb("up", "boot a lab and leave it running",
              "Build (cached), boot Xen and dom0 under QEMU, wait until dom0 is ready and "
              "leave it running for 'lab run', 'lab push', 'lab pull'.", BOOT_SETTINGS)
    add_disk(up)
    up.set_defaults(handler=cmd_up)

    down = verb("down", "stop a running (or stale) lab", "Stop the lab's QEMU; logs are kept.",
                ("instance",))
    down.set_defaults(handler=cmd_down)

    status = verb("status", "is the lab up, and does dom0 answer?",
                  "Show whether the lab is up, stale (QEMU gone) or down.", ("instance",))
    add_json(status)
    status.set_defaults(handler=cmd_status)

    run_ = verb("run", "run a command in dom0",
                "Run a command in the lab's dom0 and exit with its status. Without a lab up, "
                "boot one for this command only (the boot options apply only then).",
                BOOT_SETTINGS)
    run_.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS",
                      help="give up on the command after this long (default 600)")
    add_disk(run_)
    run_.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND",
                      help="the command and its arguments, after --")
    run_.set_defaults(handler=cmd_run)

    attach = verb("attach", "hot-plug a disk image into the running dom0",
                  "Attach a raw disk image to the running lab as a virtio disk and print its "
                  "device in dom0.", ("instance",))
    attach.add_argument("disk", metavar="IMAGE[:SERIAL]",
                        help="the image; SERIAL (default: the file's name) names it in dom0")
    attach.add_argument("--read-only", action="store_true", help="attach it read-only")
    attach.set_defaults(handler=cmd_attach)

    push = verb("push", "copy a file or directory into dom0",
                "Copy a host file or directory to a path in dom0.", ("instance",))
    push.add_argument("source", type=Path, help="host path")
    push.add_argument("target", help="path in dom0")
    push.set_defaults(handler=cmd_push)

    pull = verb("pull", "copy a file or directory out of dom0",
                "Copy a dom0 file or directory to a host path.", ("instance",))
    pull.add_argument("source", help="path in dom0")
    pull.add_argument("target", type=Path, help="host path")
    pull.set_defaults(handler=cmd_pull)

    lab_demo.add_demo(sub, common, BOOT_SETTINGS)

    clean = verb("clean", "empty the lab's cache",
                 "Remove every cached lab artefact; the next build starts from scratch.", ())
    add_dry_run(clean)
    clean.set_defaults(handler=cmd_clean)


def add_disk(parser: ArgumentParser) -> None:
    parser.add_argument("--disk", action="append", default=[], metavar="IMAGE[:SERIAL]",
                        help="give dom0 this raw disk image (virtio); SERIAL (default: the "
                        "file's name) finds it in dom0's /sys/block/vd*/serial; repeatable")


def parse_disk(value: str) -> Disk:
    path, _, serial = value.partition(":")
    serial = serial or re.sub(r"[^A-Za-z0-9_.-]", "-", Path(path).name)[:20]
    if not path or not re.fullmatch(r"[A-Za-z0-9_.-]{1,20}", serial):
        raise UsageError(f"argument --disk: bad value {value!r}",
                         hint="IMAGE or IMAGE:SERIAL, SERIAL at most 20 of A-Z a-z 0-9 _ . -")
    if not Path(path).is_file():
        raise UsageError(f"argument --disk: {path} is not a file")
    return Disk(Path(path).resolve(), serial)


def require_qemu() -> None:
    if shutil.which(QEMU) is None:
        raise ToolMissing(f"{QEMU} is not installed; the lab needs it to boot Xen",
                          hint=run.install_hint(QEMU))


def build_options(config: settings.Config) -> images.BuildOptions:
    return images.BuildOptions(cache_dir=config["xenlfs.cache_dir"], mirror=config["lab.mirror"],
                               xen=config["lab.xen"], dom0_kernel=config["lab.dom0_kernel"],
                               dom0_modules=config["lab.dom0_modules"])


def up_options(args: argparse.Namespace, config: settings.Config) -> instance.UpOptions:
    return instance.UpOptions(name=config["lab.instance"], memory=config["lab.memory"],
                              dom0_memory=config["lab.dom0_memory"],
                              boot_timeout=float(config["lab.boot_timeout"]),
                              cpu=config["lab.cpu"],
                              disks=tuple(parse_disk(d) for d in args.disk))


def cmd_build(args: argparse.Namespace, config: settings.Config) -> int:
    times = ui.StepTimes()
    artefacts = images.build(build_options(config), times)
    if args.json:
        ui.print_json({**artefacts.description, "times": dict(times.steps)})
        return 0
    ui.stdout.print(f"xen:         {artefacts.xen}\ndom0 kernel: {artefacts.dom0_kernel}\n"
                    f"dom0 initrd: {artefacts.dom0_initrd} "
                    f"({artefacts.dom0_initrd.stat().st_size // (1 << 20)} MiB)")
    log.info("build steps:\n%s", times.report())
    return 0


def boot_lab(args: argparse.Namespace, config: settings.Config,
             options: instance.UpOptions) -> instance.Lab:
    require_qemu()
    times = ui.StepTimes()
    artefacts = images.build(build_options(config), times)
    with ui.step(f"boot Xen and dom0 under QEMU (lab {options.name!r})", times):
        lab = instance.up(artefacts, options)
    log.info("build steps:\n%s", times.report())
    log.info("boot phases (from QEMU start):\n%s", boot.format_phases(lab.phases))
    return lab


def cmd_up(args: argparse.Namespace, config: settings.Config) -> int:
    options = up_options(args, config)
    lab = boot_lab(args, config, options)
    ui.stdout.print(f"lab {lab.name!r} is up: QEMU pid {lab.pid}, serial log "
                    f"{lab.spec.serial_log}\n  run a command: xenlfs lab run --instance "
                    f"{lab.name} -- xl list\n  stop it:       xenlfs lab down --instance "
                    f"{lab.name}")
    return 0


def cmd_down(args: argparse.Namespace, config: settings.Config) -> int:
    name = config["lab.instance"]
    lab = instance.down(name)
    if lab is None:
        ui.stdout.print(f"lab {name!r} is not up")
    else:
        ui.stdout.print(f"lab {name!r} stopped; its logs stay in {lab.spec.run_dir}")
    return 0


def cmd_status(args: argparse.Namespace, config: settings.Config) -> int:
    report = instance.status(config["lab.instance"])
    if report["state"] == "up":
        from xenlfs.lab import hvm

        report["hvm"] = hvm.virtualisation(instance.find(config["lab.instance"]))
    if args.json:
        ui.print_json(report)
    else:
        ui.stdout.print(f"lab {report['name']!r}: {report['state']}")
        for key in ("pid", "dom0_uptime", "hvm", "serial_log", "share", "started", "error"):
            if key in report:
                ui.stdout.print(f"  {key}: {report[key]}")
    return 0 if report["state"] in ("up", "down") else 1


def cmd_run(args: argparse.Namespace, config: settings.Config) -> int:
    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise UsageError("lab run: no command given", hint="xenlfs lab run -- xl list")
    options = up_options(args, config)
    existing = instance.load(options.name)
    if existing is not None and existing.running():
        if options.disks:
            raise UsageError(f"--disk: lab {options.name!r} is already up; disks are given at "
                             "boot", hint="hot-plug it: xenlfs lab attach IMAGE[:SERIAL]")
        return _run_in(existing, command, args.timeout)
    log.info("no lab %r is up: booting one for this command ('xenlfs lab up' keeps one "
             "running)", options.name)
    options = dataclasses.replace(options, name=f"oneshot-{os.getpid()}")
    lab = boot_lab(args, config, options)
    try:
        return _run_in(lab, command, args.timeout)
    finally:
        lab.stop()


def _run_in(lab: instance.Lab, command: list[str], timeout: float) -> int:
    start = time.monotonic()
    result = lab.channel.run(command, timeout=timeout, check=False)
    sys.stdout.write(result.stdout)
    sys.stdout.flush()
    sys.stderr.write(result.stderr)
    log.debug("dom0 command took %.1f s", time.monotonic() - start)
    return result.returncode


def cmd_attach(args: argparse.Namespace, config: settings.Config) -> int:
    disk = parse_disk(args.disk)
    lab = instance.find(config["lab.instance"])
    ui.stdout.print(lab.attach_disk(disk.path, disk.serial, readonly=args.read_only))
    return 0


def cmd_push(args: argparse.Namespace, config: settings.Config) -> int:
    if not args.source.exists():
        raise UsageError(f"argument source: {args.source} does not exist")
    instance.find(config["lab.instance"]).channel.push(args.source, args.target)
    return 0


def cmd_pull(args: argparse.Namespace, config: settings.Config) -> int:
    instance.find(config["lab.instance"]).channel.pull(args.source, args.target)
    return 0


def cmd_clean(args: argparse.Namespace, config: settings.Config) -> int:
    cache = images.lab_cache(config["xenlfs.cache_dir"])
    freed = images.clean(config["xenlfs.cache_dir"])
    verb = "would free" if run.dry_run() else "freed"
    ui.stdout.print(f"{cache}: {verb} {freed / (1 << 20):.0f} MiB")
    return 0
