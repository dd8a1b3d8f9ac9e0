"""The throwaway disk: a raw image with the host's partitions, its files, BIOS GRUB.

The image is partitioned like the host (same numbers), each filesystem made with the host's
UUID and label, the host's trees copied into it (one way to read a tree: snapshot create's
tar and excludes, streamed straight into extraction's jail, or a snapshot archive), the
copy's few changes written, and GRUB installed onto the image's loop device.
Everything attached or mounted is undone again, whatever happens.
"""

from __future__ import annotations

import contextlib
import logging
import os
import posixpath
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from xenlfs import files, run
from xenlfs.errors import PreconditionError, XenlfsError
from xenlfs.guest import volume
from xenlfs.guest.rootfs import GuestRoot
from xenlfs.rehearse.layout import PRIMARIES, Layout, MiB, Volume
from xenlfs.snapshot import create, formats, manifest
from xenlfs.snapshot import excludes as ex
from xenlfs.snapshot.extract import extract, extract_stream

log = logging.getLogger("xenlfs.rehearse")

START = MiB  # the first partition starts at 1 MiB, as fdisk puts it
EBR = MiB  # before each logical partition: its extended boot record, aligned as fdisk does
PLACEHOLDER = MiB  # a logical partition number the host uses for something not rehearsed
GRUB_PLATFORM = "i386-pc"


@dataclass(frozen=True)
class Content:
    """A host tree and where in the image it goes ("/" or "/boot"): an archive of it (a
    snapshot), or the tree itself (archive None) read with snapshot create's excludes."""

    archive: Path | None
    mountpoint: str
    tree: Path | None = None
    excludes: tuple[ex.Exclude, ...] = ()


@dataclass(frozen=True)
class Partition:
    number: int
    start: int  # bytes
    size: int  # bytes
    kind: str  # the dos type: 83 Linux, 82 swap, c FAT, 5 extended
    bootable: bool = False


def partitions(layout: Layout) -> list[Partition]:
    """The table: each volume at its own number; logical ones (5 and up) inside an extended
    partition, each after the MiB its EBR starts, numbers the host has elsewhere kept by
    small unformatted partitions (the kernel numbers logical partitions in table order)."""
    found = []
    start = START
    for v in layout.volumes:
        if v.number <= PRIMARIES:
            found.append(Partition(v.number, start, v.size, _kind(v), v.mountpoint == "/boot"))
            start += v.size
    if layout.extended is None:
        return found
    by_number = {v.number: v for v in layout.volumes}
    logical = []
    inner = start
    for number in range(PRIMARIES + 1, max(by_number) + 1):
        held = by_number.get(number)
        size = held.size if held else PLACEHOLDER
        logical.append(Partition(number, inner + EBR, size, _kind(held) if held else "83"))
        inner += EBR + size
    return [*found, Partition(layout.extended, start, inner - start, "5"), *logical]


def _kind(v: Volume) -> str:
    return "82" if v.fstype == "swap" else "c" if v.fstype == "vfat" else "83"


def sfdisk_script(layout: Layout, image: Path) -> str:
    """A dos table with each volume at its own partition number."""
    lines = ["label: dos"]
    for part in partitions(layout):
        boot = ", bootable" if part.bootable else ""
        lines.append(f"{image}{part.number} : start={part.start // 512}, "
                     f"size={part.size // 512}, type={part.kind}{boot}")
    return "\n".join(lines) + "\n"


def image_size(layout: Layout) -> int:
    return max(p.start + p.size for p in partitions(layout)) + MiB


def mkfs_argv(v: Volume, device: str) -> list[str]:
    if v.fstype == "swap":
        return ["mkswap", *(["-U", v.uuid] if v.uuid else []),
                *(["-L", v.label] if v.label else []), device]
    if v.fstype == "vfat":
        return ["mkfs.vfat", *(["-i", v.uuid.replace("-", "")] if v.uuid else []),
                *(["-n", v.label] if v.label else []), device]
    return [f"mkfs.{v.fstype}", "-F", "-q", *(["-U", v.uuid] if v.uuid else []),
            *(["-L", v.label] if v.label else []), device]


