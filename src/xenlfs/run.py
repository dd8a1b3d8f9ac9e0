"""The one runner: every external command xenlfs starts goes through here.

It logs the command line (shown with --debug), honours --dry-run for commands that write,
captures output, and turns failures into typed errors whose hint says what to install.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from xenlfs.errors import CommandFailed, ToolMissing

log = logging.getLogger("xenlfs.run")

_dry_run: ContextVar[bool] = ContextVar("dry_run", default=False)


@dataclass(frozen=True)
class Install:
    """Where a program comes from: Debian's package and the LFS/BLFS page that builds it."""

    debian: str
    lfs: str


# Programs xenlfs calls, and how a user gets them. Unknown programs get a generic hint.
TOOLS: dict[str, Install] = {
    "tar": Install("tar", "LFS book, chapter 8 'Tar'"),
    "zstd": Install("zstd", "LFS book, chapter 8 'Zstd'"),
    "gzip": Install("gzip", "LFS book, chapter 8 'Gzip'"),
    "xz": Install("xz-utils", "LFS book, chapter 8 'Xz'"),
    "mkfs.ext4": Install("e2fsprogs", "LFS book, chapter 8 'E2fsprogs'"),
    "e2fsck": Install("e2fsprogs", "LFS book, chapter 8 'E2fsprogs'"),
    "resize2fs": Install("e2fsprogs", "LFS book, chapter 8 'E2fsprogs'"),
    "losetup": Install("mount", "LFS book, chapter 8 'Util-linux'"),
    "mount": Install("mount", "LFS book, chapter 8 'Util-linux'"),
    "umount": Install("mount", "LFS book, chapter 8 'Util-linux'"),
    "sfdisk": Install("fdisk", "LFS book, chapter 8 'Util-linux'"),
    "lsblk": Install("util-linux", "LFS book, chapter 8 'Util-linux'"),
    "blkid": Install("util-linux", "LFS book, chapter 8 'Util-linux'"),
    "findmnt": Install("util-linux", "LFS book, chapter 8 'Util-linux'"),
    "lvcreate": Install("lvm2", "BLFS book 'LVM2'"),
    "lvs": Install("lvm2", "BLFS book 'LVM2'"),
    "vgs": Install("lvm2", "BLFS book 'LVM2'"),
    "pvs": Install("lvm2", "BLFS book 'LVM2'"),
    "lvremove": Install("lvm2", "BLFS book 'LVM2'"),
    "xfs_info": Install("xfsprogs", "BLFS book 'xfsprogs'"),
    "ssh-keygen": Install("openssh-client", "BLFS book 'OpenSSH'"),
    "mkfs.ext3": Install("e2fsprogs", "LFS book, chapter 8 'E2fsprogs'"),
    "mkfs.ext2": Install("e2fsprogs", "LFS book, chapter 8 'E2fsprogs'"),
    "setfacl": Install("acl", "LFS book, chapter 8 'Acl'"),
    "getfacl": Install("acl", "LFS book, chapter 8 'Acl'"),
    "setfattr": Install("attr", "LFS book, chapter 8 'Attr'"),
    "qemu-system-x86_64": Install("qemu-system-x86", "BLFS book 'qemu'"),
    "qemu-img": Install("qemu-utils", "BLFS book 'qemu'"),
    "debootstrap": Install("debootstrap", "no LFS page: the lab needs Debian's debootstrap"),
    "dpkg-deb": Install("dpkg", "no LFS page: the lab unpacks Debian packages"),
    "apt-get": Install("apt", "no LFS page: the lab downloads Debian packages"),
    "cpio": Install("cpio", "BLFS book 'cpio'"),
    "busybox": Install("busybox-static", "BLFS book 'BusyBox' (build it static)"),
    "depmod": Install("kmod", "LFS book, chapter 8 'Kmod'"),
    "modprobe": Install("kmod", "LFS book, chapter 8 'Kmod'"),
    "apt-cache": Install("apt", "no LFS page: the lab asks apt which Debian packages to use"),
    "chroot": Install("coreutils", "LFS book, chapter 8 'Coreutils'"),
    "unshare": Install("util-linux", "LFS book, chapter 8 'Util-linux'"),
    "xl": Install("xen-utils-4.17", "build Xen: 'xenlfs build xen' (hint step 3)"),
    "xentop": Install("xen-utils-4.17", "build Xen: 'xenlfs build xen' (hint step 3)"),
    "grub-script-check": Install("grub2-common", "LFS book, chapter 8 'GRUB'"),
    "grub-file": Install("grub-common", "LFS book, chapter 8 'GRUB'"),
    "grub-editenv": Install("grub-common", "LFS book, chapter 8 'GRUB'"),
    "ip": Install("iproute2", "LFS book, chapter 8 'IPRoute2'"),
    "bridge": Install("iproute2", "LFS book, chapter 8 'IPRoute2'"),
    "make": Install("make", "LFS book, chapter 8 'Make'"),
    "nice": Install("coreutils", "LFS book, chapter 8 'Coreutils'"),
    "config": Install("linux-source-6.1", "LFS book, chapter 10 'Linux' (scripts/config)"),
}


