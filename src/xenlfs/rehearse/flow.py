"""The dress rehearsal, step by step: read the host → plan → copy onto a throwaway disk →
boot it under QEMU through GRUB → watch each phase → report.

The host is only ever read: its trees through snapshot create (one way to read a tree, with
its excludes), its fstab, grub.cfg, inittab and xl configs through the confined resolver.
Every change is made in the copy, and listed in the report.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from xenlfs import run, ui
from xenlfs.errors import PreconditionError, UsageError
from xenlfs.guest.rootfs import GuestRoot
from xenlfs.lab import boot
from xenlfs.rehearse import grub, image, layout, phases, probe
from xenlfs.rehearse.phases import Diagnosis
from xenlfs.snapshot import excludes as ex

log = logging.getLogger("xenlfs.rehearse")

GRUB_CFG = "boot/grub/grub.cfg"
MiB = layout.MiB
MAX_CONFIG = 16 * MiB  # a config file bigger than this is not one
TOOLS = ("qemu-system-x86_64", "grub-install", "sfdisk", "partx", "losetup", "mkfs.ext4",
         "tar", "zstd")


@dataclass(frozen=True)
class Request:
    source: str  # running, root, snapshot
    path: Path  # the tree ("/" when running) or the archive
    work_dir: Path
    entry: str | None = None
    guests: tuple[str, ...] = ()  # more guests than /etc/xen/auto's: /etc/xen/NAME.cfg
    bus: str | None = None
    keep: bool = False
    cpus: int = 2
    memory_mib: int | None = None
    deadline_scale: float = 1.0


@dataclass(frozen=True)
class HostFiles:
    fstab: str
    grub_cfg: str
    inittab: str | None
    lfs_rc: bool
    guest_configs: dict[str, str]  # dom0 path → text
    depend_start: str | None = None  # Debian's insserv order: only what it lists starts


@dataclass(frozen=True)
class Plan:
    request: Request
    layout: layout.Layout
    entry: grub.XenEntry
    grub_before: str
    grub_after: str
    probe_script: str
    probe_places: tuple[str, str, str]
    depend_start: str | None  # the copy's /etc/init.d/.depend.start, when it needs one
    guests: tuple[probe.Guest, ...]
    bridges: tuple[str, ...]
    memory_mib: int
    runlevel: str

    @property
    def phases(self) -> list[phases.Phase]:
        return [dataclasses.replace(p, deadline=p.deadline * self.request.deadline_scale)
                for p in phases.table(self.bridges, [g.name for g in self.guests])]

    def copy_changes(self) -> list[str]:
        e = self.entry
        script, link, _ = self.probe_places
        return [
            f"/{GRUB_CFG}: GRUB on the serial port (serial, terminal_input, terminal_output "
            "at the top; the terminal lines again at the end, after any of the host's own)",
            f"/{GRUB_CFG}: entry {e.label} made the default with timeout 0 and no fallback "
            "(lines at the end)",
            f"/{GRUB_CFG}: entry {e.label}: Xen gets '{grub.XEN_CONSOLE}', dom0's kernel "
            f"'{grub.DOM0_CONSOLE}', and an echo line marks that GRUB runs it",
            f"/{script}: the rehearsal's probe (reports from dom0, starts the guests)",
            f"/{link}: starts the probe last in runlevel {self.runlevel}",
            *([f"/{probe.DEPEND_START}: the probe added to insserv's start order, after "
               "every other script (startpar starts only what it lists)"]
              if self.depend_start else []),
            f"/boot/grub/{image.GRUB_PLATFORM}/: BIOS GRUB's modules and core.img on the "
            "image (grub-install)",
        ]

    def context(self) -> dict[str, str]:
        root = self.layout.volume("/")
        assert root is not None
        return {"boot_separate": "yes" if self.layout.boot_separate else "",
                "disk": f"/dev/{self.layout.disk}", "bus": self.layout.bus,
                "root_device": self.layout.device(root), "root_uuid": root.uuid or "…",
                "root_arg": next((w[5:] for w in self.entry.kernel_args.split()
                                  if w.startswith("root=")), "(none)")}


# --- reading the host -----------------------------------------------------------------------

def _read(top: Path, relative: str) -> str | None:
    """A file of the host's tree, never through a symlink that leaves it."""
    try:
        path = top / GuestRoot(top).resolve("/" + relative).lstrip("/")
        # Only a regular file of sane size: a FIFO or a device would block or never end.
        if not path.is_file() or path.stat().st_size > MAX_CONFIG:
            return None
        return path.read_text(errors="replace")
    except (OSError, PreconditionError):
        return None


