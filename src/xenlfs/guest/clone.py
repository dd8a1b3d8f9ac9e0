"""Many guests from one prepared guest: each clone shares the source's blocks where the host
can (an LVM thin snapshot, a reflinked image on XFS or btrfs) and is then made a machine of
its own (identity.py). Where the host cannot share blocks it says so, with what a full copy
costs, and copies only when asked to (--full-copy).

The source is a guest `guest prepare` made: its xl config (CONFIG_DIR/SOURCE.cfg) names its
one writable disk, a raw image file or a logical volume. It must not be running: a copy of a
filesystem being written is not a filesystem."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from xenlfs import files, run
from xenlfs.errors import CommandFailed, PreconditionError, ToolMissing, UsageError
from xenlfs.guest import edits, identity, inuse, storage, volume
from xenlfs.guest.rootfs import GuestRoot
from xenlfs.guest.storage import MiB
from xenlfs.snapshot.atomic import signals_held
from xenlfs.xl import cfg, check, toolstack, write
from xenlfs.xl.disk import Disk

log = logging.getLogger("xenlfs.guest")

THIN, REFLINK, COPY = "LVM thin snapshot", "reflink copy", "full copy"
# A clone is made under this name (an image file beside the final one, or an LV in the same
# group) and renamed to the clone's only when whole: a run killed halfway leaves nothing under
# the clone's name, and the next run (holding the clone's lock) removes what it left.
TEMP_PREFIX = ".xenlfs-clone-tmp-"
TEMP_LV_PREFIX = "xenlfs-clone-tmp-"
# Filesystems whose files can share extents (FICLONE); XFS only when made with reflink=1.
REFLINK_FS = ("btrfs", "xfs")


@dataclass(frozen=True)
class Source:
    name: str
    config: Path
    text: str
    disks: tuple[str, ...]  # every disk spec, as written
    root_disk: int  # which of them is the guest's writable disk
    disk: Disk
    vifs: tuple[str, ...]
    has_uuid: bool

    @property
    def path(self) -> Path:
        assert self.disk.target is not None
        return Path(self.disk.target)


@dataclass(frozen=True)
class Lv:
    vg: str
    name: str
    segtype: str  # thin, linear, striped, ...
    pool: str


@dataclass(frozen=True)
class Facts:
    """What the source's volume lives on: all the backend choice depends on."""

    path: Path
    kind: str  # image or block
    size: int  # bytes of the image or device
    allocated: int  # bytes a full copy writes (an image's allocated blocks; a device's size)
    lv: Lv | None = None
    fs: str | None = None  # the filesystem holding an image
    reflink: bool | None = None  # that filesystem shares extents (None: not known)


@dataclass(frozen=True)
class Backend:
    kind: str  # THIN, REFLINK or COPY
    why: str
    cost: int  # bytes each clone writes at once (0: only metadata)


def choose(facts: Facts, *, full_copy: bool, count: int = 1) -> Backend:
    """The cheapest honest way to copy the source's volume. Refuses (exit 3) a full copy not
    asked for, saying what it would cost."""
    if facts.kind == "block":
        if facts.lv is None:
            raise PreconditionError(
                f"{facts.path} is a partition or disk, not a logical volume or image: there "
                "is no place beside it to put a clone", hint="keep guests to be cloned on an "
                "LVM thin pool (guest prepare --vg VG on a thin LV) or on image files")
        lv = facts.lv
        if lv.segtype == "thin":
            return Backend(THIN, f"{facts.path} is a thin volume of the pool {lv.vg}/{lv.pool}:"
                           " a thin snapshot shares every block until one side writes it", 0)
        backend = Backend(COPY, f"{facts.path} is a {lv.segtype} volume, not a thin one: "
                          "copy-on-write needs a thin pool", facts.size)
    elif facts.fs in REFLINK_FS and facts.reflink is not False:
        known = "" if facts.reflink else " (not known: xfs_info not found; cp will tell)"
        return Backend(REFLINK, f"{facts.path} is on {facts.fs}, which shares extents between "
                       f"files{known}", 0)
    elif facts.fs == "xfs":
        backend = Backend(COPY, f"{facts.path} is on an XFS made without reflink "
                          "(mkfs.xfs -m reflink=0)", facts.allocated)
    else:
        backend = Backend(COPY, f"{facts.path} is on {facts.fs or 'a filesystem'}, which "
                          "cannot share extents between files (XFS and btrfs can)",
                          facts.allocated)
    if not full_copy:
        total = f" ({_mib(backend.cost * count)} for {count})" if count > 1 else ""
        raise PreconditionError(
            f"no copy-on-write for this guest: {backend.why}; each clone would be a full "
            f"copy of up to {_mib(backend.cost)}{total}",
            hint="add --full-copy to copy it anyway, or keep the source on a thin LV or on "
            "an XFS (reflink=1) or btrfs filesystem")
    return backend


