"""Boot Xen and dom0 under QEMU (TCG) and wait until dom0 is ready.

qemu_argv() is a pure function of a LabSpec, so the exact command line is testable without
root. QEMU's serial port (Xen's com1, which carries Xen's and dom0's console) goes to a log
file; dom0 is ready when its agent prints READY there and answers a ping.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from xenlfs import run
from xenlfs.errors import XenlfsError
from xenlfs.lab import agent, dom0

log = logging.getLogger("xenlfs.lab")

MiB = 1024 * 1024


class LabBootFailed(XenlfsError):
    """Xen or dom0 did not come up; carries the serial log's last lines and its path."""

    def __init__(self, message: str, *, log_path: Path, tail: str, hint: str | None = None):
        super().__init__(f"{message}\nlast lines of the serial log:\n{tail}\n"
                         f"full serial log: {log_path}", hint=hint)
        self.log_path = log_path
        self.tail = tail


@dataclass(frozen=True)
class Disk:
    """A raw disk image given to dom0 as virtio-blk; `serial` finds it in dom0's /sys."""

    path: Path
    serial: str
    readonly: bool = False


# QEMU's -cpu: qemu64 with AMD-V, and nested paging, so Xen runs PVH and HVM guests with HAP
# rather than shadow paging: a PVH guest reached its login in 76 s instead of 125 s (PV guests
# and dom0 do not use it; docs/benchmarks.md).
DEFAULT_CPU = "qemu64,+svm,+npt"


@dataclass(frozen=True)
class LabSpec:
    xen: Path
    dom0_kernel: Path
    dom0_initrd: Path
    run_dir: Path
    memory: int = 3072 * MiB
    dom0_memory: int = 1024 * MiB
    cpus: int = 2
    cpu: str = DEFAULT_CPU
    disks: tuple[Disk, ...] = ()
    xen_args: tuple[str, ...] = ()
    dom0_args: tuple[str, ...] = ()

    @property
    def serial_log(self) -> Path:
        return self.run_dir / "serial.log"

    @property
    def qemu_log(self) -> Path:
        return self.run_dir / "qemu.log"

    @property
    def agent_socket(self) -> Path:
        return self.run_dir / "agent.sock"

    @property
    def qmp_socket(self) -> Path:
        return self.run_dir / "qmp.sock"

    @property
    def share(self) -> Path:
        return self.run_dir / "share"


def qemu_escape(value: str | os.PathLike[str]) -> str:
    """QEMU option values are comma-separated: a comma inside one is written twice."""
    return os.fspath(value).replace(",", ",,")


def xen_command_line(spec: LabSpec) -> str:
    mem = spec.dom0_memory // MiB
    return " ".join(("console=com1", "com1=115200", f"dom0_mem={mem}M,max:{mem}M",
                     "dom0_max_vcpus=1", "noreboot", *spec.xen_args))


def dom0_command_line(spec: LabSpec) -> str:
    # Debian runs its crypto self-tests at every boot: seconds under TCG, nothing to learn.
    return " ".join(("console=hvc0", "quiet", "loglevel=4", "cryptomgr.notests",
                     *spec.dom0_args))


def qemu_argv(spec: LabSpec, qemu: str = "qemu-system-x86_64") -> list[str]:
    """The QEMU command line. KVM cannot run Xen here, so TCG with a qemu64 CPU."""
    # -initrd lists multiboot modules, comma-separated; each is "file arguments...".
    modules = (f"{qemu_escape(spec.dom0_kernel)} {qemu_escape(dom0_command_line(spec))},"
               f"{qemu_escape(spec.dom0_initrd)}")
    argv = [
        qemu, "-accel", "tcg", "-cpu", spec.cpu, "-smp", str(spec.cpus),
        "-m", f"{spec.memory // MiB}M", "-nographic", "-no-reboot", "-monitor", "none",
        "-serial", f"file:{qemu_escape(spec.serial_log)}",
        "-kernel", os.fspath(spec.xen), "-append", xen_command_line(spec), "-initrd", modules,
        "-device", "virtio-serial-pci",
        "-chardev", f"socket,id=agent,path={qemu_escape(spec.agent_socket)},server=on,wait=off",
        "-device", f"virtserialport,chardev=agent,name={agent.PORT_NAME}",
        "-virtfs", f"local,path={qemu_escape(spec.share)},mount_tag={dom0.SHARE_TAG},"
                   "security_model=none,id=share",
        "-qmp", f"unix:{qemu_escape(spec.qmp_socket)},server=on,wait=off",
        "-device", "virtio-rng-pci",
        "-nic", "none",
    ]
    for index, disk in enumerate(spec.disks):
        argv += ["-drive", f"file={qemu_escape(disk.path)},if=none,id=disk{index},format=raw,"
                           f"readonly={'on' if disk.readonly else 'off'}",
                 "-device", f"virtio-blk-pci,drive=disk{index},serial={qemu_escape(disk.serial)}"]
    return argv


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_bytes()[-64 * 1024:].decode("utf-8", "replace")
    except OSError:
        return "(no serial log was written)"
    kept = [line.rstrip("\r") for line in text.splitlines()][-lines:]
    return "\n".join(kept) if kept else "(the serial log is empty)"