def read_tree(top: Path, guests: tuple[str, ...]) -> HostFiles:
    fstab = _read(top, "etc/fstab")
    cfg = _read(top, GRUB_CFG)
    if fstab is None:
        raise PreconditionError(f"{top / 'etc/fstab'} cannot be read",
                                hint="the rehearsal mirrors the disks the host's fstab names")
    if cfg is None:
        raise PreconditionError(f"{top / GRUB_CFG} cannot be read",
                                hint="the rehearsal boots through the host's own grub.cfg")
    configs: dict[str, str] = {}
    auto = top / "etc/xen/auto"
    names = sorted(p.name for p in auto.iterdir()) if auto.is_dir() and not auto.is_symlink() \
        else []
    for name in names:
        text = _read(top, f"etc/xen/auto/{name}")
        if text is not None:
            configs[f"/etc/xen/auto/{name}"] = text
    for name in guests:
        text = _read(top, f"etc/xen/{name}.cfg")
        if text is None:
            raise UsageError(f"--guest {name}: {top / 'etc/xen' / (name + '.cfg')} cannot be "
                             "read")
        configs[f"/etc/xen/{name}.cfg"] = text
    lfs_rc = (top / "etc/rc.d/init.d").is_dir()
    return HostFiles(fstab, cfg, _read(top, "etc/inittab"), lfs_rc, configs,
                     None if lfs_rc else _read(top, probe.DEPEND_START))


def read_snapshot(archive: Path, guests: tuple[str, ...]) -> HostFiles:
    """The few files the plan needs, extracted from the archive into a temporary tree."""
    if not archive.is_file():
        raise UsageError(f"--snapshot {archive}: no such file")
    wanted = ["etc/fstab", GRUB_CFG, "etc/inittab", "etc/xen/auto/*", "etc/rc.d/init.d/rc",
              probe.DEPEND_START,
              *(f"etc/xen/{g}.cfg" for g in guests)]
    with tempfile.TemporaryDirectory(prefix="xenlfs-rehearse-") as tmp:
        got = run.run(["tar", "--extract", "--file", archive, "--directory", tmp,
                       "--wildcards", "--no-same-owner", *(f"./{w}" for w in wanted)],
                      check=False, timeout=1800)
        if "does not look like a tar archive" in got.stderr:
            raise UsageError(f"--snapshot {archive}: not a tar archive",
                             hint="give a snapshot made by 'xenlfs snapshot create'")
        if not (Path(tmp) / GRUB_CFG).is_file():
            raise PreconditionError(f"{archive} has no /{GRUB_CFG}",
                                    hint="snapshots leave /boot out unless asked: make one with "
                                    "'xenlfs snapshot create --include /boot', or rehearse the "
                                    "tree itself (--root DIR)")
        return read_tree(Path(tmp), guests)


# --- the plan -------------------------------------------------------------------------------

def _memory(entry: grub.XenEntry, guests: dict[str, str]) -> int:
    match = re.search(r"dom0_mem=(?:[^ ]*?,)?(\d+)([MG])", entry.xen_args)
    dom0 = (int(match[1]) * (1024 if match[2] == "G" else 1)) if match else 1024
    total = dom0 + 384
    for text in guests.values():
        mem = re.search(r"^\s*memory\s*=\s*(\d+)", text, re.MULTILINE)
        total += int(mem[1]) if mem else 128
    return max(1024, total)


def plan(request: Request, files: HostFiles, facts: dict[str, layout.Facts] | None = None
         ) -> Plan:
    lay = layout.layout_from_fstab(files.fstab, "/etc/fstab", bus=request.bus, facts=facts)
    entry = grub.choose(grub.xen_entries(files.grub_cfg), request.entry)
    guests = tuple(probe.guest_from_config(text, path)
                   for path, text in files.guest_configs.items())
    bridges = tuple(dict.fromkeys(b for g in guests for b in g.bridges))
    level = probe.runlevel(files.inittab)
    places = probe.places(files.lfs_rc, level)
    return Plan(request, lay, entry, files.grub_cfg, grub.rehearsal_copy(files.grub_cfg, entry),
                probe.render(list(bridges), list(guests)), places,
                probe.started_last(files.depend_start) if files.depend_start else None,
                guests, bridges,
                request.memory_mib or _memory(entry, files.guest_configs), level)


