"""`xenlfs kernel check|explain|fix|build|install`: hint step 4, the dom0 and domU kernels."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from xenlfs import run, settings, ui
from xenlfs.commands.parser import ArgumentParser, add_dry_run, add_group, add_json
from xenlfs.errors import UsageError
from xenlfs.kernel import build as builds
from xenlfs.kernel import check as checks
from xenlfs.kernel import config as configs
from xenlfs.kernel import explain as explains
from xenlfs.kernel import fix as fixes
from xenlfs.kernel.kconfig import Kconfig, read_tree
from xenlfs.kernel.requirements import DEFAULT_TYPES, GuestType, Level, Role


def escape(text: str) -> str:
    """rich's markup escape, imported on first use (rich is slow to import in the lab)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


_COLOUR = {checks.Status.ENABLED: "green", checks.Status.MODULE: "cyan",
           checks.Status.MISSING: "red", checks.Status.NOT_IN_KERNEL: "dim",
           checks.Status.OFF: "green"}
_LABEL = {Level.REQUIRED: "", Level.RECOMMENDED: " (recommended)",
          Level.UNWANTED: " (should be off)"}


def register(verbs: argparse._SubParsersAction[ArgumentParser], common: ArgumentParser) -> None:
    sub = add_group(verbs, "kernel", "hint step 4: check, fix, build and install the dom0 and "
                    "domU kernels", common)

    def verb(name: str, help: str, handler: object) -> ArgumentParser:
        parser = sub.add_parser(name, parents=[common], help=help, description=help)
        settings.add_flags(parser, "kernel")
        parser.set_defaults(handler=handler)
        return parser

    check = verb("check", "check a kernel config against what a dom0 or domU needs",
                 check_config)
    check.add_argument("kernel_config", nargs="?", type=Path, metavar="CONFIG",
                       help="a .config (plain, .gz or .xz); default: --src TREE/.config, "
                       "/proc/config.gz, /boot/config-$(uname -r)")
    _role(check)
    _initramfs(check)
    add_json(check)

    explain = verb("explain", "why an option is off: unmet dependencies, menuconfig location",
                   explain_symbols)
    explain.add_argument("symbols", nargs="+", metavar="SYMBOL", help="e.g. XEN_DOM0")
    explain.add_argument("--file", type=Path, metavar="CONFIG",
                         help="the config to explain against (default: TREE/.config)")
    add_json(explain)

    fix = verb("fix", "set a tree's .config so it meets a role's requirements", fix_config)
    _role(fix)
    _initramfs(fix)
    fix.add_argument("--localversion", metavar="SUFFIX",
                     help="General setup → Local version, e.g. -xen-dom0 (hint step 4)")
    fix.add_argument("--start", choices=fixes.STARTS,
                     help="start from this make target instead of the tree's .config")
    fix.add_argument("--recommended", action="store_true",
                     help="also turn on the recommended options, not only the required ones")
    add_dry_run(fix)

    build = verb("build", "build bzImage and modules in a configured tree", build_kernel)
    build.add_argument("--nice", type=int, metavar="N", help="run make under nice -n N")
    build.set_defaults(writes_log=True)

    install = verb("install", "install vmlinuz-, System.map-, config-VERSION and the modules",
                   install_kernel)
    install.add_argument("--boot", type=Path, metavar="DIR",
                         help="where the kernel goes (default: ROOT/boot)")
    install.add_argument("--root", type=Path, default=Path("/"), metavar="DIR",
                         help="the system to install into: modules go to ROOT/lib/modules")
    add_dry_run(install)


