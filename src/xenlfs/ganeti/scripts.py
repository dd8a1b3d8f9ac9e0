"""What each OS script does, on the instance Ganeti's environment names.

    create  step 5 (guest/prepare.py) from the variant's snapshot onto DISK_0_PATH: a new ext4
            over whatever is there (Ganeti hands a new disk, or the old one on reinstall)
    rename  the guest's hostname and hosts, inside its root (guest/rootfs.py)
    export  disk 0: the guest's root, read-only, as one archive in the snapshot format on
            stdout; other disks: their raw bytes
    import  the reverse onto a new disk; disk 0 then gets this instance's hostname
    verify  the OSP_* parameters and the variant, one problem per line
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from xenlfs import run
from xenlfs.errors import PreconditionError, UsageError
from xenlfs.ganeti import osenv, provider
from xenlfs.guest import detect, edits, plan, prepare, storage, volume
from xenlfs.guest.rootfs import GuestRoot
from xenlfs.snapshot import create, formats
from xenlfs.snapshot import excludes as ex
from xenlfs.snapshot.extract import extract_stream, read_head

log = logging.getLogger("xenlfs.ganeti")

# A disk's root is taken whole: the hint's excludes (/boot, /dev, /tmp…) are for a running
# host, but a guest's disk holds step 5's /dev nodes and nothing mounted over it.
EXPORT_EXCLUDES = [ex.Exclude("/lost+found", False, "lost+found")]
COPY_CHUNK = 1 << 20
# What create, rename, export and import run on the node (besides the decompressor).
NODE_TOOLS = ("tar", "mkfs.ext4", "sfdisk", "wipefs", "losetup", "blkid", "mount", "umount")
TABLE = "dos"  # a partitioned disk 0: as 'guest prepare --partition-table dos' makes it


def snapshot_for(provider_dir: Path, variant: str) -> Path:
    variants = provider.read_variants(provider_dir)
    if not variants:
        raise PreconditionError("the provider knows no snapshot",
                                hint="make one (xenlfs snapshot create), then write the "
                                "provider again: xenlfs ganeti install-os")
    if variant not in variants:
        raise UsageError(f"no snapshot for the variant {variant!r}",
                         hint="use one of: " + ", ".join(f"xenlfs+{v}" for v in variants))
    archive = variants[variant]
    if not archive.is_file():
        raise PreconditionError(f"variant {variant}: its snapshot {archive} is gone",
                                hint="write the provider again: xenlfs ganeti install-os")
    return archive


def verify(provider_dir: Path, env: Mapping[str, str]) -> list[str]:
    """Every problem with the parameters and the variant; [] when Ganeti may go on."""
    problems = osenv.check_parameters(osenv.parameters(env))
    variant = env.get("OS_VARIANT", "")
    try:
        archive = snapshot_for(provider_dir, variant)
        tools = [*NODE_TOOLS, *formats.detect(archive).decompress[:1]]
    except (UsageError, PreconditionError) as e:
        problems.append(str(e).replace("\n  hint: ", " — "))
        tools = list(NODE_TOOLS)
    # Ganeti runs verify on the node before it makes any disk: a missing tool is said here.
    for tool in tools:
        if shutil.which(tool) is None:
            problems.append(f"{tool} is not installed on this node — {run.install_hint(tool)}")
    return problems


def create_guest(provider_dir: Path, env: Mapping[str, str], iface: str) -> prepare.Report:
    inst = osenv.instance(env)
    archive = snapshot_for(provider_dir, inst.variant)
    log.info("instance %s: snapshot %s onto %s (%s)%s", inst.name, archive, inst.disk,
             inst.disk_backend or "backend not given", ", reinstall" if inst.reinstall else "")
    request = _new_root(inst)
    # Ganeti writes the instance's Xen config itself: no kernel, so no xl config is written.
    no_xl = prepare.XlRequest(config_dir=Path("/nonexistent"), kernel=None, memory=0)
    report = prepare.prepare_guest(archive, request, inst.guest_options(iface), no_xl)
    report.xl_note = ""
    return report


def _new_root(inst: osenv.Instance) -> storage.Request:
    """Disk 0 made ready for a new root: a new table with one partition when root_path names
    a partition. Refused before any write if the disk is in use."""
    assert inst.disk is not None
    storage.check_free(inst.disk)
    if inst.partitioned:
        volume.write_partition_table(inst.disk, TABLE)
    else:
        # An old table would be found and used (reinstall after root_path changed); wipefs
        # leaves a table in a file alone without --force.
        run.run(["wipefs", "--all", "--force", "--quiet", inst.disk], writes=True)
    return storage.Request(inst.name, inst.disk, mkfs="ext4", yes=True,
                           partition_table=TABLE if inst.partitioned else "none")


def _existing(inst: osenv.Instance, *, read_only: bool = False) -> storage.Layout:
    assert inst.disk is not None
    request = storage.Request(inst.name, inst.disk, mkfs="none",
                              partition_table=TABLE if inst.partitioned else "none")
    layout = storage.decide(request, 0)
    if inst.partitioned and layout.partition_table == "none":
        raise PreconditionError(f"{inst.disk} has no partition, but root_path is "
                                f"{inst.root_device}", hint="was root_path changed after the "
                                "instance was installed? set it back, or reinstall")
    return dataclasses.replace(layout, read_only=read_only)


def set_hostname(root: GuestRoot, hostname: str) -> plan.Plan:
    edit = plan.Plan(detect.detect(root))
    plan.plan_file(root, edit, "/etc/hostname", lambda _t: edits.hostname(hostname))
    plan.plan_file(root, edit, "/etc/hosts", lambda t: edits.hosts(t, hostname))
    plan.apply(root, edit)
    return edit


def rename_guest(env: Mapping[str, str]) -> plan.Plan:
    inst = osenv.instance(env)
    log.info("instance %s (was %s): hostname %s", inst.name, env.get("OLD_INSTANCE_NAME", "?"),
             inst.hostname)
    # Under the guest's lock, as step 5 runs: a mount of this name found then is a leftover.
    with volume.locked(inst.name), volume.attached(_existing(inst), inst.name) as where:
        return set_hostname(GuestRoot(where), inst.hostname)


def export_disk(env: Mapping[str, str], sink: IO[bytes],
                compression: formats.Compression) -> None:
    inst = osenv.instance(env, "EXPORT_DEVICE")
    assert inst.disk is not None
    if env.get("EXPORT_INDEX", "0") != "0":
        with open(inst.disk, "rb") as disk:
            shutil.copyfileobj(disk, sink, COPY_CHUNK)
        return
    sink.flush()
    with volume.locked(inst.name), \
            volume.attached(_existing(inst, read_only=True), inst.name) as where:
        entries = create.stream(where, sink.fileno(), compression, EXPORT_EXCLUDES)
    log.info("exported %d entries of %s", entries, inst.disk)


def import_disk(env: Mapping[str, str], source: IO[bytes]) -> None:
    inst = osenv.instance(env, "IMPORT_DEVICE")
    assert inst.disk is not None
    if env.get("IMPORT_INDEX", "0") != "0":
        # A disk other than the root one, byte for byte (a swap or data disk).
        with open(inst.disk, "r+b") as disk:
            shutil.copyfileobj(source, disk, COPY_CHUNK)
        return
    head = read_head(source)  # garbage is refused before the disk is formatted
    with volume.locked(inst.name):
        layout = storage.decide(_new_root(inst), 0)
        with volume.attached(layout, inst.name) as where:
            extract_stream(source, where, head)
            set_hostname(GuestRoot(where), inst.hostname)

