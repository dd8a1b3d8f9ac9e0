"""The command line: verbs → step functions. Argument parsing and error reporting only."""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from xenlfs import __version__, files, run, settings, ui
from xenlfs.commands.parser import ArgumentParser
from xenlfs.errors import ExitCode, XenlfsError

log = logging.getLogger("xenlfs")

# Each verb is the module xenlfs.commands.<verb>, which registers it with
# register(subparsers, common). Order is --help order, which follows the hint's steps.
VERBS = ("config", "snapshot", "doctor", "build", "kernel", "grub", "service", "bridge", "guest",
         "rehearse", "ganeti", "lab")

Handler = Callable[[argparse.Namespace, settings.Config], int | None]

EXIT_CODES = """\
exit codes:
  0  success
  1  failed (an error was found or an operation failed)
  2  usage error (bad argument, option or config file)
  3  a precondition is not met (not root, a tool missing, a device in use)
"""


def _common(suppress: bool) -> ArgumentParser:
    """Options every verb takes; given before or after the verb."""
    default = argparse.SUPPRESS if suppress else None
    common = ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true",
                        default=argparse.SUPPRESS if suppress else False,
                        help="show every external command line and tracebacks")
    common.add_argument("--config", type=Path, metavar="FILE", default=default,
                        help="read settings from this TOML file too (also $XENLFS_CONFIG)")
    settings.add_flags(common, "xenlfs")
    return common


def build_parser(argv: Sequence[str] | None = None) -> ArgumentParser:
    """The parser for argv: with only the verb's module when argv names one, because
    importing every step costs seconds where Python is slow (the lab's dom0 under TCG)."""
    parser = ArgumentParser(
        prog="xenlfs",
        description="Xen on Linux From Scratch, step by step, verified. "
        "Each verb is one step of the LFS hint 'Xen Hypervisor on LFS'.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_common(suppress=False)],
    )
    parser.add_argument("--version", action="version", version=f"xenlfs {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=ArgumentParser)
    verbs.required = True
    common = _common(suppress=True)
    for verb in _verbs_to_load(argv):
        importlib.import_module(f"xenlfs.commands.{verb}").register(verbs, common)
    return parser


def _verbs_to_load(argv: Sequence[str] | None) -> Sequence[str]:
    if argv is None:
        return VERBS
    _, rest = _common(suppress=False).parse_known_args(argv)
    words = [word for word in rest if not word.startswith("-")]
    if not words and rest == ["--version"]:
        return ()
    return [words[0]] if words and words[0] in VERBS else VERBS


def _terminated(signum: int, frame: object) -> None:
    # SIGTERM unwinds like Ctrl-C: mounts, loop devices, QEMU and temporary files are cleaned
    # up by the same finally blocks.
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminated)
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    ui.setup_logging(debug=debug, log_dir=None)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        # A verb group given without its sub-verb: show that group's help.
        getattr(args, "group_parser", parser).print_help(sys.stderr)
        return ExitCode.USAGE
    try:
        config = settings.resolve(args, args.config)
        if getattr(args, "writes_log", False):
            path = ui.setup_logging(debug=debug, log_dir=config.xenlfs.log_dir)
            log.debug("xenlfs %s: %s", __version__, " ".join(sys.argv))
            if path:
                log.debug("log file: %s", path)
        run.set_dry_run(bool(getattr(args, "dry_run", False)))
        files.set_backups_kept(config.xenlfs.backups)
        return int(handler(args, config) or 0)
    except XenlfsError as e:
        if debug:
            log.exception("%s", e)
        else:
            log.error("%s", e)
        return int(e.exit_code)
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    except BrokenPipeError:
        return ExitCode.FAILED
    except Exception as e:
        if debug:
            raise
        log.error("internal error (a bug in xenlfs): %s: %s; run again with --debug and report it",
                  type(e).__name__, e)
        return ExitCode.FAILED