def _role(parser: ArgumentParser) -> None:
    parser.add_argument("--role", required=True, type=Role, choices=list(Role),
                        help="dom0 (privileged, runs xl) or domU (a guest)")
    parser.add_argument("--type", dest="types", type=_guest_types, default=DEFAULT_TYPES,
                        metavar="pv|pvh|hvm[,…]",
                        help="how a domU is booted (xl.cfg's type): pv (the hint's, default) "
                        "needs XEN_PV; pvh needs XEN_PVH; hvm needs no Xen option but a serial "
                        "console, and warns without the PV-on-HVM drivers or with the VGA "
                        "console (fix turns it off); pv,pvh,hvm: all of them")


def _guest_types(text: str) -> tuple[GuestType, ...]:
    try:
        found = tuple(GuestType(word.strip()) for word in text.split(",") if word.strip())
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{e}: give pv, pvh or hvm (or several, "
                                         "comma-separated)") from e
    if not found:
        raise argparse.ArgumentTypeError("give pv, pvh or hvm")
    return tuple(dict.fromkeys(found))


def _initramfs(parser: ArgumentParser) -> None:
    parser.add_argument("--initramfs", action="store_true",
                        help="the domU boots with an initramfs (a distribution's kernel): its "
                        "disk and filesystem drivers may be modules")


def _for(args: argparse.Namespace) -> str:
    """'domU', 'PVH domU', 'PV+HVM domU with an initramfs': what was checked."""
    role = str(args.role)
    if args.role is Role.DOMU and tuple(args.types) != DEFAULT_TYPES:
        role = "+".join(str(t).upper() for t in args.types) + f" {role}"
    return role + (" with an initramfs" if args.initramfs else "")


def _check_type(args: argparse.Namespace) -> None:
    if args.role is Role.DOM0 and tuple(args.types) != DEFAULT_TYPES:
        raise UsageError("--type is for a domU: this dom0 is a PV one",
                         hint="drop --type, or use --role domU")


def _tree(config: settings.Config, required: bool = True) -> Path | None:
    tree = config.kernel.src
    if tree is None and required:
        raise UsageError("this needs a kernel tree", hint="give --src TREE (or [kernel] src)")
    if tree is not None:
        fixes.require_tree(tree)
    return tree


def check_config(args: argparse.Namespace, config: settings.Config) -> int:
    tree = _tree(config, required=False)
    path = configs.locate(args.kernel_config, tree)
    kernel_config = configs.load(path)
    kconfig = read_tree(tree) if tree is not None else None
    _check_type(args)
    results = checks.check(kernel_config, args.role, kconfig, types=args.types,
                           initramfs=args.initramfs)
    failing = checks.failed(results)
    explanations = {r.requirement.symbol: explains.explain(
        r.requirement.symbol, kernel_config, kconfig, want=2 if r.requirement.builtin else 1)
        for r in results if not r.met} if kconfig is not None else {}
    if args.json:
        ui.print_json({"config": str(path), "version": kernel_config.version,
                       "tree": str(tree) if tree else None, "role": str(args.role),
                       "types": [str(t) for t in args.types], "initramfs": args.initramfs,
                       "ok": not failing, "options": [
                           r.as_dict() | ({"explanation": explanations[r.requirement.symbol]
                                           .as_dict()} if r.requirement.symbol in explanations
                                          else {}) for r in results]})
        return 1 if failing else 0
    version = f" (Linux {kernel_config.version})" if kernel_config.version else ""
    what = _for(args)
    a_what = f"{'an' if what[0] == 'H' else 'a'} {what}"
    table = ui.Table("status", "option", "problem", title=f"{path}{version} as {a_what}")
    for r in results:
        colour = _COLOUR[r.status]
        if not r.met and r.status is not checks.Status.MISSING:  # =m, or on when unwanted
            colour = "red" if r.fails else "yellow"
        elif r.status is checks.Status.MISSING and not r.fails:
            colour = "yellow"
        table.add_row(r.status, f"CONFIG_{r.requirement.symbol}{_LABEL[r.requirement.level]}",
                      "" if r.met else r.problem() or "", style=colour)
    if failing:
        table.print(f"{len(failing)} required option(s) missing for {a_what}"
                    + ("" if tree else "; add --src TREE to see why and where"), style="red")
    else:
        table.print(f"every required {what} option is set", style="green")
    shown: set[str] = set()
    for explanation in explanations.values():  # why each unmet option is off, and where
        for line in explains.render(explanation, "", shown):
            ui.stdout.print(escape(line))
    return 1 if failing else 0


