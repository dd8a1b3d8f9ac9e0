"""`xenlfs build yajl|libaio|acpica|dev86|xen`: hint steps 2–3, source builds."""

from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path

from rich.markup import escape

from xenlfs import recipes, run, settings, ui
from xenlfs.commands.parser import ArgumentParser, add_dry_run, add_group
from xenlfs.errors import XenlfsError
from xenlfs.recipes import libraries, recipe, sources
from xenlfs.recipes import xen as xens


def register(verbs: argparse._SubParsersAction[ArgumentParser], common: ArgumentParser) -> None:
    sub = add_group(verbs, "build", "hint steps 2–3: build libyajl, libaio, iasl, dev86 and Xen "
                    "from source", common)
    for name in recipes.NAMES:
        found = recipes.get(name)
        parser = sub.add_parser(name, parents=[common], help=found.summary,
                                description=f"Build {found.summary} and install it "
                                "(into --destdir if given). Running it again after a failure "
                                "continues where it stopped.")
        settings.add_flags(parser, "build")
        parser.add_argument("--source", type=Path, metavar="TARBALL",
                            help="the source tarball (default: Debian's orig tarball of "
                            f"'{found.debian_source}', via apt-get source; needs deb-src)")
        parser.add_argument("--destdir", type=Path, metavar="DIR",
                            help="stage the install under DIR instead of /")
        parser.add_argument("--jobs", "-j", type=int, metavar="N",
                            help="parallel make jobs (default: the number of CPUs)")
        parser.add_argument("--nice", type=int, metavar="N", help="run make under nice -n N")
        parser.add_argument("--reuse", action="store_true",
                            help="install an identical earlier build from the cache (same "
                            "tarball, same xenlfs recipe code, same options) instead of "
                            "building again")
        if name == "xen":
            parser.add_argument("--configure-args", default="", metavar="ARGS",
                                help="more arguments for ./configure, given with '=': "
                                "--configure-args='--disable-stubdom --disable-docs'")
            parser.add_argument("--targets", default="dist", metavar="TARGETS",
                                help="make targets: dist (the hint's make world, without "
                                "its clean), or e.g. 'dist-xen dist-tools'")
            parser.add_argument("--deps", type=Path, metavar="TREE",
                                help="take libyajl, libaio (headers and libraries) and iasl "
                                "from TREE, where 'xenlfs build yajl|libaio|acpica --destdir "
                                "TREE' put them, not from this machine (usually the same "
                                "TREE as --destdir)")
        add_dry_run(parser)
        parser.set_defaults(handler=run_build, recipe_name=name, writes_log=True)


def run_build(args: argparse.Namespace, config: settings.Config) -> int:
    found = recipes.get(args.recipe_name)
    options = recipe.Options(
        prefix=config.build.prefix, destdir=args.destdir,
        jobs=args.jobs or os.cpu_count() or 1, nice=args.nice,
        extra=tuple(shlex.split(getattr(args, "configure_args", ""))),
        targets=tuple(getattr(args, "targets", "").split()),
        deps=getattr(args, "deps", None))
    cache = config.xenlfs.cache_dir
    if run.dry_run():
        where = args.source or f"Debian's {found.debian_source} orig tarball"
        ui.stdout.print(f"would build {found.name} from {escape(str(where))} "
                        f"and install it into {options.destdir or '/'}:")
        for phase in recipe.plan(found, options):
            ui.stdout.print(f"  {phase.name}")
            for argv in phase.commands:
                line = run.command_line(argv).replace("{stage}", "STAGE")
                ui.stdout.print(f"    {escape(line)}")
        ui.stdout.print("(STAGE is a private directory; 'copy into place' copies it into "
                        f"{options.destdir or '/'})")
        return 0
    tarball = args.source or sources.debian_orig(found.debian_source, cache)
    built = recipe.build(found, tarball, options, work_root=cache / "build/work",
                          log_dir=config.xenlfs.log_dir,
                          result_cache=cache / "build/results" if args.reuse else None)
    for note in built.notes:
        ui.stdout.print(escape(note))
    if built.skipped:
        ui.stdout.print("already done by an earlier run: " + ", ".join(built.skipped))
    how = ("reused the identical earlier build" if built.reused
           else f"built in {ui.seconds(built.seconds)}")
    ui.stdout.print(f"{found.name}: {how}; log {built.log}")
    if found.name == "xen" and not built.reused:
        dist = xens.summarise(built.tree, options.prefix)
        ui.stdout.print(f"dist: xen.gz {dist.xen_gz or 'not built'}; {len(dist.tools)} tools"
                        + (f" ({', '.join(dist.tools[:8])}…)" if dist.tools else "")
                        + f", {dist.libraries} libraries")
    for path in built.installed:
        ui.stdout.print(f"installed {path}")
    return _check_libraries(options.destdir or Path("/"), built.files)


def _check_libraries(root: Path, installed: list[Path]) -> int:
    """Every installed program's libraries must be in the tree it was installed into."""
    report = libraries.check(root, installed)
    if report.skipped:
        ui.stdout.print(f"libraries not checked: {escape(report.skipped)}")
        return 0
    if report.missing:
        needed = ", ".join(dict.fromkeys(m.library for m in report.missing))
        raise XenlfsError(
            f"installed into {root}, but {root} lacks what the installed programs need "
            f"({needed}):\n{libraries.describe(report)}",
            hint="the build found them on this machine, not in that tree: build or install "
            "them into the tree (xenlfs build yajl|libaio --destdir TREE), then build again "
            "with --deps TREE")
    ui.stdout.print(f"libraries: each of the {report.checked} installed ELF files finds its "
                    f"interpreter and libraries in {escape(str(root))}")
    return 0
