"""A running lab: `lab up` starts one and records it; later commands find it; `lab down` ends it.

Each lab has a name and a run directory (under /run/xenlfs/lab as root) holding state.json
(QEMU's pid, the boot's spec and phase times), QEMU's sockets, the share and the logs. A lab
whose QEMU is gone is stale: status says so and `lab up` / `lab down` clear it; its logs stay.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import os
import re
import shutil
import sys
import time
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import xenlfs
from xenlfs.errors import PreconditionError
from xenlfs.lab import boot, dom0, qmp
from xenlfs.lab.boot import Disk, LabSpec
from xenlfs.lab.channel import Channel, ChannelError
from xenlfs.lab.images import Artefacts

log = logging.getLogger("xenlfs.lab")

STATE = "state.json"
DOM0_PYTHON = (3, 11)  # Debian bookworm's python3
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")


def runtime_root() -> Path:
    if os.geteuid() == 0:
        return Path("/run/xenlfs/lab")
    base = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/xenlfs-{os.getuid()}"
    return Path(base) / "xenlfs/lab"


def run_dir(name: str) -> Path:
    if not NAME.match(name):
        raise PreconditionError(f"bad lab name {name!r}",
                                hint="use letters, digits, '.', '_' and '-' (at most 40)")
    return runtime_root() / name


@dataclass
class Lab:
    name: str
    spec: LabSpec
    pid: int
    started: float
    phases: list[tuple[str, float]] = field(default_factory=list)

    @property
    def channel(self) -> Channel:
        return Channel(self.spec.agent_socket, self.spec.share)

    def running(self) -> bool:
        """QEMU with this pid is alive (not a recycled pid)."""
        if not boot.alive(self.pid):
            return False
        try:
            cmdline = Path(f"/proc/{self.pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return os.fspath(self.spec.agent_socket).encode() in b" ".join(cmdline)

    def save(self) -> None:
        data = {"name": self.name, "pid": self.pid, "started": self.started,
                "phases": self.phases, "spec": _spec_json(self.spec)}
        path = self.spec.run_dir / STATE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.rename(tmp, path)

    def stop(self) -> None:
        boot.stop(self.pid)
        for leftover in (self.spec.agent_socket, self.spec.qmp_socket,
                         self.spec.run_dir / STATE):
            leftover.unlink(missing_ok=True)

    def attach_disk(self, image: Path, serial: str, *, readonly: bool = False,
                    timeout: float = 60.0) -> str:
        """Hot-plug a raw disk image into the running dom0; returns its /dev path there.

        Disks given at boot (UpOptions.disks, `lab up --disk`) need no hot-plug."""
        node = f"hot-{serial}"
        qmp.attach_disk(self.spec.qmp_socket, image.resolve(), node, serial, readonly)
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.channel.disk_device(serial)
            except ChannelError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def install_xenlfs(self) -> dict[str, str]:
        """Put xenlfs and its pure-Python dependencies on the share as one zip; returns the
        environment under which `python3 -m xenlfs` works in dom0 (Debian's python3.11).

        One file, because 9p is slow with many small ones; with bytecode when this host's
        Python makes the same bytecode as dom0's, so dom0 need not compile it."""
        target = self.spec.share / "xenlfs-python.zip"
        tmp = target.with_suffix(".tmp")
        with zipfile.PyZipFile(str(tmp), "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for source in python_sources():
                if sys.version_info[:2] == DOM0_PYTHON and source.is_dir():
                    archive.writepy(str(source), filterfunc=lambda p: "__pycache__" not in p)
                elif source.is_dir():
                    for path in sorted(source.rglob("*.py")):
                        archive.write(path, path.relative_to(source.parent))
                else:
                    archive.write(source, source.name)
        os.rename(tmp, target)
        return {"PYTHONPATH": f"{dom0.SHARE_MOUNT}/{target.name}",
                "PYTHONDONTWRITEBYTECODE": "1"}


def _spec_json(spec: LabSpec) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(asdict(spec), default=str))
    return data


def _spec_from_json(data: dict[str, Any]) -> LabSpec:
    disks = tuple(Disk(Path(d["path"]), d["serial"], bool(d["readonly"]))
                  for d in data.get("disks", ()))
    return LabSpec(xen=Path(data["xen"]), dom0_kernel=Path(data["dom0_kernel"]),
                   dom0_initrd=Path(data["dom0_initrd"]), run_dir=Path(data["run_dir"]),
                   memory=int(data["memory"]), dom0_memory=int(data["dom0_memory"]),
                   cpus=int(data["cpus"]), disks=disks, xen_args=tuple(data["xen_args"]),
                   dom0_args=tuple(data["dom0_args"]), cpu=str(data.get("cpu", "qemu64")))


def load(name: str) -> Lab | None:
    path = run_dir(name) / STATE
    try:
        data = json.loads(path.read_text())
        return Lab(data["name"], _spec_from_json(data["spec"]), int(data["pid"]),
                   float(data["started"]), [(str(n), float(t)) for n, t in data["phases"]])
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as e:
        log.warning("ignoring unreadable lab state %s: %s", path, e)
        path.unlink(missing_ok=True)
        return None


def find(name: str) -> Lab:
    """The running lab of this name, or a PreconditionError saying how to get one."""
    lab = load(name)
    if lab is None:
        raise PreconditionError(f"no lab named {name!r} is up",
                                hint=f"start one: xenlfs lab up --name {name}")
    if not lab.running():
        raise PreconditionError(
            f"lab {name!r} is stale: its QEMU (pid {lab.pid}) is gone",
            hint=f"see {lab.spec.serial_log}; 'xenlfs lab down --name {name}' clears it")
    return lab


@dataclass(frozen=True)
class UpOptions:
    name: str = "default"
    memory: int = 3072 * boot.MiB
    dom0_memory: int = 1024 * boot.MiB
    boot_timeout: float = 180.0
    disks: tuple[Disk, ...] = ()
    cpu: str = boot.DEFAULT_CPU


def up(artefacts: Artefacts, options: UpOptions) -> Lab:
    """Boot a lab and wait until dom0's agent answers; stop QEMU again if it does not."""
    directory = run_dir(options.name)
    existing = load(options.name)
    if existing is not None:
        if existing.running():
            raise PreconditionError(f"lab {options.name!r} is already up (QEMU pid "
                                    f"{existing.pid})",
                                    hint=f"use it, or 'xenlfs lab down --name {options.name}'")
        log.info("clearing stale lab %r (QEMU pid %d is gone)", options.name, existing.pid)
        existing.stop()
    spec = LabSpec(xen=artefacts.xen, dom0_kernel=artefacts.dom0_kernel,
                   dom0_initrd=artefacts.dom0_initrd, run_dir=directory,
                   memory=options.memory, dom0_memory=options.dom0_memory, disks=options.disks,
                   cpu=options.cpu)
    if spec.share.exists():
        shutil.rmtree(spec.share)
    proc = boot.start(spec)
    lab = Lab(options.name, spec, proc.pid, time.time())
    lab.save()
    try:
        watch = boot.wait_ready(proc, spec, options.boot_timeout)
        lab.channel.wait(max(10.0, options.boot_timeout - (time.monotonic() - watch.started)))
        watch.phases.append(("agent answers", time.monotonic() - watch.started))
    except BaseException:
        lab.stop()
        raise
    lab.phases = watch.phases
    lab.save()
    return lab


def down(name: str) -> Lab | None:
    lab = load(name)
    if lab is not None:
        lab.stop()
    return lab


def status(name: str) -> dict[str, Any]:
    lab = load(name)
    directory = run_dir(name)
    report: dict[str, Any] = {"name": name, "run_dir": str(directory)}
    if lab is None:
        return {**report, "state": "down"}
    report.update(pid=lab.pid, serial_log=str(lab.spec.serial_log),
                  agent_socket=str(lab.spec.agent_socket), share=str(lab.spec.share),
                  started=time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(lab.started)),
                  phases=lab.phases, disks=[str(d.path) for d in lab.spec.disks])
    if not lab.running():
        return {**report, "state": "stale"}
    try:
        answer = lab.channel.ping(timeout=5.0)
        report.update(state="up", dom0_uptime=round(float(answer.get("uptime", 0)), 1))
    except Exception as e:  # any failure to answer is what status reports
        report.update(state="not answering", error=str(e).splitlines()[0])
    return report