def qemu_argv(p: Plan, disk: Path, serial_log: Path) -> list[str]:
    drive = f"file={boot.qemu_escape(disk)},if=none,id=disk0,format=raw"
    device = {"virtio": ["-device", "virtio-blk-pci,drive=disk0"],
              "ahci": ["-device", "ahci,id=ahci", "-device", "ide-hd,drive=disk0,bus=ahci.0"],
              "nvme": ["-device", "nvme,serial=xenlfs0,drive=disk0"]}[p.layout.bus]
    # Only the devices the rehearsal needs (-nodefaults, -vga none): QEMU's default VGA,
    # parallel port, floppy and CD-ROM drive make dom0's udev load and probe their drivers
    # (bochs-drm with a framebuffer console, parport_pc, floppy, sr_mod), seconds under TCG,
    # and no host's boot depends on them: it is watched on the serial port. (The i440FX
    # stays: a Q35 without SATA, SMBus and PS/2 was tried, and with an AHCI disk dom0's
    # early boot took minutes instead of seconds; docs/benchmarks.md.)
    return ["qemu-system-x86_64", "-accel", "tcg", "-cpu", "qemu64", "-smp",
            str(p.request.cpus), "-m", f"{p.memory_mib}M", "-nodefaults", "-vga", "none",
            "-display", "none", "-no-reboot", "-monitor", "none", "-snapshot",
            "-serial", f"file:{boot.qemu_escape(serial_log)}",
            "-drive", drive, *device, "-nic", "user,model=virtio-net-pci"]


# --- the copy -------------------------------------------------------------------------------

def check_preconditions() -> None:
    if os.geteuid() != 0:
        raise PreconditionError("a rehearsal needs root: it reads every file of the host and "
                                "uses loop devices and mounts", hint="run it with sudo")
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        raise PreconditionError(f"not installed: {', '.join(missing)}",
                                hint="apt-get install qemu-system-x86 grub-pc-bin fdisk "
                                "util-linux e2fsprogs zstd")
    if not Path(f"/usr/lib/grub/{image.GRUB_PLATFORM}").is_dir():
        raise PreconditionError(f"GRUB's {image.GRUB_PLATFORM} files are not installed",
                                hint="apt-get install grub-pc-bin")


def _separately_mounted(top: Path, mountpoint: str, mounts: list[ex.Mount]) -> bool:
    real = os.path.realpath(top / mountpoint.lstrip("/"))
    found = ex.mount_of(real, mounts)
    return found is not None and found.point == real and real != os.path.realpath(top)


def contents(p: Plan, work: Path) -> list[image.Content]:
    """What the copy is made from: the snapshot itself, or the host's tree(s), each with the
    excludes snapshot create would use (the image streams them in: no archive between)."""
    request = p.request
    if request.source == "snapshot":
        return [image.Content(request.path, "/")]
    mounts = ex.read_mounts()
    top = request.path
    found = []
    separate = {v.mountpoint for v in p.layout.volumes
                if v.content and v.mountpoint != "/" and
                _separately_mounted(top, v.mountpoint, mounts)}
    for v in sorted((v for v in p.layout.volumes if v.content), key=lambda v: v.mountpoint):
        if v.mountpoint != "/" and v.mountpoint not in separate:
            continue  # it is a directory of the root's tree, in the root's archive
        tree = Path(os.path.realpath(top / v.mountpoint.lstrip("/")))
        # Snapshots leave /boot out (a guest needs none); the rehearsal boots from it.
        includes = ("/boot",) if v.mountpoint == "/" and "/boot" not in separate and \
            (tree / "boot").is_dir() else ()
        excludes = ex.plan(str(tree), mounts, includes=includes,
                           output_paths=[str(work.resolve())])  # the copy itself
        found.append(image.Content(None, v.mountpoint, tree, tuple(excludes)))
    return found


def change_copy(p: Plan, top: Path) -> None:
    image.write_in_copy(top, GRUB_CFG, p.grub_after)
    script, link, target = p.probe_places
    image.write_in_copy(top, script, p.probe_script, mode=0o755)
    if p.depend_start:
        image.write_in_copy(top, probe.DEPEND_START, p.depend_start)
    real = top / GuestRoot(top).resolve("/" + link, follow=False).lstrip("/")
    real.parent.mkdir(parents=True, exist_ok=True)
    real.unlink(missing_ok=True)
    real.symlink_to(target)


# --- the boot -------------------------------------------------------------------------------

@dataclass
class Outcome:
    ok: bool
    phases: list[dict[str, object]]
    diagnosis: Diagnosis | None
    bootscripts: list[tuple[str, str]]
    seconds: float
    serial_log: Path
    probe_lines: list[str] = field(default_factory=list)


