"""`xenlfs snapshot create|extract|verify|list|show`: step 0 of the hint (appendix A)."""

from __future__ import annotations

import argparse
import socket
import time
from pathlib import Path

from xenlfs import settings, ui
from xenlfs.commands.parser import ArgumentParser, add_dry_run, add_group, add_json
from xenlfs.errors import UsageError
from xenlfs.snapshot import catalog, extract, formats
from xenlfs.snapshot import create as creating
from xenlfs.snapshot import verify as verifying


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

    check = sub.add_parser(
        "verify", parents=[common], help="check a snapshot is whole and matches its manifest",
        description="Decompress and read the whole archive: every member and every file's "
        "hash must match the manifest (an archive without one fails unless --no-manifest). "
        "With --against DIR, compare the manifest with a live "
        "tree instead and list what was added, removed or changed.")
    check.add_argument("archive", type=Path, metavar="ARCHIVE")
    check.add_argument("--against", type=Path, metavar="DIR",
                       help="compare with this tree (e.g. / or an extracted copy)")
    check.add_argument("--no-manifest", action="store_true",
                       help="accept an archive without a manifest (the hint's own .tgz): only "
                       "check that it is whole; without this, no manifest is a failure")
    add_json(check)
    check.set_defaults(handler=verify_snapshot)

    listing = sub.add_parser("list", parents=[common], help="list the snapshots in a directory",
                             description="List the snapshots in DIR (default: [snapshot] dir), "
                             "with unfinished ones left by killed runs.")
    listing.add_argument("directory", nargs="?", type=Path, metavar="DIR")
    settings.add_flags(listing, "snapshot")
    add_json(listing)
    listing.set_defaults(handler=list_snapshots)

    show = sub.add_parser("show", parents=[common], help="show what a snapshot holds",
                          description="Print a snapshot's metadata (created, host, kernel, "
                          "root, excludes, tool versions) and a summary of its entries.")
    show.add_argument("archive", type=Path, metavar="ARCHIVE")
    add_json(show)
    show.set_defaults(handler=show_snapshot)


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


def shown(path: str) -> str:
    """A manifest path for the terminal: absolute, on one line (ui.escaped)."""
    return "/" if path == "." else "/" + ui.escaped(path)


def create_snapshot(args: argparse.Namespace, config: settings.Config) -> int:
    output, compression = output_path(
        args.output, config.snapshot.dir, config.snapshot.compression,
        config.sources["snapshot.compression"] == "command line")
    if args.output is None or output.parent == config.snapshot.dir:
        output.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    request = creating.Request(root=args.root, output=output, compression=compression,
                               excludes=tuple(args.exclude), includes=tuple(args.include),
                               force=args.force, allow_unreadable=args.allow_unreadable)
    with ui.step(f"snapshot {args.root} to {output}"):
        result = creating.create(request)
    if not args.dry_run:
        ui.stdout.print(f"{ui.escaped(result.archive)}: {result.entries} entries, "
                        f"{ui.size(result.content_bytes)} of files in "
                        f"{ui.size(result.archive_bytes)}, {ui.seconds(result.seconds)}; "
                        f"manifest {ui.escaped(result.manifest.name)}", markup=False)
    return 0


def extract_snapshot(args: argparse.Namespace, config: settings.Config) -> int:
    extract(args.archive, args.dest)
    return 0


def verify_snapshot(args: argparse.Namespace, config: settings.Config) -> int:
    if args.against is None:
        report = verifying.verify(args.archive, need_manifest=not args.no_manifest)
        name = ui.escaped(args.archive)
        if args.json:
            ui.print_json(report.to_json())
        elif report.ok and report.note:
            ui.stdout.print(f"{name}: whole, {report.entries} entries; {report.note} "
                            f"({report.seconds:.1f} s)", markup=False)
        elif report.ok:
            ui.stdout.print(f"{name}: whole; all {report.entries} entries match the "
                            f"manifest ({report.seconds:.1f} s)", markup=False)
        else:
            for problem in report.problems:
                ui.stdout.print(f"{name}: {problem}", markup=False)
        return 0 if report.ok else 1
    report, found = verifying.against(args.archive, args.against)
    if args.json:
        ui.print_json({**report.to_json(), **found.to_json(), "against": str(args.against)})
        return 0 if report.ok and found.none else 1
    for problem in report.problems:
        ui.stdout.print(f"{ui.escaped(args.archive)}: {problem}", markup=False)
    sections: tuple[tuple[str, dict[str, list[str]]], ...] = (
        ("added", {p: [] for p in found.added}), ("removed", {p: [] for p in found.removed}),
        ("changed content", found.content), ("changed metadata", found.metadata))
    for title, paths in sections:
        if not paths:
            continue
        ui.stdout.print(f"{title} ({len(paths)}):", markup=False)
        for path, fields in list(paths.items())[:verifying.SHOWN]:
            detail = f"  ({', '.join(fields)})" if fields else ""
            ui.stdout.print(f"  {shown(path)}{detail}", markup=False)
        if len(paths) > verifying.SHOWN:
            ui.stdout.print(f"  … and {len(paths) - verifying.SHOWN} more (see --json)")
    if found.none:
        ui.stdout.print(f"{ui.escaped(args.against)} matches {ui.escaped(args.archive)}: "
                        f"{report.entries} entries, nothing added, removed or changed",
                        markup=False)
    return 0 if report.ok and found.none else 1


def list_snapshots(args: argparse.Namespace, config: settings.Config) -> int:
    rows = catalog.listing(args.directory or config.snapshot.dir)
    if args.json:
        ui.print_json(rows)
        return 0
    if not rows:
        ui.stdout.print(f"no snapshots in {args.directory or config.snapshot.dir}",
                        markup=False)
        return 0
    table = ui.Table("archive", "size", "created", "root", "status")
    for row in rows:
        table.add_row(row["archive"], ui.size(row["bytes"]),
                      row.get("created") or row.get("modified") or "", row.get("root") or "",
                      row["status"], style="" if row["status"] == "ok" else "yellow")
    table.print()
    return 0


def show_snapshot(args: argparse.Namespace, config: settings.Config) -> int:
    data = catalog.show(args.archive)
    if args.json:
        ui.print_json(data)
        return 0
    meta = data["meta"]
    lines = [f"archive      {ui.escaped(data['archive'])} ({ui.size(data['bytes'])}, "
             f"{meta.get('compression')}) {data['status']}",
             f"created      {meta.get('created')} on {meta.get('host')} "
             f"(kernel {meta.get('kernel')}) by xenlfs {meta.get('xenlfs')}, {meta.get('tar')}",
             f"root         {ui.escaped(meta.get('root') or '')}",
             f"entries      {meta.get('entries')}: " +
             ", ".join(f"{n} {kind}" for kind, n in data["types"].items()),
             f"content      {ui.size(meta.get('content_bytes', 0))}",
             "excluded     " + ", ".join(
                 ui.escaped(e["path"]) + ("/*" if e["keep_dir"] else "")
                 for e in meta.get("excludes", [])),
             f"setuid/gid   {len(data['setuid'])} files; capabilities: "
             + (", ".join(shown(p) for p in data["capabilities"]) or "none")]
    if meta.get("unreadable"):
        lines.append(f"unreadable   {len(meta['unreadable'])} files were left out")
    for line in lines:
        ui.stdout.print(line, markup=False)
    return 0
