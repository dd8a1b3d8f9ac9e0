"""Creating a snapshot: GNU tar → (manifest scanner) → zstd/gzip/xz → temp file → rename.

The tar stream passes through this process once: each piece is handed to the compressor and
to the scanner that hashes every file, so the tree is read once, and a readahead thread keeps
the disk busy with the files tar comes to next (readahead.py). The archive is written under
a temporary name in the destination directory, locked while it is being written; it is
fsynced and renamed only when tar, the compressor and the scanner all succeeded.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xenlfs import __version__, run, ui
from xenlfs.errors import CommandFailed, PreconditionError, UsageError, XenlfsError
from xenlfs.files import fsync_dir
from xenlfs.snapshot import atomic, formats, manifest, readahead
from xenlfs.snapshot import excludes as ex
from xenlfs.snapshot.tarscan import Scanner

log = logging.getLogger("xenlfs.snapshot")

CHUNK = 1 << 20
F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ, not exported by Python 3.11

TAR_FLAGS = ("--format=posix", "--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls",
             "--sparse", "--sort=name", "--ignore-failed-read", "--warning=no-file-ignored")
UNREADABLE = re.compile(r"^tar: (.+?)(?:: Warning)?: (?:Cannot open|Cannot read|"
                        r"Cannot savedir|Cannot stat|Read error at byte \d+, while reading "
                        r"\d+ bytes): (.*)$")


@dataclass(frozen=True)
class Request:
    root: Path
    output: Path
    compression: formats.Compression
    excludes: tuple[str, ...] = ()
    includes: tuple[str, ...] = ()
    force: bool = False
    allow_unreadable: bool = False


@dataclass(frozen=True)
class Result:
    archive: Path
    manifest: Path
    entries: int
    content_bytes: int
    archive_bytes: int
    seconds: float
    warnings: tuple[str, ...] = field(default=())


def tar_argv(root: Path, excludes: list[ex.Exclude]) -> list[str]:
    return ["tar", "--create", "--file=-", f"--directory={root}", *TAR_FLAGS,
            *ex.tar_arguments(excludes), "."]


def check(request: Request, mounts: list[ex.Mount]) -> None:
    """Refuse bad input before anything is written."""
    root, output = request.root, request.output
    if not root.is_dir():
        raise UsageError(f"--root {root}: not a directory" if root.exists()
                         else f"--root {root}: does not exist")
    if os.geteuid() != 0:
        raise PreconditionError("a snapshot needs root: only root reads every file and keeps "
                                "every owner, device node and security xattr",
                                hint="run it again as root (sudo)")
    if not output.parent.is_dir():
        raise UsageError(f"{output.parent} does not exist or is not a directory",
                         hint=f"create it first (mkdir -p {output.parent})")
    if output.is_dir():
        raise UsageError(f"{output} is a directory", hint="name the archive file, or give only "
                         "the directory with --dir")
    if output.exists() and not request.force:
        raise UsageError(f"{output} already exists", hint="choose another name, or replace it "
                         "with --force")
    mount = ex.mount_of(os.path.realpath(output.parent), mounts)
    if mount is not None and mount.fstype in ex.VIRTUAL_FSTYPES:
        raise UsageError(f"{output.parent} is on a {mount.fstype} filesystem ({mount.point}), "
                         "which cannot keep a file", hint="write the snapshot to a real disk, "
                         "e.g. /var/backups")
    if mount is not None and mount.fstype in ex.VOLATILE_FSTYPES:
        log.warning("%s is on %s: the snapshot is lost at the next reboot", output.parent,
                    mount.fstype)


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data):]


def _pump(source: int, sink: int, scanner: Scanner, ahead: readahead.Readahead,
          progress: Any, task: Any) -> bool:
    """Hand tar's stream to the compressor (or the file) and to the scanner, piece by piece.
    False: the compressor died before the end (its exit status and message say why)."""
    while chunk := os.read(source, CHUNK):
        view = memoryview(chunk)
        try:
            _write_all(sink, view)
        except BrokenPipeError:
            return False
        scanner.feed(view)
        ahead.consumed(scanner.offset)
        progress.update(task, advance=len(chunk), files=len(scanner.entries))
    return True


def _estimate(root: Path, excluded: Callable[[str], bool]) -> int:
    """Bytes to read, for the ETA on a terminal (not worth its time otherwise)."""
    return sum(size for _, size in readahead.files_in_tar_order(root, excluded))


def create(request: Request) -> Result:
    """Write request.output and its manifest, or nothing at all."""
    start = time.monotonic()
    mounts = ex.read_mounts()
    check(request, mounts)
    root = Path(os.path.realpath(request.root))
    output = request.output.parent.resolve() / request.output.name
    sidecar = manifest.path_for(output)
    plan = ex.plan(str(root), mounts, user_excludes=request.excludes,
                   includes=request.includes,
                   output_paths=[str(output), str(sidecar), str(output.parent / atomic.TEMP_PREFIX)
                                 + "*"])
    argv = tar_argv(root, plan)
    compress = list(request.compression.compress)
    if run.dry_run():
        for e in plan:
            log.info("exclude %s%s (%s)", e.path, " (kept empty)" if e.keep_dir else "",
                     e.reason)
        pipe = f" | {run.command_line(compress)}" if compress else ""
        log.info("would run: %s%s > %s%s…, then rename it to %s and write %s",
                 run.command_line(argv), pipe, output.parent / atomic.TEMP_PREFIX, output.name,
                 output, sidecar)
        return Result(output, sidecar, 0, 0, 0, 0.0)
    atomic.clean_stale(output.parent)
    committed: list[bool] = []
    try:
        with atomic.temp(output) as (fd, temp), \
                atomic.temp(sidecar) as (manifest_fd, manifest_temp):
            try:
                scanner, warnings, unreadable = _pipeline(argv, compress, fd, root, plan)
            except OSError as e:
                raise _disk_error(e, output) from e
            if unreadable and not request.allow_unreadable:
                raise _unreadable_error(unreadable)
            try:
                os.fsync(fd)
                archive_bytes = os.fstat(fd).st_size
                meta = _meta(request, root, plan, archive_bytes, scanner, warnings, unreadable)
                meta["archive_tail_sha256"] = manifest.tail_sha256(fd)
                manifest.write_fd(manifest_fd, meta, scanner.entries)
                os.fsync(manifest_fd)
                with atomic.signals_held():
                    # Archive last: a kill between the two leaves no archive, or an older one
                    # the manifest does not describe (manifest.describes tells).
                    os.rename(manifest_temp, sidecar)
                    os.rename(temp, output)
                    committed.append(True)
                fsync_dir(output.parent)
            except OSError as e:
                if not committed:
                    sidecar.unlink(missing_ok=True)
                raise _disk_error(e, output) from e
    except KeyboardInterrupt:
        if committed:
            log.error("interrupted after %s was complete; it and its manifest are whole", output)
        else:
            log.error("interrupted: the unfinished snapshot was removed; nothing was written "
                      "to %s", output)
        raise
    for warning in warnings:
        log.warning("%s", warning)
    return Result(output, sidecar, len(scanner.entries), scanner.content_bytes, archive_bytes,
                  time.monotonic() - start, tuple(warnings))


def stream(root: Path, out_fd: int, compression: formats.Compression,
           excludes: list[ex.Exclude], quiet: bool = False) -> int:
    """The tree as one archive in the snapshot format (the same tar flags and compressor),
    written to `out_fd` (a pipe: Ganeti's export), with no manifest. Returns the entries.
    An unreadable file is an error: a partial stream must not pass for a whole one."""
    if os.geteuid() != 0:
        raise PreconditionError("a snapshot needs root: only root reads every file and keeps "
                                "every owner, device node and security xattr",
                                hint="run it again as root (sudo)")
    argv = tar_argv(root, excludes)
    compress = list(compression.compress)
    if run.dry_run():
        pipe = f" | {run.command_line(compress)}" if compress else ""
        log.info("would run: %s%s to standard output", run.command_line(argv), pipe)
        return 0
    scanner, warnings, unreadable = _pipeline(argv, compress, out_fd, root, excludes, quiet)
    if unreadable:
        raise _unreadable_error(unreadable)
    for warning in warnings:
        log.warning("%s", warning)
    return len(scanner.entries)


def _unreadable_error(unreadable: list[str]) -> XenlfsError:
    shown = "\n".join(f"  {line}" for line in unreadable[:20])
    more = f"\n  … and {len(unreadable) - 20} more" if len(unreadable) > 20 else ""
    files = f"{len(unreadable)} file" + ("s" if len(unreadable) > 1 else "")
    return XenlfsError(f"{files} could not be read, so no snapshot was written:\n{shown}{more}",
                       hint="fix their permissions, exclude them with --exclude, or accept a "
                       "snapshot without them with --allow-unreadable")


def _died(name: str, returncode: int | None, stderr: str) -> str:
    """What became of a child that ended before the archive was complete, and its words."""
    how = (f"was killed by {signal.Signals(-returncode).name}"
           if returncode is not None and returncode < 0 else f"exited with status {returncode}")
    said = stderr.strip()[-2000:]
    return f"{name} {how} before the archive was complete; nothing was written" + \
        (f":\n{said}" if said else "")


def _disk_error(error: OSError, output: Path) -> XenlfsError:
    if error.errno == errno.ENOSPC:
        mount = ex.mount_of(os.path.realpath(output.parent), ex.read_mounts())
        disk = f"{mount.point} ({mount.fstype} on {mount.source})" if mount else output.parent
        with contextlib.suppress(OSError):
            st = os.statvfs(output.parent)
            disk = f"{disk}, {ui.size(st.f_bavail * st.f_frsize)} of " \
                   f"{ui.size(st.f_blocks * st.f_frsize)} free now"
        return XenlfsError(f"no space left on the filesystem of {output.parent}: {disk} "
                           f"({error.strerror}); nothing was written to {output}",
                           hint="free some space or write the snapshot elsewhere (e.g. xenlfs "
                           "snapshot create /other/disk/NAME)")
    return XenlfsError(f"writing {output} failed: {error}; nothing was written")


def _meta(request: Request, root: Path, plan: list[ex.Exclude], archive_bytes: int,
          scanner: Scanner, warnings: list[str], unreadable: list[str]) -> dict[str, object]:
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": socket.gethostname(), "kernel": os.uname().release, "root": str(root),
        "excludes": [e.to_json() for e in plan], "xenlfs": __version__,
        "tar": run.run(["tar", "--version"]).stdout.splitlines()[0],
        "compression": request.compression.name, "archive": request.output.name,
        "archive_bytes": archive_bytes, "entries": len(scanner.entries),
        "content_bytes": scanner.content_bytes, "tar_bytes": scanner.offset, "hash": "sha256",
        "unreadable": unreadable, "warnings": warnings,
    }


def _pipeline(argv: list[str], compress: list[str], out_fd: int, root: Path,
              plan: list[ex.Exclude], quiet: bool = False
              ) -> tuple[Scanner, list[str], list[str]]:
    scanner = Scanner()
    with tempfile.TemporaryFile() as tar_errors, tempfile.TemporaryFile() as zip_errors, \
            ui.byte_progress(quiet) as progress:
        excluded = ex.matcher([e.pattern for e in plan])
        total = _estimate(root, excluded) if ui.interactive() and not quiet else None
        task = progress.add_task("snapshot", total=total, files=0)
        # Own sessions: Ctrl-C reaches only us, and we stop the children in order.
        compressor = run.spawn(compress, stdin=subprocess.PIPE, stdout=out_fd,
                               stderr=zip_errors, start_new_session=True) if compress else None
        tar = run.spawn(argv, stdout=subprocess.PIPE, stderr=tar_errors, start_new_session=True)
        assert tar.stdout is not None
        source = tar.stdout.fileno()
        sink = compressor.stdin.fileno() if compressor and compressor.stdin else out_fd
        for pipe in (source, sink) if compressor else (source,):
            with contextlib.suppress(OSError):
                fcntl.fcntl(pipe, F_SETPIPE_SZ, CHUNK)
        whole = True
        try:
            with readahead.Readahead(root, excluded) as ahead:
                whole = _pump(source, sink, scanner, ahead, progress, task)
            if not whole:
                # No one reads tar's pipe any more: tar would wait on it forever.
                tar.kill()
            if compressor and compressor.stdin:
                with contextlib.suppress(BrokenPipeError):
                    compressor.stdin.close()
            tar.wait()
            if compressor:
                compressor.wait()
        except BaseException:
            for child in (tar, compressor):
                if child is not None and child.poll() is None:
                    child.kill()
                    child.wait()
            raise
        finally:
            tar.stdout.close()
        tar_errors.seek(0)
        zip_errors.seek(0)
        tar_text = tar_errors.read().decode("utf-8", "replace")
        zip_text = zip_errors.read().decode("utf-8", "replace")
    if compressor is not None and (compressor.returncode != 0 or not whole):
        name = compress[0]
        if "No space left" in zip_text:
            raise OSError(errno.ENOSPC, f"{name} could not write: No space left on device")
        raise CommandFailed(_died(name, compressor.returncode, zip_text), argv=compress,
                            returncode=compressor.returncode, stderr=zip_text)
    unreadable, warnings = [], []
    for line in tar_text.splitlines():
        match = UNREADABLE.match(line)
        if match:
            unreadable.append(f"{match[1]}: {match[2]}")
        elif line.startswith("tar: ") and "Exiting with failure status" not in line:
            warnings.append(line[5:])
    if tar.returncode not in (0, 1):
        raise CommandFailed(_died("tar", tar.returncode, tar_text), argv=argv,
                            returncode=tar.returncode, stderr=tar_text)
    scanner.finish()
    return scanner, warnings, unreadable


__all__ = ["Request", "Result", "create", "stream"]