def _mib(size: int) -> str:
    return f"{-(-size // MiB)} MiB"


# --- the source ---

def read_source(name: str, config_dir: Path) -> Source:
    path = toolstack.named_config(name, config_dir)
    if not path.is_file():
        raise UsageError(f"no prepared guest {name}: {path} does not exist",
                         hint=f"prepare it first: xenlfs guest prepare {name} --snapshot ... "
                         "--vg VG (or --target IMAGE) --kernel ...")
    report = check.check_file(path, kernel=False)
    if not report.ok or report.guest is None:
        errors = "\n".join(str(f) for f in report.findings if f.severity == "error")
        raise UsageError(f"xl would refuse the source's config {path}:\n{errors}",
                         hint=f"fix it first; see: xenlfs guest check {path}")
    config = cfg.read(path)
    writable = [i for i, d in enumerate(report.guest.disks) if d.readwrite and not d.is_cdrom]
    if not writable:
        raise PreconditionError(f"{path} names no writable disk: nothing to clone")
    if len(writable) > 1:
        raise PreconditionError(f"{path} names {len(writable)} writable disks: every clone "
                                "would write the others", hint="clone a guest with one "
                                "writable disk (the others read-only: access r)")
    disk = report.guest.disks[writable[0]]
    if disk.script or disk.format not in (None, "raw") or not disk.target:
        raise PreconditionError(f"{path}: the disk '{disk.spec}' is not a raw image or device",
                                hint="clone guests made by 'xenlfs guest prepare' (raw "
                                "images or logical volumes)")
    target = Path(disk.target)
    if not (target.is_file() or target.is_block_device()):
        raise PreconditionError(f"{path}: the guest's disk {target} does not exist or is "
                                "neither an image file nor a block device")
    return Source(name, path, config.text, tuple(d.spec for d in report.guest.disks),
                  writable[0], disk, tuple(v.spec for v in report.guest.vifs),
                  "uuid" in config.values)


def refuse_in_use(source: Source) -> None:
    """Exit 3 if the source runs or anyone uses its volume (mounted, held open, a loop
    device over the image, a running domU's blkback)."""
    if toolstack.in_dom0() and any(d.name == source.name for d in toolstack.list_domains()):
        raise PreconditionError(f"the guest {source.name} is running: a copy of a filesystem "
                                "being written is no filesystem",
                                hint=f"shut it down first: xenlfs guest shutdown {source.name}"
                                " --wait")
    target = source.path
    if target.is_block_device():
        storage.check_device(target, 0, source.name)
        return
    st = target.stat()
    users = inuse.open_by(files={(st.st_dev, st.st_ino)})
    if users:
        raise PreconditionError(f"{target} is in use: held open by {', '.join(users)}",
                                hint="stop that first (a running guest: xenlfs guest "
                                "shutdown NAME)")
    for loop in storage._loops_of(target):
        storage.check_device(Path(loop), 0, source.name)


def lv_of(device: Path) -> Lv | None:
    """The logical volume a block device is, or None (a partition, a disk, no LVM here)."""
    try:
        result = run.run(["lvs", *storage.LVM_CONFIG, "--reportformat", "json", "--options",
                          "vg_name,lv_name,segtype,pool_lv", device], check=False)
    except ToolMissing:
        return None
    if result.returncode != 0:
        return None
    rows = json.loads(result.stdout)["report"][0]["lv"]
    if len(rows) != 1:
        return None
    row = rows[0]
    return Lv(row["vg_name"], row["lv_name"], row["segtype"], row.get("pool_lv", ""))


def filesystem_of(path: Path) -> tuple[str, Path]:
    """(type, mount point) of the filesystem holding `path`."""
    out = run.run(["findmnt", "--noheadings", "--output", "FSTYPE,TARGET", "--target",
                   path]).stdout.split(None, 1)
    return out[0], Path(out[1].strip())


