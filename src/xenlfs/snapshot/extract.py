"""Extracting a snapshot (or any tar, plain or compressed) with GNU tar, keeping everything,
in a jail where nothing outside the destination can be written.

GNU tar refuses members named with '..' or a leading '/' and defers symlinks the archive
makes that point outside, but it follows symlinks the destination already holds: a directory
target (or a filesystem used as it is) with `etc -> /etc` and a member `etc/passwd` would
rewrite the host's /etc/passwd. So tar runs chrooted into a root of its own, made in a private
mount namespace: an empty read-only tmpfs holding the host's program directories read-only
(tar, its libraries and decompressors) and the destination, bind-mounted writable at its own
path with the filesystems mounted under it (a rehearsal's /boot partition under its root:
`guest prepare` refuses a directory target with mounts inside, so only such layouts get
there). Whatever a name or link resolves to, the kernel finds either the destination or
something read-only or missing: writes land inside or fail. docs/safety.md says why this and
not an extractor that checks links itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from xenlfs import run, ui
from xenlfs.errors import CommandFailed, PreconditionError, ToolMissing, UsageError
from xenlfs.snapshot import formats

log = logging.getLogger("xenlfs.snapshot")

CHUNK = 1 << 20

# Owners by number (the snapshot's /etc/passwd, not the host's, names them), modes incl.
# setuid, every xattr namespace (security.capability!) and ACLs.
EXTRACT_FLAGS = ("--numeric-owner", "--same-owner", "--preserve-permissions", "--xattrs",
                 "--xattrs-include=*", "--acls")


JAIL_BASE = Path("/run/xenlfs")
# The host's directories programs are loaded from; a merged-/usr system has links for some.
PROGRAM_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
# $1 the jail's mountpoint, $2 the destination (absolute, no links), then the command.
# Mounts made in the private namespace vanish with it, also when xenlfs is killed.
JAIL_SCRIPT = f"""set -e
jail=$1 dest=$2
shift 2
mount -t tmpfs -o mode=0755,size=1m xenlfs-jail "$jail"
for dir in {" ".join(PROGRAM_DIRS)}; do
    if [ -L "/$dir" ]; then ln -s "$(readlink "/$dir")" "$jail/$dir"
    elif [ -d "/$dir" ]; then mkdir "$jail/$dir"; mount --bind -o ro "/$dir" "$jail/$dir"
    fi
