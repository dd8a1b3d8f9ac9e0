"""Extracting a snapshot (or any tar, plain or compressed) with GNU tar, keeping everything."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

from xenlfs import run, ui
from xenlfs.errors import PreconditionError, ToolMissing, UsageError
from xenlfs.snapshot import formats

log = logging.getLogger("xenlfs.snapshot")

CHUNK = 1 << 20

# Owners by number (the snapshot's /etc/passwd, not the host's, names them), modes incl.
# setuid, every xattr namespace (security.capability!) and ACLs. GNU tar itself refuses
# members with '..' or a leading '/', and defers symlinks that point outside dest.
EXTRACT_FLAGS = ("--numeric-owner", "--same-owner", "--preserve-permissions", "--xattrs",
                 "--xattrs-include=*", "--acls")


def extract_argv(dest: Path, compression: formats.Compression) -> list[str]:
    argv = ["tar", "--extract", "--file=-", f"--directory={dest}", *EXTRACT_FLAGS, "--verbose"]
    if compression.tar_flag:
        argv.append(compression.tar_flag)
    return argv


def extract(archive: Path, dest: Path) -> None:
    """Extract `archive` into `dest` (created if missing) exactly as it was snapshotted.

    Shows progress on a terminal. Raises UsageError for a missing or non-tar archive,
    PreconditionError when not root, CommandFailed when tar fails.
    """
    archive, dest = Path(archive), Path(dest)
    if not archive.is_file():
        raise UsageError(f"{archive} does not exist or is not a file")
    compression = formats.detect(archive)
    if dest.exists() and not dest.is_dir():
        raise UsageError(f"{dest} exists and is not a directory")
    if os.geteuid() != 0:
        raise PreconditionError("extracting a snapshot needs root: owners, device nodes and "
                                "security xattrs can only be restored by root",
                                hint="run it again as root")
    if run.dry_run():
        log.info("would run: %s < %s", run.command_line(extract_argv(dest, compression)),
                 archive)
        return
    with open(archive, "rb") as source:
        _extract_from(source, dest, compression, archive.stat().st_size, archive.name,
                      hint=f"the archive may be damaged: xenlfs snapshot verify {archive}")


def read_head(source: IO[bytes]) -> bytes:
    """The first bytes of a stream, enough for formats.detect_head (which checks them)."""
    head = source.read(512)
    formats.detect_head(head, "the input")
    return head


def extract_stream(source: IO[bytes], dest: Path, head: bytes | None = None) -> None:
    """Extract an archive read from `source` (a pipe: Ganeti's import) into `dest`; its
    compression is told by its first bytes, as for a file. `head`: those bytes, if the
    caller has read them already (read_head), to refuse bad input before changing a disk."""
    dest = Path(dest)
    if os.geteuid() != 0:
        raise PreconditionError("extracting a snapshot needs root: owners, device nodes and "
                                "security xattrs can only be restored by root",
                                hint="run it again as root")
    if head is None:
        head = read_head(source)
    compression = formats.detect_head(head, "the input")
    if run.dry_run():
        log.info("would run: %s < the input", run.command_line(extract_argv(dest, compression)))
        return
    _extract_from(source, dest, compression, None, "the input",
                  hint="the input is not a whole archive (was the export complete?)", head=head)


def _extract_from(source: IO[bytes], dest: Path, compression: formats.Compression,
                  size: int | None, label: str, *, hint: str, head: bytes = b"") -> None:
    argv = extract_argv(dest, compression)
    # tar starts the decompressor itself: missing, it would read as a damaged archive.
    if compression.decompress and shutil.which(compression.decompress[0]) is None:
        tool = compression.decompress[0]
        raise ToolMissing(f"{tool} is not installed; tar needs it to read {label} "
                          f"({compression.name})", hint=run.install_hint(tool))
    dest.mkdir(parents=True, exist_ok=True)
    with ui.step(f"extract {label} into {dest}"), \
            tempfile.TemporaryFile() as errors, ui.byte_progress() as progress:
        tar = run.spawn(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors)
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
        run.check_finished(tar, stderr=errors.read().decode("utf-8", "replace"), hint=hint)
    log.info("extracted %d entries from %s into %s", files[0], label, dest)


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