def xfs_reflink(mountpoint: Path) -> bool | None:
    try:
        info = run.run(["xfs_info", mountpoint], check=False).stdout
    except ToolMissing:
        return None
    found = re.search(r"\breflink=([01])", info)
    return None if found is None else found[1] == "1"


def probe(source: Source) -> Facts:
    target = source.path
    if target.is_block_device():
        size = storage.device_size(target)
        return Facts(target, "block", size, size, lv=lv_of(target))
    st = target.stat()
    fs, mountpoint = filesystem_of(target)
    reflink = True if fs == "btrfs" else xfs_reflink(mountpoint) if fs == "xfs" else False
    return Facts(target, "image", st.st_size, st.st_blocks * 512, fs=fs, reflink=reflink)


# --- one clone ---

@dataclass(frozen=True)
class Request:
    name: str
    hostname: str
    ip: str | None = None  # "192.168.1.2/24"; None: DHCP
    gateway: str | None = None


@dataclass
class Clone:
    request: Request
    volume: Path
    disk_spec: str
    macs: list[str]
    xl_config: Path
    xl_text: str
    lines: list[str] = field(default_factory=list)  # what was (or would be) done
    machine_id: str = ""
    seconds: float = 0.0


@dataclass
class Report:
    source: Source
    facts: Facts
    backend: Backend
    clones: list[Clone] = field(default_factory=list)


def clone_path(source: Source, facts: Facts, name: str) -> Path:
    """Beside the source: the LV NAME in its volume group, or NAME.img in its directory."""
    if facts.lv is not None:
        return Path(f"/dev/{facts.lv.vg}/{name}")
    return source.path.with_name(name + (source.path.suffix or ".img"))


def temp_path(facts: Facts, path: Path) -> Path:
    """Where the clone whose final volume is `path` is made."""
    if facts.lv is not None:
        return path.with_name(TEMP_LV_PREFIX + path.name)
    return path.with_name(TEMP_PREFIX + path.name)


def volume_there(facts: Facts, path: Path) -> bool:
    if facts.lv is not None:
        return run.run(["lvs", *storage.LVM_CONFIG, f"{facts.lv.vg}/{path.name}"],
                       check=False).returncode == 0
    return path.exists() or path.is_symlink()


def pending_config(config: Path) -> Path:
    """Where a clone's xl config waits while its volume is renamed into place. Not *.cfg, so
    no tool takes it for a guest; a rerun finding it beside the clone's volume finishes the
    clone (finish_killed)."""
    return config.with_name(f"{TEMP_PREFIX}{config.name}.pending")


def place_config(pending: Path, config: Path) -> None:
    """The pending config under the clone's config name, never over one that appeared."""
    if run.dry_run():
        log.info("would rename %s to %s", pending, config)
        return
    link_new(pending, config, PreconditionError(
        f"{config} appeared meanwhile: a clone never replaces a guest's config",
        hint=f"compare it with {pending}, keep one and remove the other"))


def finish_killed(source: Source, facts: Facts, request: Request,
                  config_dir: Path) -> Clone | None:
    """A clone killed after its volume was renamed into place and before its config was:
    the volume is whole and its config is pending, so the rerun puts the config in place
    (rather than refusing the volume as another guest's). A pending config without the
    volume is an earlier kill's, written again by this run."""
    config = toolstack.named_config(request.name, config_dir)
    pending = pending_config(config)
    if not pending.is_file() or pending.is_symlink():
        return None
    path = clone_path(source, facts, request.name)
    with volume.locked(request.name):
        text = pending.read_text()
        whole = volume_there(facts, path)
        placed = config.is_file() and not config.is_symlink() and config.read_text() == text
        if config.exists() or config.is_symlink() or not whole:
            if not run.dry_run():
                pending.unlink()
            log.info("%s %s, left by a clone that was killed",
                     "would remove" if run.dry_run() else "removed", pending)
            if not (placed and whole):
                return None
            line = f"{config} was in place: a clone killed as it finished"
        else:
            log.warning("finishing %s: its volume %s was made whole by a clone that was "
                        "killed before its config was in place", request.name, path)
            place_config(pending, config)
            line = (f"{'would put' if run.dry_run() else 'put'} {config} in place: the "
                    "clone's volume was whole, made by a run killed before its config was")
    macs = re.findall(r"mac=([0-9a-fA-F:]{17})", text)
    return Clone(request, path, "", macs, config, text, [line])