def start(spec: LabSpec) -> subprocess.Popen[bytes]:
    """Start QEMU in its own session, so a lab can outlive the command that started it."""
    spec.run_dir.mkdir(parents=True, exist_ok=True)
    spec.share.mkdir(exist_ok=True)
    for stale in (spec.serial_log, spec.agent_socket, spec.qmp_socket):
        stale.unlink(missing_ok=True)
    for disk in spec.disks:
        if not disk.path.exists():
            raise XenlfsError(f"disk image {disk.path} does not exist")
    with open(spec.qemu_log, "wb") as qemu_log:
        return run.spawn(qemu_argv(spec), stdout=qemu_log, stderr=subprocess.STDOUT,
                         start_new_session=True)


# Lines of the serial log that end a phase of the boot, in order.
PHASES: tuple[tuple[str, str], ...] = (
    ("Xen booted, dom0 kernel starting", "Freed"),
    ("dom0 kernel reached userspace", "xenlfs-dom0: /proc/xen/capabilities"),
    ("dom0 brought up (xenstored, xenconsoled, xenbr0)", dom0.UP_MARKER),
    ("agent ready", agent.READY),
)


@dataclass
class BootWatch:
    """Follows the serial log and notes when each phase ended (seconds since QEMU started)."""

    spec: LabSpec
    started: float = field(default_factory=time.monotonic)
    phases: list[tuple[str, float]] = field(default_factory=list)

    def poll(self) -> bool:
        """Note phases seen so far; True when dom0's agent has said it is ready."""
        try:
            text = self.spec.serial_log.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return False
        while len(self.phases) < len(PHASES):
            name, marker = PHASES[len(self.phases)]
            if marker not in text:
                break
            self.phases.append((name, time.monotonic() - self.started))
        return len(self.phases) == len(PHASES)

    def failure_hint(self) -> str:
        if not self.phases:
            return ("Xen did not finish booting: check --xen is a multiboot Xen image and that "
                    "QEMU runs (see qemu.log beside the serial log)")
        if len(self.phases) == 1:
            return ("the dom0 kernel did not reach userspace: is it a PV-capable kernel with "
                    "hvc0 (CONFIG_XEN, CONFIG_HVC_XEN)? Is [lab] dom0_memory big enough to "
                    "unpack the initramfs?")
        return "dom0 userspace did not finish coming up: see the xenlfs-dom0 lines above"


def wait_ready(proc: subprocess.Popen[bytes], spec: LabSpec, timeout: float,
               watch: BootWatch | None = None) -> BootWatch:
    """Wait for dom0's agent; on QEMU exiting or the timeout, stop QEMU and raise LabBootFailed."""
    watch = watch or BootWatch(spec)
    deadline = watch.started + timeout
    while not watch.poll():
        if proc.poll() is not None:
            qemu_out = log_tail(spec.qemu_log, 5)
            raise LabBootFailed(f"QEMU exited with status {proc.returncode} before dom0 was "
                                f"ready; QEMU said:\n{qemu_out}", log_path=spec.serial_log,
                                tail=log_tail(spec.serial_log), hint=watch.failure_hint())
        if time.monotonic() > deadline:
            stop(proc.pid)
            raise LabBootFailed(
                f"dom0 was not ready within {timeout:g} s", log_path=spec.serial_log,
                tail=log_tail(spec.serial_log),
                hint=watch.failure_hint() + "; a slow machine may need a longer "
                "--boot-timeout")
        time.sleep(0.1)
    return watch


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def stop(pid: int, grace: float = 10.0) -> None:
    """Stop QEMU: SIGTERM (QEMU exits cleanly), then SIGKILL after `grace` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            _reap(pid)
            if not alive(pid):
                return
            time.sleep(0.1)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def format_phases(phases: Sequence[tuple[str, float]]) -> str:
    width = max((len(name) for name, _ in phases), default=0)
    lines, previous = [], 0.0
    for name, at in phases:
        lines.append(f"  {name:<{width}}  {at - previous:6.1f} s  (at {at:5.1f} s)")
        previous = at
    return "\n".join(lines)
