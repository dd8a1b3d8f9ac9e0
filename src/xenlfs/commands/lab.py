"""`xenlfs lab …`: build, boot and use the QEMU lab (real Xen, dom0 with xl)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import time
from pathlib import Path

from xenlfs import run, settings, ui
from xenlfs.commands import lab_demo
from xenlfs.commands.lab_options import (
    add_disk,
    build_options,
    parse_disk,
    require_qemu,
    up_options,
)
from xenlfs.commands.parser import ArgumentParser, add_dry_run, add_group, add_json
from xenlfs.errors import UsageError
from xenlfs.lab import boot, cache, images, instance

log = logging.getLogger("xenlfs.lab")

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


def cmd_build(args: argparse.Namespace, config: settings.Config) -> int:
    times = ui.StepTimes()
    artefacts = images.build(build_options(config), times)
    if args.json:
        ui.print_json({**artefacts.description, "times": dict(times.steps)})
        return 0
    ui.stdout.print(f"xen:         {artefacts.xen}\ndom0 kernel: {artefacts.dom0_kernel}\n"
                    f"dom0 initrd: {artefacts.dom0_initrd} "
                    f"({ui.size(artefacts.dom0_initrd.stat().st_size)})", markup=False)
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
    name = config.lab.instance
    lab = instance.down(name)
    if lab is None:
        ui.stdout.print(f"lab {name!r} is not up")
    else:
        ui.stdout.print(f"lab {name!r} stopped; its logs stay in {lab.spec.run_dir}")
    return 0


def cmd_status(args: argparse.Namespace, config: settings.Config) -> int:
    report = instance.status(config.lab.instance)
    if report["state"] == "up":
        from xenlfs.lab import hvm

        report["hvm"] = hvm.virtualisation(instance.find(config.lab.instance))
    if args.json:
        ui.print_json(report)
    else:
        table = ui.Table("", "", title=f"lab {report['name']!r}: {report['state']}")
        for key in ("pid", "dom0_uptime", "hvm", "serial_log", "share", "started", "error"):
            if key in report:
                value = report[key]
                table.add_row(key, ui.seconds(value) if key == "dom0_uptime" else value)
        table.print()
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
    lab = instance.find(config.lab.instance)
    ui.stdout.print(lab.attach_disk(disk.path, disk.serial, readonly=args.read_only))
    return 0


def cmd_push(args: argparse.Namespace, config: settings.Config) -> int:
    if not args.source.exists():
        raise UsageError(f"argument source: {args.source} does not exist")
    instance.find(config.lab.instance).channel.push(args.source, args.target)
    return 0


def cmd_pull(args: argparse.Namespace, config: settings.Config) -> int:
    instance.find(config.lab.instance).channel.pull(args.source, args.target)
    return 0


def cmd_clean(args: argparse.Namespace, config: settings.Config) -> int:
    lab_dir = cache.lab_cache(config.xenlfs.cache_dir)
    freed = cache.clean(config.xenlfs.cache_dir)
    verb = "would free" if run.dry_run() else "freed"
    ui.stdout.print(f"{lab_dir}: {verb} {ui.size(freed)}", markup=False)
    return 0