done
mkdir -p "$jail$dest"
mount --rbind "$dest" "$jail$dest"
mount -o remount,ro "$jail"
exec chroot "$jail" "$@"
"""


@contextlib.contextmanager
def confined(dest: Path) -> Iterator[list[str]]:
    """The command prefix that runs a program (from the host's /usr) chrooted into a jail
    where `dest` (an existing directory) is the only place it can write."""
    dest = Path(os.path.realpath(dest))
    for name in PROGRAM_DIRS:
        if dest.parts[1:2] == (name,):
            raise UsageError(f"{dest} is inside the host's /{name}; extract somewhere else")
    _remove_stale_jails()
    jail = JAIL_BASE / f"extract-{os.getpid()}"
    jail.mkdir(parents=True, exist_ok=True)
    try:
        yield ["unshare", "--mount", "--propagation", "private", "sh", "-c", JAIL_SCRIPT,
               "xenlfs-jail", str(jail), str(dest)]
    finally:
        with contextlib.suppress(OSError):
            jail.rmdir()


def _remove_stale_jails() -> None:
    """Empty mountpoints left by killed runs (their namespaces died with them)."""
    for jail in JAIL_BASE.glob("extract-*"):
        pid = jail.name.removeprefix("extract-")
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            with contextlib.suppress(OSError):
                jail.rmdir()


def extract_argv(dest: Path, compression: formats.Compression) -> list[str]:
    argv = ["tar", "--extract", "--file=-", f"--directory={dest}", *EXTRACT_FLAGS, "--verbose"]
    if compression.tar_flag:
        argv.append(compression.tar_flag)
    return argv


@dataclass(frozen=True)
class Archive:
    """An archive as a run looked at it, once, before changing anything (look)."""

    path: Path
    compression: formats.Compression  # what its first bytes say it is


def look(archive: Path) -> Archive:
    """The archive a run will extract, checked once: a file, a tar (plain or compressed),
    and a run that may restore what it holds — root's, or a dry run's, which only looks.
    Raises UsageError for a missing or non-tar archive, PreconditionError when not root."""
    archive = Path(archive)
    if not archive.is_file():
        raise UsageError(f"{archive} does not exist or is not a file")
    compression = formats.detect(archive)
    if not run.dry_run():
        _need_root()
    return Archive(archive, compression)


def extract(archive: Path | Archive, dest: Path) -> None:
    """Extract `archive` into `dest` (created if missing) exactly as it was snapshotted; a
    path is looked at first (look), an Archive was already.

    Shows progress on a terminal. Raises CommandFailed when tar fails.
    """
    source = archive if isinstance(archive, Archive) else look(archive)
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise UsageError(f"{dest} exists and is not a directory")
    if run.dry_run():
        log.info("would run (confined to %s): %s < %s", dest,
                 run.command_line(extract_argv(dest, source.compression)), source.path)
        return
    with open(source.path, "rb") as f:
        _extract_from(f, dest, source.compression, source.path.stat().st_size,
                      source.path.name, damaged="the archive may be damaged (xenlfs snapshot "
                      f"verify {source.path})")


def read_head(source: IO[bytes]) -> bytes:
    """The first bytes of a stream, enough for formats.detect_head (which checks them)."""
    head = source.read(512)
    formats.detect_head(head, "the input")
    return head


def extract_stream(source: IO[bytes], dest: Path, head: bytes | None = None,
                   label: str = "the input") -> None:
    """Extract an archive read from `source` (a pipe: Ganeti's import) into `dest`; its
    compression is told by its first bytes, as for a file. `head`: those bytes, if the
    caller has read them already (read_head), to refuse bad input before changing a disk."""
    dest = Path(dest)
    _need_root()
    if head is None:
        head = read_head(source)
    compression = formats.detect_head(head, "the input")
    if run.dry_run():
        log.info("would run (confined to %s): %s < the input", dest,
                 run.command_line(extract_argv(dest, compression)))
        return
    _extract_from(source, dest, compression, None, label,
                  damaged="the input is not a whole archive (was the export complete?)",
                  head=head)


def _need_root() -> None:
    if os.geteuid() != 0:
        raise PreconditionError("extracting a snapshot needs root: owners, device nodes and "
                                "security xattrs can only be restored by root",
                                hint="run it again as root, or look first with --dry-run")


def _extract_from(source: IO[bytes], dest: Path, compression: formats.Compression,
                  size: int | None, label: str, *, damaged: str, head: bytes = b"") -> None:
    # tar starts the decompressor itself: missing, it would read as a damaged archive.
    if compression.decompress and shutil.which(compression.decompress[0]) is None:
        tool = compression.decompress[0]
        raise ToolMissing(f"{tool} is not installed; tar needs it to read {label} "
                          f"({compression.name})", hint=run.install_hint(tool))
    dest.mkdir(parents=True, exist_ok=True)
    dest = Path(os.path.realpath(dest))
    argv = extract_argv(dest, compression)
    with ui.step(f"extract {label} into {dest}"), confined(dest) as jail, \
            tempfile.TemporaryFile() as errors, ui.byte_progress() as progress:
        tar = run.spawn([*jail, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                        stderr=errors)
        assert tar.stdin is not None and tar.stdout is not None
        files = [0]
        counter = threading.Thread(target=_count_lines, args=(tar.stdout, files), daemon=True)
        counter.start()
        task = progress.add_task("extracting", total=size, files=0)
        try:
            _pump(source, tar.stdin, lambda n: progress.update(task, advance=n, files=files[0]),
                  head)
            tar.wait()
        except BaseException:
            tar.kill()
            tar.wait()
            raise
        finally:
            counter.join()
        errors.seek(0)
        stderr = errors.read().decode("utf-8", "replace")
        if tar.returncode and _jail_failed(stderr):
            raise PreconditionError(f"could not make the jail to extract in:\n{stderr.strip()}",
                                    hint="it needs root, mount namespaces (kernel "
                                    "CONFIG_NAMESPACES) and tmpfs; xenlfs never extracts "
                                    "without it ('xenlfs doctor' says what is missing)")
        if tar.returncode:
            # Named as tar alone: the jail's setup script would bury tar's own words.
            tail = "\n".join(stderr.strip().splitlines()[-15:])
            raise CommandFailed(f"{run.command_line(argv)} (in its jail) failed with exit "
                                f"status {tar.returncode}:\n{tail}", argv=argv,
                                returncode=tar.returncode, stderr=tail,
                                hint=f"{damaged}, or its names lead through symlinks out of "
                                f"{dest}: those are never written through")
    log.info("extracted %d entries from %s into %s", files[0], label, dest)


def _jail_failed(stderr: str) -> bool:
    """Whether the jail's own setup failed (unshare, mount, chroot), not tar inside it."""
    first = stderr.lstrip().split(":", 1)[0]
    return first in ("unshare", "mount", "chroot", "mkdir", "ln", "sh")


def _pump(source: IO[bytes], sink: IO[bytes], advance: Callable[[int], object],
          head: bytes = b"") -> None:
    """Copy the archive into tar; stop quietly if tar exits early (its error says why)."""
    try:
        with sink:
            if head:
                sink.write(head)
                advance(len(head))
            while chunk := source.read(CHUNK):
                sink.write(chunk)
                advance(len(chunk))
    except BrokenPipeError:
        pass


def _count_lines(stream: IO[bytes], counter: list[int]) -> None:
    for _ in stream:
        counter[0] += 1