def explain_symbols(args: argparse.Namespace, config: settings.Config) -> int:
    tree = _tree(config)
    assert tree is not None
    kernel_config = configs.load(configs.locate(args.file or tree / ".config", tree))
    kconfig: Kconfig = read_tree(tree)
    found = [explains.explain(s.removeprefix("CONFIG_"), kernel_config, kconfig)
             for s in args.symbols]
    if args.json:
        ui.print_json([e.as_dict() for e in found])
    else:
        shown: set[str] = set()
        for e in found:
            for line in explains.render(e, "", shown):
                ui.stdout.print(escape(line))
    return 0


def fix_config(args: argparse.Namespace, config: settings.Config) -> int:
    tree = _tree(config)
    assert tree is not None
    _check_type(args)
    with ui.step(f"kernel fix --role {args.role}"):
        result = fixes.fix(tree, args.role, localversion=args.localversion, start=args.start,
                           recommended=args.recommended, types=args.types,
                           initramfs=args.initramfs)
    changes = fixes.diff(result.before, result.after)
    if run.dry_run():
        ui.stdout.print(f"would change {tree / '.config'}"
                        + (f" (made by make {args.start})" if args.start else "") + ":")
        for line in changes:
            ui.stdout.print(escape(line))
    else:
        backup = fixes.apply(tree, result)
        ui.stdout.print(f"wrote {tree / '.config'}: {len(changes)} option(s) changed"
                        + (f"; the old one is {backup}" if backup else ""))
    if result.added:
        ui.stdout.print("also turned on, as dependencies: " + ", ".join(result.added))
    for warning in result.warnings:
        ui.stdout.print(f"[yellow]kconfig: {escape(warning)}[/yellow]")
    if result.not_stuck:
        ui.stdout.print("[red]did not stick (make olddefconfig undid them):[/red]")
        shown: set[str] = set()
        for e in result.not_stuck:
            for line in explains.render(e, "  ", shown):
                ui.stdout.print(escape(line))
    failing = [r for r in result.results if r.fails]
    if failing:
        ui.stdout.print(f"[red]{len(failing)} required {_for(args)} option(s) still missing: "
                        + ", ".join(r.requirement.symbol for r in failing) + "[/red]")
        return 1
    ui.stdout.print(f"[green]every required {_for(args)} option is set[/green]")
    return 0


def build_kernel(args: argparse.Namespace, config: settings.Config) -> int:
    tree = _tree(config)
    assert tree is not None
    jobs = config.kernel.jobs or os.cpu_count() or 1
    log_path = config.xenlfs.log_dir / f"kernel-build-{fixes.tree_version(tree)}.log"
    with ui.step(f"kernel build in {tree} (-j{jobs}, log {log_path})"):
        built = builds.build(tree, jobs=jobs, log_path=log_path, nice=args.nice)
    ui.stdout.print(f"built {built.release}: {built.bzimage}"
                    + (" and modules" if built.modules else "")
                    + f" in {ui.seconds(built.seconds)}")
    return 0


def install_kernel(args: argparse.Namespace, config: settings.Config) -> int:
    tree = _tree(config)
    assert tree is not None
    boot = args.boot or args.root / "boot"
    installed = builds.install(tree, boot=boot, root=args.root)
    verb = "would install" if run.dry_run() else "installed"
    for path in installed.files:
        ui.stdout.print(f"{verb} {path}")
    if installed.modules_dir is not None:
        ui.stdout.print(f"{verb} modules in {installed.modules_dir}")
    return 0