def _partition_node(loop: str, number: int) -> str:
    node = f"{loop}p{number}"
    if not os.path.exists(node):
        raise PreconditionError(f"partx made no {node} (no udev, and no devtmpfs on /dev?)",
                                hint="mount -t devtmpfs devtmpfs /dev")
    return node


@contextlib.contextmanager
def attached(image: Path) -> Iterator[str]:
    """The whole image on a loop device, its partitions as /dev/loopNpK (partx: no udev)."""
    loop = volume.attach_loop(image)
    try:
        run.run(["partx", "--add", loop], writes=True)
        yield loop
    finally:
        with contextlib.suppress(Exception):
            run.run(["partx", "--delete", loop], writes=True, check=False)
        run.run(["losetup", "--detach", loop], writes=True)


@contextlib.contextmanager
def mounted(layout: Layout, loop: str, top: Path) -> Iterator[Path]:
    """The copied volumes mounted under `top`, / first."""
    with contextlib.ExitStack() as undo:
        top.mkdir(parents=True, exist_ok=True)
        undo.callback(lambda: top.rmdir() if top.is_dir() else None)
        for v in sorted((v for v in layout.volumes if v.content),
                        key=lambda v: v.mountpoint.count("/") + (v.mountpoint != "/")):
            point = top / v.mountpoint.lstrip("/")
            point.mkdir(parents=True, exist_ok=True)
            run.run(["mount", "-t", v.fstype, _partition_node(loop, v.number), point],
                    writes=True)
            undo.callback(volume._umount, point)
        yield top


def build(layout: Layout, contents: list[Content], image: Path, mount_dir: Path,
          change_copy: Callable[[Path], None]) -> None:
    """Make the image: partitions, filesystems, the host's files, the copy's changes, GRUB."""
    image.unlink(missing_ok=True)
    fd = os.open(image, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.ftruncate(fd, image_size(layout))
    finally:
        os.close(fd)
    run.run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", image],
            input=sfdisk_script(layout, image), writes=True)
    with attached(image) as loop:
        for v in layout.volumes:
            run.run(mkfs_argv(v, _partition_node(loop, v.number)), writes=True)
        with mounted(layout, loop, mount_dir) as top:
            for content in contents:
                dest = top / content.mountpoint.lstrip("/")
                if content.tree is not None:
                    copy_tree(content.tree, list(content.excludes), dest, content.mountpoint)
                else:
                    assert content.archive is not None
                    extract(content.archive, dest)
            change_copy(top)
            grub_install(top, loop)
    # No sync: QEMU reads the image through the same page cache, and a throwaway copy need
    # not reach the disk (a sync would also wait for every other filesystem's writes).


def copy_tree(tree: Path, excludes: list[ex.Exclude], dest: Path, what: str) -> None:
    """snapshot create's tar of `tree` (its flags, excludes and checks) piped straight into
    extraction's jail: no archive is written, compressed or read back, and both run at once.

    Whichever side fails, the other stops and both ends of the pipe are closed: the reader's
    end closes when extraction ends, so a producer still writing gets a broken pipe (not an
    error of its own); a producer that fails closes its end, so the reader sees the archive
    end early. The producer's error, if it had one while the reader was still reading, is
    the one raised: the tree could not be read."""
    read_end, write_end = os.pipe()
    failed: list[BaseException] = []
    reading = threading.Event()
    reading.set()

    def produce() -> None:
        try:
            create.stream(tree, write_end, formats.by_name("none"), excludes, quiet=True)
        except BaseException as error:  # handed to the caller below
            if reading.is_set():  # not just the broken pipe of a reader that stopped
                failed.append(error)
        finally:
            os.close(write_end)

    with open(read_end, "rb") as source:  # closes the reader's end whatever happens
        producer = threading.Thread(target=produce, name=f"snapshot {what}", daemon=True)
        try:
            producer.start()
        except BaseException:
            os.close(write_end)  # the thread that would have closed it never ran
            raise
        try:
            extract_stream(source, dest, label=f"the host's {what} ({tree})")
        except BaseException:
            reading.clear()
            source.close()  # the producer's next write breaks: it stops
            producer.join()
            if failed:  # the reading side failed because the tree could not be read
                raise failed[0] from None
            raise
        reading.clear()
    producer.join()
    if failed:
        raise failed[0]