@contextlib.contextmanager
def one_shot(artefacts: Artefacts, options: UpOptions) -> Iterator[Lab]:
    """A lab for the length of a `with` block; its run directory goes too unless the block
    failed."""
    lab = up(artefacts, options)
    try:
        yield lab
    except BaseException:
        lab.stop()  # its logs stay for a look at what went wrong
        raise
    lab.stop()
    shutil.rmtree(lab.spec.run_dir, ignore_errors=True)


def python_sources() -> list[Path]:
    """xenlfs's package directory and those of its runtime dependencies (pure Python)."""
    sources = [Path(xenlfs.__file__).parent]
    seen: set[str] = set()
    pending = _requirements("xenlfs") or ["rich"]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError as e:
            raise PreconditionError(f"xenlfs needs {name}, which is not installed",
                                    hint="run ./setup.sh, or pip install the project") from e
        sources.extend(_top_level(dist))
        pending.extend(_requirements(name))
    return sources


def _requirements(name: str) -> list[str]:
    try:
        requires: Sequence[str] = importlib.metadata.requires(name) or []
    except importlib.metadata.PackageNotFoundError:
        return []
    names = []
    for requirement in requires:
        if "extra ==" in requirement or "python_version <" in requirement:
            continue
        match = re.match(r"[A-Za-z0-9_.-]+", requirement)
        if match:
            names.append(match[0])
    return names


def _top_level(dist: importlib.metadata.Distribution) -> list[Path]:
    names: set[str] = set()
    for file in dist.files or []:
        first = file.parts[0]
        if first.endswith((".dist-info", ".egg-info")) or first in ("..", "__pycache__"):
            continue
        if len(file.parts) > 1 or first.endswith(".py"):
            names.add(first)
    return sorted(Path(str(dist.locate_file(n))) for n in names)
