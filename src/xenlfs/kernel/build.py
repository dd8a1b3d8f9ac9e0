"""`xenlfs kernel build` and `kernel install`: bzImage and modules, installed the LFS way.

The lab's and CI's cache of built kernels is lab/kernels.py.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from xenlfs import files, run, ui
from xenlfs.errors import PreconditionError
from xenlfs.kernel import fix
from xenlfs.kernel.config import load

log = logging.getLogger("xenlfs.kernel")

# kbuild's quiet-mode tags → the phase of a build they belong to.
_PREPARE = {"HOSTCC", "HOSTLD", "SYNC", "WRAP", "UPD", "GEN", "SYSHDR", "SYSTBL", "CALL",
            "DESCEND", "CHK", "POLICY", "HYPERCALLS", "MKCAP", "MKREQ"}
_LINK = {"KSYMS", "SORTTAB", "NM", "KSYM", "MODPOST"}


def phase_of(line: str) -> str | None:
    words = line.split()
    if not words:
        return None
    tag = words[0]
    if "[M]" in line or (tag == "MODPOST" and "modules" in line):
        return "modules"
    if any("arch/x86/boot" in w for w in words[1:]) or tag in ("BUILD", "OBJCOPY", "ZOFFSET",
                                                               "VOFFSET", "MKPIGGY", "RELOCS"):
        return "bzImage"
    if tag in _PREPARE:
        return "prepare"
    if tag in _LINK or (tag == "LD" and words[-1].startswith("vmlinux")):
        return "link vmlinux"
    if tag in ("CC", "AS", "AR", "LD", "CPP", "LDS", "CHECK"):
        return "compile"
    return None


@dataclass(frozen=True)
class Built:
    tree: Path
    release: str          # `make kernelrelease`: version + LOCALVERSION
    bzimage: Path
    modules: bool
    seconds: float
    log: Path


def kernel_release(tree: Path) -> str:
    result = run.run(["make", "-s", "-C", tree, fix.ARCH, "kernelrelease"])
    return str(result.stdout).strip().splitlines()[-1]


def build(tree: Path, *, jobs: int, log_path: Path, nice: int | None = None) -> Built:
    fix.require_tree(tree)
    if not (tree / ".config").is_file():
        raise PreconditionError(f"{tree}/.config does not exist",
                                hint="make one first: xenlfs kernel fix --src TREE --role …")
    modules = load(tree / ".config").get("MODULES") == "y"
    targets = ["bzImage", *(["modules"] if modules else [])]
    argv: list[str | os.PathLike[str]] = ["make", "-C", tree, fix.ARCH, f"-j{jobs}",
                                                     *targets]
    if nice is not None:
        argv = ["nice", "-n", str(nice), *argv]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    counts: dict[str, int] = {}
    with open(log_path, "w", encoding="utf-8", buffering=1) as out, \
            ui.count_progress() as progress:
        task = progress.add_task("kernel build: prepare", total=None)
        proc = run.spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert proc.stdout is not None
        seen: set[str] = set()
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace")
            out.write(line)
            phase = phase_of(line)
            if phase is None:
                continue
            counts[phase] = counts.get(phase, 0) + 1
            if phase not in seen:  # prepare and compile interleave: announce each once
                seen.add(phase)
                log.info("    %s (%s)", phase, ui.seconds(time.monotonic() - start))
            progress.update(task, description=f"kernel build: {phase}", completed=counts[phase])
        proc.wait()
    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
    run.check_finished(proc, stderr=tail, hint=f"the whole build log is {log_path}")
    return Built(tree, kernel_release(tree), tree / "arch/x86/boot/bzImage", modules,
                 time.monotonic() - start, log_path)


@dataclass(frozen=True)
class Installed:
    release: str
    files: list[Path]
    modules_dir: Path | None


def install(tree: Path, *, boot: Path, root: Path) -> Installed:
    """Copy bzImage, System.map and .config to BOOT as LFS names them; modules_install."""
    fix.require_tree(tree)
    image = tree / "arch/x86/boot/bzImage"
    if not image.is_file():
        raise PreconditionError(f"{image} does not exist", hint="build first: xenlfs kernel build")
    release = kernel_release(tree)
    if not run.dry_run():
        boot.mkdir(parents=True, exist_ok=True)
    placed = []
    for source, name in ((image, "vmlinuz"), (tree / "System.map", "System.map"),
                         (tree / ".config", "config")):
        target = boot / f"{name}-{release}"
        # A link already named vmlinuz-RELEASE points at another kernel: that one stays.
        files.write_atomic(target, source.read_bytes(), mode=0o644, follow_symlinks=False)
        placed.append(target)
    modules_dir = None
    if load(tree / ".config").get("MODULES") == "y":
        run.run(["make", "-C", tree, fix.ARCH, f"INSTALL_MOD_PATH={root}",
                 "modules_install"], writes=True)
        modules_dir = root / "lib/modules" / release
    return Installed(release, placed, modules_dir)