def install_hint(program: str) -> str:
    name = Path(program).name
    tool = TOOLS.get(name)
    if tool is None:
        return f"install {name} and make sure it is on PATH"
    return f"on Debian: apt-get install {tool.debian}; on LFS: see {tool.lfs}"


def dry_run() -> bool:
    return _dry_run.get()


def set_dry_run(value: bool) -> None:
    _dry_run.set(value)


@contextlib.contextmanager
def dry_run_as(value: bool) -> Iterator[None]:
    token = _dry_run.set(value)
    try:
        yield
    finally:
        _dry_run.reset(token)


def command_line(argv: Sequence[str | os.PathLike[str]]) -> str:
    return shlex.join(os.fspath(a) for a in argv)


def _environment(env: Mapping[str, str] | None) -> dict[str, str]:
    # Tools' output is parsed: make it independent of the user's locale.
    merged = dict(os.environ)
    merged["LC_ALL"] = "C.UTF-8"
    if env:
        merged.update(env)
    return merged


def _tail(text: str | bytes | None, lines: int = 15) -> str:
    if not text:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return "\n".join(text.rstrip().splitlines()[-lines:])


def failed(line: str, argv: list[str], returncode: int, stderr: str | bytes | None,
           hint: str | None = None) -> CommandFailed:
    """The error for a command that exited non-zero, with the last lines of its stderr.
    `line` is the command as shown to the user (lab/channel.py prefixes 'dom0: ')."""
    tail = _tail(stderr)
    detail = f":\n{tail}" if tail else ""
    return CommandFailed(f"{line} failed with exit status {returncode}{detail}", argv=argv,
                         returncode=returncode, stderr=tail, hint=hint)


def timed_out(line: str, argv: list[str], timeout: float, stderr: str | bytes | None,
              hint: str | None = None) -> CommandFailed:
    """The error for a command that did not finish within `timeout` seconds."""
    return CommandFailed(f"{line} did not finish within {timeout:g} s", argv=argv,
                         returncode=None, stderr=_tail(stderr), hint=hint)


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    writes: bool = False,
    check: bool = True,
    capture: bool = True,
    text: bool = True,
    input: str | bytes | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    hint: str | None = None,
) -> subprocess.CompletedProcess[Any]:
    """Run a command to completion.

    writes: the command changes the machine; under --dry-run it is printed, not run, and a
    successful empty result is returned. Commands that only read always run, so a dry run
    plans from real facts.
    """
    args = [os.fspath(a) for a in argv]
    line = command_line(args)
    if writes and dry_run():
        log.info("would run: %s", line)
        return subprocess.CompletedProcess(args, 0, "" if text else b"", "" if text else b"")
    log.debug("+ %s", line)
    try:
        result = subprocess.run(
            args,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE if capture else None,
            text=text,
            env=_environment(env),
            cwd=cwd,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as e:
        if cwd is not None and not Path(cwd).is_dir():
            raise
        raise ToolMissing(f"{args[0]} is not installed", hint=install_hint(args[0])) from e
    except subprocess.TimeoutExpired as e:
        raise timed_out(line, args, e.timeout, e.stderr, hint) from e
    if result.returncode == 127 and result.stderr is not None and "not found" in str(result.stderr):
        raise ToolMissing(f"{args[0]} could not run a program it needs:\n{_tail(result.stderr)}",
                          hint=hint or install_hint(args[0]))
    if check and result.returncode != 0:
        raise failed(line, args, result.returncode, result.stderr, hint)
    return result


def spawn(
    argv: Sequence[str | os.PathLike[str]],
    *,
    stdin: int | IO[Any] | None = subprocess.DEVNULL,
    stdout: int | IO[Any] | None = None,
    stderr: int | IO[Any] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    start_new_session: bool = False,
) -> subprocess.Popen[bytes]:
    """Start a long-running command (QEMU, a tar pipeline) and return it; the caller waits."""
    args = [os.fspath(a) for a in argv]
    log.debug("+ %s &", command_line(args))
    try:
        return subprocess.Popen(
            args,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            env=_environment(env),
            cwd=cwd,
            start_new_session=start_new_session,
        )
    except FileNotFoundError as e:
        raise ToolMissing(f"{args[0]} is not installed", hint=install_hint(args[0])) from e


def check_finished(proc: subprocess.Popen[bytes], *, stderr: str = "",
                   hint: str | None = None) -> None:
    """Turn a spawned command's non-zero exit into the same error run() raises."""
    args = [os.fspath(a) for a in proc.args] if isinstance(proc.args, list) else [str(proc.args)]
    if proc.returncode == 127:
        raise ToolMissing(f"{args[0]} could not run a program it needs", hint=install_hint(args[0]))
    if proc.returncode != 0:
        raise failed(command_line(args), args, proc.returncode, stderr, hint)