def grub_install(top: Path, loop: str) -> None:
    """BIOS GRUB on the image's own disk, reading /boot/grub as the host's GRUB would."""
    boot = top / "boot"
    run.run(["grub-install", f"--target={GRUB_PLATFORM}", f"--boot-directory={boot}",
             "--no-floppy", loop], writes=True, timeout=300,
            hint="grub-install needs GRUB's BIOS files: apt-get install grub-pc-bin")


def write_in_copy(top: Path, relative: str, text: str, mode: int = 0o644) -> str:
    """Write a file in the copy through its confined root (a link there is followed inside
    the copy, never out of it; a file that exists keeps its mode, a new one gets MODE);
    returns its diff. No backup: the copy is thrown away, and the diff goes in the report."""
    copy = GuestRoot(top)
    path = copy.resolve("/" + relative)
    old = copy.read_text(path)
    parent = posixpath.dirname(path)
    if copy.node(parent).st is None:
        copy.mkdir(parent, 0o755)
    copy.write_text(path, text, mode=mode)
    if old is not None:  # the report shows bytes that are not UTF-8 as U+FFFD
        old = old.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return files.unified_diff("/" + relative, old, text)


def _members(archive: Path) -> list[tuple[str, int]]:
    """(path, bytes) of each member of an archive: from the snapshot's manifest when it
    describes this archive (no need to decompress a GB), else from tar's listing."""
    sidecar = manifest.path_for(archive)
    if sidecar.is_file():
        with contextlib.suppress(XenlfsError, OSError):
            found = manifest.read(sidecar)
            if manifest.describes(found.meta, archive) is None:
                return [(e.path, e.size if e.type == "file" else 0) for e in found.entries]
    listing = run.run(["tar", "--list", "--verbose", "--numeric-owner", "--file", archive],
                      timeout=1800)
    members = []
    for line in listing.stdout.splitlines():
        fields = line.split(None, 5)
        if len(fields) >= 6 and fields[2].isdigit():
            members.append((fields[5].split(" -> ")[0], int(fields[2])))
    return members


def _tree_members(tree: Path, excludes: tuple[ex.Exclude, ...]) -> Iterator[tuple[str, int]]:
    """(path, bytes) of what snapshot create archives of a tree (a hard-linked file once)."""
    seen: set[tuple[int, int]] = set()
    for _, relative, entry in ex.walk(tree, ex.matcher([e.pattern for e in excludes])):
        size = 0
        with contextlib.suppress(OSError):
            if entry is not None and entry.is_file(follow_symlinks=False):
                st = entry.stat(follow_symlinks=False)
                if st.st_nlink == 1 or (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    size = st.st_size
        yield relative, size


def content_sizes(contents: list[Content], mountpoints: list[str]) -> dict[str, int]:
    """Bytes each volume gets, from the archives' members or the trees' files (each to its
    deepest mount point)."""
    sizes = dict.fromkeys(mountpoints, 0)
    ordered = sorted(mountpoints, key=len, reverse=True)
    for content in contents:
        prefix = content.mountpoint.rstrip("/")
        members = _tree_members(content.tree, content.excludes) if content.tree is not None \
            else _members(content.archive) if content.archive is not None else iter(())
        for path, size in members:
            relative = path.removeprefix("./").strip("/")
            name = prefix + "/" + ("" if relative == "." else relative)
            owner = next((m for m in ordered if m == "/" or name == m or
                          name.startswith(m + "/")), "/")
            sizes[owner] += size + 4096
    return sizes