def clean_abandoned(facts: Facts, temp: Path, name: str) -> None:
    """Remove the temporary volume a killed clone of `name` left (unmounting and detaching
    what it left on it first). The caller holds the clone's lock, so no run is making it."""
    if not volume_there(facts, temp):
        return
    if run.dry_run():
        log.info("would remove %s, left by a clone that was killed", temp)
        return
    if facts.lv is None and (temp.is_symlink() or not temp.is_file()):
        temp.unlink()  # never ours to follow or fill: a symlink or FIFO planted there
        return
    if facts.lv is None:
        fd = os.open(temp, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PreconditionError(f"{temp} is being written by another run",
                                    hint="wait for it to finish") from None
        finally:
            os.close(fd)
    kind = "block" if facts.lv is not None else "image"
    volume.clean_leftovers(storage.Layout(kind, temp), name)
    log.warning("removing %s, left by a clone that was killed", temp)
    if facts.lv is not None:
        run.run(["lvremove", *storage.LVM_CONFIG, "--yes", f"{facts.lv.vg}/{temp.name}"],
                writes=True)
    else:
        temp.unlink(missing_ok=True)


def rename_into_place(facts: Facts, temp: Path, path: Path) -> None:
    """The whole clone under its own name, never over something that appeared there."""
    if facts.lv is not None:
        run.run(["lvrename", *storage.LVM_CONFIG, facts.lv.vg, temp.name, path.name],
                writes=True)
        return
    if run.dry_run():
        log.info("would rename %s to %s", temp, path)
        return
    link_new(temp, path, PreconditionError(f"{path} appeared meanwhile: a clone never "
                                           "replaces a guest", hint="choose another name"))


def link_new(old: Path, new: Path, refusal: PreconditionError) -> None:
    """Rename `old` to `new` by a link, not a rename: it fails (with `refusal`) where a
    rename would replace a file that appeared at `new`."""
    try:
        os.link(old, new)
    except FileExistsError:
        raise refusal from None
    old.unlink()
    files.fsync_dir(new.parent)


def vif_with(spec: str, mac: str, ip: str | None) -> str:
    """The source's vif spec with this clone's MAC (and address, for `guest check`)."""
    drop = ("mac", "ip") if ip else ("mac",)
    kept = [p for p in spec.split(",") if p.strip() and
            p.strip().partition("=")[0] not in drop]
    return ",".join([*kept, f"mac={mac}", *([f"ip={ip.split('/')[0]}"] if ip else [])])


def disk_spec(source: Source, facts: Facts, path: Path) -> str:
    vdev = source.disk.vdev or "xvda1"
    if facts.kind == "image":
        return f"format=raw, vdev={vdev}, access=rw, target={path}"
    return f"phy:{path},{vdev},w"


def clone_config(source: Source, name: str, disk: str, vifs: list[str]) -> str:
    """The source's xl config, its comments and order kept, with the clone's name, disk,
    vifs and (if it had one) a new uuid."""
    disks = list(source.disks)
    disks[source.root_disk] = disk
    changes = [("name", write.quote(name)), ("disk", write.value_text(disks))]
    if vifs:
        changes.append(("vif", write.value_text(vifs)))
    if source.has_uuid:
        changes.append(("uuid", write.quote(str(uuid.uuid4()))))
    return write.set_values(source.text, f"{name}.cfg", changes)


def known_macs(config_dir: Path) -> set[str]:
    """The MACs every guest config in CONFIG_DIR gives its vifs."""
    macs: set[str] = set()
    for path in sorted(config_dir.glob("*.cfg")):
        report = check.check_file(path, kernel=False)
        if report.guest:
            macs |= {str(v.fields["mac"]) for v in report.guest.vifs if "mac" in v.fields}
    return macs


def check_names(source: str, names: list[str]) -> None:
    if source in names:
        raise UsageError(f"a clone cannot be named {source}, as its source")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise UsageError(f"the clone name {dup[0]} is given twice")


def plan_clones(source: Source, facts: Facts, requests: list[Request],
                config_dir: Path) -> list[Clone]:
    """Each clone's volume, MACs and xl config, checked before anything is made."""
    avoid = known_macs(config_dir)
    clones = []
    for request in requests:
        path = clone_path(source, facts, request.name)
        config = toolstack.named_config(request.name, config_dir)
        for there in (path, config):
            if there.exists() or there.is_symlink():
                raise PreconditionError(f"{there} exists: a clone never replaces a guest",
                                        hint="choose another name, or remove that guest "
                                        "first")
        macs = []
        for _ in source.vifs:
            macs.append(identity.new_mac(avoid))
            avoid.add(macs[-1])
        vifs = [vif_with(spec, mac, request.ip) for spec, mac in zip(source.vifs, macs,
                                                                          strict=True)]
        spec = disk_spec(source, facts, path)
        text = clone_config(source, request.name, spec, vifs)
        report = check.check_config(cfg.parse(text, str(config)), kernel=False)
        if not report.ok:
            raise UsageError(f"the clone's config {config} would be refused by xl:\n" +
                             "\n".join(str(f) for f in report.findings))
        clones.append(Clone(request, path, spec, macs, config, text))
    return clones


def make_volume(source: Source, facts: Facts, backend: Backend, path: Path) -> None:
    """The clone's volume, by the backend chosen; nothing is left of it if this fails."""
    if backend.kind == THIN:
        assert facts.lv is not None
        run.run(["lvcreate", *storage.LVM_CONFIG, "--snapshot", "--setactivationskip", "n",
                 "--name", path.name, f"{facts.lv.vg}/{facts.lv.name}"], writes=True)
        return
    if facts.lv is not None:  # a full copy of a thick LV onto a new LV of its size
        run.run(["lvcreate", *storage.LVM_CONFIG, "--yes", "--name", path.name, "--size",
                 f"{facts.size}b", facts.lv.vg], writes=True)
        try:
            run.run(["dd", f"if={source.path}", f"of={path}", "bs=4M", "conv=fsync",
                     "status=none"], writes=True)
        except BaseException:
            remove_volume(facts, path)
            raise
        return
    if not run.dry_run():
        free = os.statvfs(path.parent)
        if backend.cost > free.f_bavail * free.f_frsize:
            raise PreconditionError(f"{path.parent} has {_mib(free.f_bavail * free.f_frsize)}"
                                    f" free; a full copy needs {_mib(backend.cost)}")
        # The name is ours from here on (O_EXCL): cp fills this file, never another's.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
    how = "--reflink=always" if backend.kind == REFLINK else "--sparse=always"
    try:
        run.run(["cp", how, source.path, path], writes=True)
    except CommandFailed as e:
        remove_volume(facts, path)
        if backend.kind == REFLINK:
            raise PreconditionError(f"{facts.fs} holding {source.path} cannot share its "
                                    f"extents: {e.stderr.strip()}", hint="add --full-copy "
                                    "to copy it in full") from e
        raise
    except BaseException:
        remove_volume(facts, path)
        raise


def remove_volume(facts: Facts, path: Path) -> None:
    log.warning("removing %s, made by this run that failed", path)
    if facts.lv is not None:
        run.run(["lvremove", *storage.LVM_CONFIG, "--yes", path], writes=True)
    elif not run.dry_run():
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def mounted(facts: Facts, path: Path, name: str) -> Iterator[Path]:
    """The clone's root filesystem, mounted as `guest prepare` mounts one."""
    part = storage.partition(path)  # with a table (an HVM guest's): a loop at its offset
    fstype = storage.fs_type(path, part)
    if fstype is None or fstype.endswith("partition table"):
        raise PreconditionError(f"{path} holds no filesystem xenlfs can edit ({fstype})")
    layout = storage.Layout("image" if facts.kind == "image" else "block", path,
                            partition_table="found" if part else "none", fstype=fstype)
    with volume.attached(layout, name) as where:
        yield where


DRY_RUN_EDITS = ("/etc/hostname, /etc/hosts", "/etc/machine-id (a fresh one; dbus's copy "
                 "too if it is a file)", "/etc/sysconfig/ifconfig.IFACE (an LFS guest)",
                 "/etc/ssh/ssh_host_*_key*: removed, and new keys of the same types made "
                 "with this host's ssh-keygen")


def make_clone(source: Source, facts: Facts, backend: Backend, clone: Clone,
               iface: str) -> None:
    """Under the clone's lock: its volume under a temporary name, its own identity inside,
    then the volume renamed to the clone's and its xl config written. Killed at any point
    before the rename, nothing bears the clone's name and the next run starts over."""
    request = clone.request
    started = time.monotonic()
    temp = temp_path(facts, clone.volume)
    with volume.locked(request.name), contextlib.ExitStack() as held:
        clean_abandoned(facts, temp, request.name)
        make_volume(source, facts, backend, temp)
        verb = "would" if run.dry_run() else "did"
        renamed = temp  # where the volume is now
        try:
            if facts.lv is None and not run.dry_run():
                held.enter_context(_flocked(temp))
            if run.dry_run():
                clone.lines += [f"would edit: {what}" for what in DRY_RUN_EDITS]
            else:
                opts = identity.Options(request.name, request.hostname, iface,
                                        network_of(request))
                with mounted(facts, temp, request.name) as where:
                    root = GuestRoot(where)
                    found = identity.plan(root, opts)
                    clone.machine_id = found.machine_id.strip()
                    clone.lines += found.lines(verb)
                    clone.lines += identity.apply(root, found, request.hostname)
                clone.xl_config.parent.mkdir(parents=True, exist_ok=True)
            # The config is written first, under a pending name, so that a kill -9 between
            # the two renames leaves what the next run needs to finish (finish_killed).
            # Ctrl-C waits for the pair: a volume under the clone's name has its config.
            pending = pending_config(clone.xl_config)
            with signals_held():
                if not run.dry_run():
                    files.write_atomic(pending, clone.xl_text, backup=False)
                rename_into_place(facts, temp, clone.volume)
                renamed = clone.volume
                place_config(pending, clone.xl_config)
        except BaseException:
            remove_volume(facts, renamed)  # the config is written whole or not at all
            if not run.dry_run():
                pending_config(clone.xl_config).unlink(missing_ok=True)
            raise
    clone.seconds = time.monotonic() - started


@contextlib.contextmanager
def _flocked(path: Path) -> Iterator[None]:
    """Hold the temporary image's lock while this run makes it: a later run finding it free
    knows the run that made it is gone."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def network_of(request: Request) -> edits.Network:
    if request.ip:
        return edits.Network(ip=request.ip, gateway=request.gateway)
    return edits.Network(dhcp=True)


def problems(report: Report) -> bool:
    return any(line.startswith("PROBLEM") for c in report.clones for line in c.lines)


def as_json(report: Report) -> dict[str, object]:
    """What `guest clone --json` prints: for scripts that start the clones next."""
    return {
        "source": {"name": report.source.name, "volume": str(report.facts.path),
                   "size": report.facts.size},
        "backend": {"kind": report.backend.kind, "why": report.backend.why,
                    "bytes_each": report.backend.cost},
        "dry_run": run.dry_run(),
        "clones": [{
            "name": c.request.name, "hostname": c.request.hostname,
            "backend": report.backend.kind, "volume": str(c.volume),
            "config": str(c.xl_config), "macs": c.macs, "ip": c.request.ip or "dhcp",
            "gateway": c.request.gateway, "machine_id": c.machine_id or None,
            "seconds": round(c.seconds, 3), "changes": c.lines,
        } for c in report.clones],
        "problems": problems(report),
    }


def clone_guests(source_name: str, requests: list[Request], config_dir: Path, *,
                 full_copy: bool, iface: str = "eth0") -> Report:
    if os.geteuid() != 0 and not run.dry_run():
        raise PreconditionError("cloning a guest needs root (volumes, mounts)",
                                hint="run it again as root, or look first with --dry-run")
    check_names(source_name, [r.name for r in requests])
    source = read_source(source_name, config_dir)
    # The source's lock for the whole run: no `guest prepare SOURCE` writes it meanwhile.
    with volume.locked(source.name):
        refuse_in_use(source)
        facts = probe(source)
        backend = choose(facts, full_copy=full_copy, count=len(requests))
        report = Report(source, facts, backend)
        for request in requests:
            finished = finish_killed(source, facts, request, config_dir)
            if finished:
                report.clones.append(finished)
        done = {c.request.name for c in report.clones}
        for clone in plan_clones(source, facts, [r for r in requests if r.name not in done],
                                 config_dir):
            make_clone(source, facts, backend, clone, iface)
            report.clones.append(clone)
    return report