def watch_boot(p: Plan, disk: Path, run_dir: Path) -> Outcome:
    serial_log, qemu_log = run_dir / "serial.log", run_dir / "qemu.log"
    serial_log.unlink(missing_ok=True)
    table = p.phases
    watch = phases.Watch(table, p.context())
    with open(qemu_log, "wb") as out:
        proc = run.spawn(qemu_argv(p, disk, serial_log), stdout=out, stderr=subprocess.STDOUT,
                         start_new_session=True)
    started = time.monotonic()
    diagnosis: phases.Diagnosis | None = None
    reported: set[str] = set()
    text = ""
    try:
        while True:
            with contextlib.suppress(FileNotFoundError):
                text = phases.clean(serial_log.read_bytes().decode("utf-8", "replace"))
            now = time.monotonic() - started
            diagnosis = watch.update(text, now)
            for phase in table:
                if phase.key in watch.passed and phase.key not in reported:
                    reported.add(phase.key)
                    at = watch.passed[phase.key]
                    ui.stderr.print(f"  ok   {phase.name}" + (f"  ({at:.1f} s)" if at is not None
                                                             else "  (implied)"), markup=False)
            if diagnosis or watch.next_phase() is None:
                break
            if proc.poll() is not None:
                nxt = watch.next_phase()
                assert nxt is not None
                qemu_said = boot.log_tail(qemu_log, 5)
                diagnosis = phases.Diagnosis(
                    nxt.key, nxt.name, "the machine stopped before this phase: QEMU exited "
                    f"(Xen or dom0 rebooted, halted or crashed); QEMU said: {qemu_said}",
                    nxt.timeout[1], phases.tail_lines(text))
                break
            diagnosis = watch.timed_out(text, now)
            if diagnosis:
                break
            time.sleep(0.5)
    finally:
        boot.stop(proc.pid)
    rows: list[dict[str, object]] = []
    for phase in table:
        if phase.key in watch.passed:
            at = watch.passed[phase.key]
            rows.append({"phase": phase.key, "name": phase.name,
                         "status": "passed" if at is not None else "implied", "at": at,
                         "line": phases.proof_line(phase, text)})
        else:
            failed = diagnosis is not None and diagnosis.phase == phase.key
            rows.append({"phase": phase.key, "name": phase.name,
                         "status": "failed" if failed else "not reached", "at": None,
                         "line": None})
    probe_lines = [line for line in text.splitlines() if line.startswith(phases.PROBE)]
    return Outcome(diagnosis is None, rows, diagnosis, watch.bootscripts,
                   time.monotonic() - started, serial_log, probe_lines)


@contextlib.contextmanager
def work_dir(request: Request, failed: list[bool]) -> Iterator[Path]:
    """The rehearsal's own directory: image, archives, logs. Kept with --keep; on failure
    the logs stay (the image goes)."""
    request.work_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=request.work_dir))
    try:
        yield work
    finally:
        if not request.keep:
            for path in work.iterdir():
                if failed and path.suffix == ".log":
                    continue
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                work.rmdir()


def rehearse(request: Request, files: HostFiles,
             facts: dict[str, layout.Facts] | None = None) -> tuple[Plan, Outcome, Path]:
    """The whole rehearsal; returns the plan, what the boot showed, and the work directory."""
    check_preconditions()
    p = plan(request, files, facts)
    failed: list[bool] = []
    with work_dir(request, failed) as work:
        found = contents(p, work)
        with ui.step("size the copy from the host's files (snapshot create's excludes)"):
            sizes = image.content_sizes(found, [v.mountpoint for v in p.layout.volumes
                                                if v.content])
        p = dataclasses.replace(p, layout=layout.with_sizes(p.layout, sizes))
        disk = work / "host.img"
        mount_dir = Path("/run/xenlfs") / f"rehearse-{work.name}"
        with ui.step(f"make the copy: {disk} ({image.image_size(p.layout) // MiB} MiB, "
                     f"{p.layout.bus})"):
            image.build(p.layout, found, disk, mount_dir, lambda top: change_copy(p, top))
        ui.stderr.print(f"boot the copy under QEMU (TCG, {p.memory_mib} MiB, {p.layout.bus}) "
                        f"through GRUB and entry {p.entry.label}:", markup=False)
        outcome = watch_boot(p, disk, work)
        if not outcome.ok:
            failed.append(True)
    return p, outcome, work
