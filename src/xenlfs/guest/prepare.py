"""Hint step 5 from end to end: decide the target, attach it, extract the snapshot, plan and
apply the edits, write the guest's xl config — as a flat list of timed steps."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import stat
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from xenlfs import files, run, ui
from xenlfs.errors import PreconditionError
from xenlfs.guest import bootloader, plan, storage, volume
from xenlfs.guest.rootfs import GuestRoot
from xenlfs.snapshot import manifest as manifests
from xenlfs.snapshot.extract import Archive, confined, extract, look
from xenlfs.xl import toolstack, write

log = logging.getLogger("xenlfs.guest")


@dataclass(frozen=True)
class XlRequest:
    config_dir: Path
    kernel: str | None
    memory: int  # MiB
    vifs: tuple[str, ...] = ("",)
    ramdisk: str | None = None
    type: str = "pv"  # pv (the hint's), pvh or hvm
    boot_kernel: Path | None = None  # hvm from its disk: copied into the guest's /boot

    @property
    def boots_from_disk(self) -> bool:
        """An HVM guest without kernel=: its BIOS boots GRUB from its own disk."""
        return self.type == "hvm" and not self.kernel


@dataclass
class Report:
    layout: storage.Layout
    plan: plan.Plan | None = None
    xl_config: Path | None = None
    xl_note: str = ""
    boot: str = ""  # how an HVM guest boots from its disk
    times: ui.StepTimes = field(default_factory=ui.StepTimes)


def prepare_guest(archive: Path, request: storage.Request, opts: plan.GuestOptions,
                  xl: XlRequest, *, replace_config: bool = False) -> Report:
    """`replace_config` (--force): an xl config already there that says something else is
    replaced (xl/write.config_change's rules)."""
    path = Path(os.path.abspath(archive))
    if not path.is_file():
        raise PreconditionError(f"the snapshot {path} does not exist",
                                hint="make one with: xenlfs snapshot create")
    source = look(path)  # its format and root (a dry run looks without), once
    # Under the guest's lock from the first look on: a mount of this guest found now is a
    # leftover of a killed run, never one of a run still going.
    with volume.locked(opts.name):
        return _prepare_guest(source, request, opts, xl, replace_config)


def _prepare_guest(source: Archive, request: storage.Request, opts: plan.GuestOptions,
                   xl: XlRequest, replace_config: bool) -> Report:
    times = ui.StepTimes()
    archive = source.path
    with ui.step("look at the snapshot and the target", times):
        content = storage.snapshot_content(archive)
        layout = storage.decide(request, content)
        # Refused now, before anything is built: a config xl would refuse, another one there.
        xl_change = xl_config(layout, opts, xl, replace=replace_config)
    report = Report(layout, times=times)
    if xl.boots_from_disk and (why := bootloader.needs_table(layout)):
        raise PreconditionError(why, hint="use an image with one: --target IMAGE "
                                "--partition-table dos, or boot it directly with --kernel FILE")
    log.info("target: %s %s%s%s", layout.kind, layout.path,
             f", new, {layout.size // storage.MiB} MiB" if layout.create else "",
             "" if layout.kind == "dir" else f", make {layout.mkfs}" if layout.mkfs
             else f", keep its {layout.fstype}")
    with volume.attached(layout, opts.name) as where:
        if run.dry_run():
            with tempfile.TemporaryDirectory(prefix="xenlfs-plan-") as skeleton:
                log.info("would extract %s into %s", archive, where)
                extract_skeleton(source, Path(skeleton))
                report.plan = plan.plan_edits(GuestRoot(Path(skeleton)), opts,
                                              fstype=layout.fstype)
        else:
            _check_room(where, content, archive)
            with ui.step("extract the snapshot", times):
                extract(source, where)
            with ui.step("edit the guest's files", times):
                report.plan = plan.plan_edits(GuestRoot(where), opts, fstype=layout.fstype)
                plan.apply(GuestRoot(where), report.plan)
            if xl.boots_from_disk:
                with ui.step("the guest's kernel and grub.cfg in its /boot", times):
                    kernel = bootloader.place_kernel(GuestRoot(where), xl.boot_kernel,
                                                     opts.name)
                    GuestRoot(where).write_text(bootloader.GRUB_CFG, bootloader.grub_cfg(
                        opts.name, kernel, opts.root_device))
                    report.boot = f"GRUB in {layout.path}'s MBR boots {kernel}"
    if xl.boots_from_disk and run.dry_run():
        log.info("would copy %s into the guest's /boot and write %s",
                 xl.boot_kernel or "(the newest kernel in the guest's /boot)",
                 bootloader.GRUB_CFG)
    if xl.boots_from_disk:
        with ui.step("install BIOS GRUB in the image's MBR (grub-install)", times):
            try:
                bootloader.install(layout.path, opts.name, layout.fstype)
            except BaseException:
                if layout.create and not run.dry_run():  # converge: the next run starts anew
                    log.warning("removing %s, made by this run that failed", layout.path)
                    layout.path.unlink(missing_ok=True)
                raise
    with ui.step("write the guest's xl config", times):
        write_xl_config(report, xl_change)
    return report


def _check_room(where: Path, content: int, archive: Path) -> None:
    st = os.statvfs(where)
    free = st.f_bavail * st.f_frsize
    if free >= content:
        return
    # Preparing it again: tar replaces each file (unlinking the old one first), so what the
    # files already there take is room too.
    free += replaced_bytes(where, member_names(archive))
    if free < content:
        raise PreconditionError(f"{where} has {free // storage.MiB} MiB free; the snapshot "
                                f"needs about {content // storage.MiB} MiB",
                                hint="use a bigger target, or --mkfs ext4 over an empty one")


def member_names(archive: Path) -> list[str]:
    """The archive's member names ('./etc/fstab'), from its manifest if it has one."""
    sidecar = manifests.path_for(archive)
    if sidecar.is_file():
        return ["./" + e.path for e in manifests.read(sidecar).entries if e.path != "."]
    listing: str = run.run(["tar", "--list", "--file", archive]).stdout
    return listing.splitlines()


def replaced_bytes(where: Path, names: list[str]) -> int:
    """Bytes the regular files in `where` at these names take on its filesystem (each
    hard-linked file once). Only looks (lstat); what lies on another filesystem is not
    counted."""
    device = os.stat(where).st_dev
    seen: set[int] = set()
    total = 0
    for name in names:
        try:
            st = os.lstat(os.path.join(where, name))
        except (OSError, ValueError):
            continue
        if stat.S_ISREG(st.st_mode) and st.st_dev == device and st.st_ino not in seen:
            seen.add(st.st_ino)
            total += st.st_blocks * 512
    return total


def extract_skeleton(source: Archive, dest: Path) -> None:
    """For a dry run: only the entries step 5 looks at (top levels, etc/, root/.ssh)."""
    names = member_names(source.path)
    wanted = [n for n in names if _in_skeleton(n)]
    listing = dest / ".xenlfs-members"
    listing.write_text("\n".join(wanted) + "\n", encoding="utf-8", errors="surrogateescape")
    flag = source.compression.tar_flag
    argv = ["tar", "--extract", "--no-recursion", "--file=-", f"--directory={dest}",
            f"--files-from={listing}", *([flag] if flag else [])]
    # As root, the same jail as the real extraction; a user's dry run cannot make one, but
    # `dest` is a new private directory that holds no links of its own.
    jail: contextlib.AbstractContextManager[list[str]] = \
        confined(dest) if os.geteuid() == 0 else contextlib.nullcontext([])
    with jail as prefix, open(source.path, "rb") as stream:
        # Hard links to files left out fail, and only root can make nodes: harmless here.
        tar = run.spawn([*prefix, *argv], stdin=stream, stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL)
        tar.wait()
    listing.unlink()


def _in_skeleton(name: str) -> bool:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    return len(parts) <= 2 or parts[0] == "etc" or parts[:2] == ["root", ".ssh"]


def xl_config(layout: storage.Layout, opts: plan.GuestOptions, xl: XlRequest, *,
              replace: bool) -> files.FileChange | None:
    """The change that writes the guest's xl config (CONFIG_DIR/NAME.cfg), or None when there
    is none to write. Refuses (UsageError) what xl would (memory 0, a kernel of the wrong
    kind, ...) and another config already there unless `replace`."""
    if layout.disk_spec is None or (not xl.kernel and not xl.boots_from_disk):
        return None
    return write.config_change(toolstack.named_config(opts.name, xl.config_dir),
                               write.render(guest_config(opts, xl, layout.disk_spec)),
                               replace=replace)


def write_xl_config(report: Report, change: files.FileChange | None) -> None:
    layout = report.layout
    if layout.disk_spec is None:
        report.xl_note = "not written: a directory target is no Xen disk"
        return
    if change is None:
        report.xl_note = ("not written: give --kernel (the domU kernel of hint step 4), e.g. "
                          f"--kernel /boot/vmlinuz-6.1-xen-domU; disk would be "
                          f"'{layout.disk_spec}'")
        return
    report.xl_config = change.path
    write.write_config(change)
    report.xl_note = ("already as needed" if not change.needed else
                      "written" if change.old is None else "updated (backup kept)")


def guest_config(opts: plan.GuestOptions, xl: XlRequest, disk: str) -> write.GuestConfig:
    """The xl config of each type: PV as the hint writes it; PVH the same with type = "pvh"
    and the console named; HVM with its serial port, either booting GRUB from its disk (no
    kernel line) or, with --kernel, through xl's direct kernel boot."""
    pv = write.GuestConfig(name=opts.name, kernel=xl.kernel, memory=xl.memory, disks=(disk,),
                           root=f"{opts.root_device} ro", vifs=xl.vifs, ramdisk=xl.ramdisk)
    if xl.type == "pv":
        return pv
    if xl.type == "pvh":
        return dataclasses.replace(pv, type="pvh", extra="console=hvc0")
    if xl.boots_from_disk:
        return dataclasses.replace(pv, type="hvm", root=None, ramdisk=None,
                                   others=(*write.HVM_CONSOLE, ("boot", "c")))
    return dataclasses.replace(pv, type="hvm", extra=bootloader.HVM_KERNEL_ARGS,
                               others=write.HVM_CONSOLE)
