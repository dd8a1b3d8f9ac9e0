"""Making, formatting, attaching and mounting the guest's volume — and always undoing the
attaching and mounting. A volume this run created is removed again if the run fails, so
the next run starts from the same place (it converges)."""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from xenlfs import files, run
from xenlfs.errors import CommandFailed, PreconditionError
from xenlfs.guest import inuse, storage
from xenlfs.guest.storage import Layout, MiB

log = logging.getLogger("xenlfs.guest")

LOOP_MAJOR = 7


mountpoint = inuse.mountpoint
locked = inuse.locked


def clean_leftovers(layout: Layout, name: str) -> None:
    """Unmount what a killed `guest prepare` left mounted: this guest's mountpoint and any
    xenlfs mountpoint of the target whose run is gone (decide() told them from real uses);
    then detach the leftover loops over the image or device (a partition's window)."""
    mounts = inuse.mounts()
    places = {str(mountpoint(name))}
    loops: tuple[str, ...] | list[str] = []
    if layout.kind in ("image", "block") and not layout.create:
        loops = storage._loops_of(layout.path) if layout.loops is None else layout.loops
    devices = [Path(loop) for loop in loops]
    if layout.kind in ("block", "lv") and layout.path.exists():
        devices.append(layout.path)
    for device in devices:
        for member in storage._family(storage._sysfs(device)):
            places |= {where for where in mounts.get(storage._numbers(member), [])
                       if inuse.leftover(where, name)}
    mounted = {where for wheres in mounts.values() for where in wheres}
    for where in sorted(places & mounted):
        log.warning("unmounting %s, left mounted by an earlier run that was killed", where)
        try:  # not lazily: the volume is about to be mounted again, maybe by another loop
            run.run(["umount", where], writes=True)
        except CommandFailed as e:
            raise PreconditionError(f"{where}, left mounted by a killed run, is still busy",
                                    hint=f"see who uses it: fuser -vm {where}") from e
        if not run.dry_run():
            with contextlib.suppress(OSError):
                Path(where).rmdir()
    for loop in loops:
        log.warning("detaching %s, left on %s by an earlier run", loop, layout.path)
        run.run(["losetup", "--detach", loop], writes=True)


def _ensure_node(name: str) -> None:
    """udev does not run here: make /dev/loopN if the kernel has it and /dev does not."""
    if run.dry_run() or os.path.exists(name):
        return
    number = int(name.removeprefix("/dev/loop"))
    os.mknod(name, 0o660 | stat.S_IFBLK, os.makedev(LOOP_MAJOR, number))


def attach_loop(image: Path, offset: int = 0, size: int | None = None) -> str:
    """A loop device over the image (or one partition of it, by offset and size)."""
    window = ["--offset", str(offset)] + (["--sizelimit", str(size)] if size else [])
    for _attempt in range(5):
        name = run.run(["losetup", "--find"]).stdout.strip() or "/dev/loopN"
        _ensure_node(name)
        try:
            run.run(["losetup", *window, name, image], writes=True)
            return name
        except CommandFailed as e:
            if "busy" not in e.stderr:
                raise
            log.debug("%s was taken meanwhile; trying another", name)
    raise PreconditionError("no free loop device after 5 tries", hint="losetup --list")


