"""`xenlfs snapshot create|extract|verify|list|show`: step 0 of the hint (appendix A)."""

from __future__ import annotations

import argparse
import socket
import time
from pathlib import Path

from xenlfs import settings, ui
from xenlfs.cli import ArgumentParser, add_dry_run, add_group
from xenlfs.errors import UsageError
from xenlfs.snapshot import create as creating
from xenlfs.snapshot import extract, formats


def register(verbs: argparse._SubParsersAction[ArgumentParser], common: ArgumentParser) -> None:
    sub = add_group(verbs, "snapshot", "step 0: snapshot the root filesystem (and restore it)",
                    common)
    create = sub.add_parser(
        "create", parents=[common], help="write a verified snapshot of / (or --root DIR)",
        description="Archive the root filesystem with GNU tar and zstd (or gzip/xz/none), "
        "leaving out the hint's directories, every other mounted filesystem and lost+found, "
        "with a manifest of every file's hash beside it. Written atomically: an interrupted "
        "run leaves nothing under the final name.")
    create.add_argument("output", nargs="?", type=Path, metavar="ARCHIVE",
                        help="file to write; a bare name goes into --dir; default "
                        "HOST-YYYYMMDD-HHMMSS.tar.zst in --dir")
    create.add_argument("--root", type=Path, default=Path("/"), metavar="DIR",
                        help="snapshot this tree instead of / (default: /)")
    create.add_argument("--exclude", action="append", default=[], metavar="PATH",
                        help="also leave out PATH (absolute within the root; wildcards "
                        "allowed); repeatable")
    create.add_argument("--include", action="append", default=[], metavar="PATH",
                        help="keep PATH although it is excluded by default (e.g. /boot, "
                        "or a mounted filesystem); repeatable")
    create.add_argument("--force", action="store_true", help="replace an existing archive")
    create.add_argument("--allow-unreadable", action="store_true",
                        help="write the snapshot even if some files cannot be read "
                        "(they are listed in the manifest)")
    settings.add_flags(create, "snapshot")
    add_dry_run(create)
    create.set_defaults(handler=create_snapshot, writes_log=True)

    restore = sub.add_parser(
        "extract", parents=[common], help="extract a snapshot into a directory",
        description="Extract a snapshot (or any tar, plain or compressed) into DEST with "
        "GNU tar, keeping numeric owners, modes, xattrs and ACLs.")
    restore.add_argument("archive", type=Path, metavar="ARCHIVE")
    restore.add_argument("dest", type=Path, metavar="DEST")
    add_dry_run(restore)
    restore.set_defaults(handler=extract_snapshot, writes_log=True)


def output_path(given: Path | None, directory: Path, compression: str,
                compression_given: bool) -> tuple[Path, formats.Compression]:
    """Where the archive goes and how it is compressed, from the name and the settings."""
    if given is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        given = Path(f"{socket.gethostname()}-{stamp}")
    path = given if given.is_absolute() or "/" in str(given) else directory / given
    by_name = formats.by_suffix(path)
    wanted = formats.by_name(compression)
    if by_name is None:
        return path.with_name(path.name + wanted.suffix), wanted
    if compression_given and by_name is not wanted:
        raise UsageError(f"{path.name} names a {by_name.name} archive but --compression is "
                         f"{wanted.name}", hint=f"name it *{wanted.suffix} or drop --compression")
    return path, by_name


def create_snapshot(args: argparse.Namespace, config: settings.Config) -> int:
    output, compression = output_path(
        args.output, config["snapshot.dir"], config["snapshot.compression"],
        config.sources["snapshot.compression"] == "command line")
    if args.output is None or output.parent == config["snapshot.dir"]:
        output.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    request = creating.Request(root=args.root, output=output, compression=compression,
                               excludes=tuple(args.exclude), includes=tuple(args.include),
                               force=args.force, allow_unreadable=args.allow_unreadable)
    with ui.step(f"snapshot {args.root} to {output}"):
        result = creating.create(request)
    if not args.dry_run:
        ui.stdout.print(f"{result.archive}: {result.entries} entries, "
                        f"{result.content_bytes / 1e6:.1f} MB of files in "
                        f"{result.archive_bytes / 1e6:.1f} MB, {result.seconds:.1f} s; "
                        f"manifest {result.manifest.name}")
    return 0


def extract_snapshot(args: argparse.Namespace, config: settings.Config) -> int:
    extract(args.archive, args.dest)
    return 0