def _new_image(layout: Layout) -> None:
    if run.dry_run():
        log.info("would create the sparse image %s of %d MiB", layout.path, layout.size // MiB)
        return
    try:  # new, or the empty file a run killed at once left
        fd = os.open(layout.path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as e:
        raise PreconditionError(f"cannot make the image {layout.path}: {e.strerror}") from e
    if os.fstat(fd).st_size:
        os.close(fd)
        raise PreconditionError(f"{layout.path} was filled by someone else meanwhile; left "
                                "alone")
    try:  # half-made, it would block the next run: it goes again if anything fails
        try:
            os.ftruncate(fd, layout.size)
        finally:
            os.close(fd)
        if layout.partition_table != "none":
            write_partition_table(layout.path, layout.partition_table)
    except BaseException as e:
        layout.path.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise PreconditionError(f"cannot make the image {layout.path} of "
                                    f"{layout.size // MiB} MiB: {e.strerror}",
                                    hint="a smaller --size, or another filesystem") from e
        raise


def write_partition_table(path: Path, label: str) -> None:
    """A new table with one Linux partition from 1 MiB to the end: the guest sees xvda with
    xvda1. Whatever table was there is replaced."""
    script = f"label: {label}\nstart=2048, type=L\n"
    run.run(["sfdisk", "--quiet", "--wipe", "always", "--no-reread", "--no-tell-kernel", path],
            input=script, writes=True)


def _partition_window(layout: Layout) -> tuple[int, int | None]:
    if layout.kind not in ("image", "block") or layout.partition_table == "none":
        return 0, None
    if run.dry_run() and layout.create:
        return MiB, layout.size - MiB
    found = storage.partition(layout.path)
    if found is None:
        raise PreconditionError(f"{layout.path} has no Linux partition")
    return found


def _umount(path: Path) -> None:
    try:
        run.run(["umount", path], writes=True)
    except CommandFailed:
        log.warning("umount %s failed; detaching it lazily", path)
        run.run(["umount", "--lazy", path], writes=True)


@contextlib.contextmanager
def in_use_is_a_refusal(device: str) -> Iterator[None]:
    """mkfs and mount open the device exclusively: if someone took it since decide() looked,
    their failure is the same refusal (exit 3)."""
    try:
        yield
    except CommandFailed as e:
        if "busy" in e.stderr or "in use" in e.stderr:
            raise PreconditionError(f"{device} is in use:\n{e.stderr}",
                                    hint="free it first; a running guest: xenlfs guest "
                                    "shutdown NAME") from e
        raise


@contextlib.contextmanager
def attached(layout: Layout, name: str) -> Iterator[Path]:
    """The directory to extract into: the target directory, or the volume mounted. The
    caller holds locked(name)."""
    if layout.kind == "dir":
        yield layout.path
        return
    clean_leftovers(layout, name)
    mnt = mountpoint(name)
    loop: str | None = None
    mounted = False
    created = False
    ok = False
    try:
        if layout.kind == "lv" and layout.create:
            run.run(["lvcreate", *storage.LVM_CONFIG, "--yes", "--name", layout.path.name,
                     "--size", f"{layout.size // MiB}m", layout.vg or ""], writes=True)
            created = True
        device = str(layout.path)
        if layout.kind == "image" and layout.create:
            _new_image(layout)
            created = True
        offset = 0
        if layout.kind == "image" or (layout.kind == "block" and
                                      layout.partition_table != "none"):
            offset, size = _partition_window(layout)
            loop = device = attach_loop(layout.path, offset, size)
        if layout.mkfs:
            label = name[:16]
            marker = inuse.mkfs_marker(name)
            if not run.dry_run():  # a kill during mkfs leaves no signature, only this
                marker.parent.mkdir(parents=True, exist_ok=True)
                with contextlib.suppress(FileNotFoundError):  # then mkfs fails on its own
                    files.write_atomic(marker, inuse.volume_identity(layout.path, offset),
                                       backup=False, follow_symlinks=False)
            with in_use_is_a_refusal(device):
                run.run([f"mkfs.{layout.mkfs}", "-F", "-q", "-L", label, device], writes=True)
            marker.unlink(missing_ok=True)
        if not run.dry_run():
            mnt.mkdir(parents=True, exist_ok=True)
        ro = ["-o", "ro"] if layout.read_only else []
        with in_use_is_a_refusal(device):
            run.run(["mount", "-t", layout.fstype, *ro, device, mnt], writes=True)
        mounted = True
        yield mnt
        ok = True
    finally:
        # Each undo is tried even if an earlier one failed; the first failure is raised.
        with contextlib.ExitStack() as undo:
            if created and not ok:
                undo.callback(_remove_created, layout, name)
            if loop is not None:
                undo.callback(run.run, ["losetup", "--detach", loop], writes=True)
            if mounted:
                undo.callback(_umount, mnt)
        if not run.dry_run():
            with contextlib.suppress(OSError):
                mnt.rmdir()


def _remove_created(layout: Layout, name: str) -> None:
    log.warning("removing %s, made by this run that failed", layout.path)
    if not run.dry_run():  # a later file may get its inode
        inuse.mkfs_marker(name).unlink(missing_ok=True)
    if layout.kind == "lv":
        run.run(["lvremove", *storage.LVM_CONFIG, "--yes", layout.path], writes=True)
    elif not run.dry_run():
        layout.path.unlink(missing_ok=True)
