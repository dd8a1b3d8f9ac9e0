"""dom0's initramfs: a Debian minbase root with the toolstack (debootstrap), slimmed, with
the dom0 kernel's modules, busybox as init and xenlfs's bring-up and agent (dom0.py)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
from collections.abc import Sequence
from pathlib import Path

from xenlfs import run
from xenlfs.digest import file_digest
from xenlfs.lab import dom0
from xenlfs.lab.apt import Versions, debootstrap
from xenlfs.lab.cache import building, cache_key
from xenlfs.lab.dom0_kernel import needed_modules
from xenlfs.lab.initramfs import busybox, cpio

log = logging.getLogger("xenlfs.lab")


def rootfs_dir(cache: Path, versions: Versions, mirror: str, packages: Sequence[str]) -> Path:
    inputs = {"suite": versions.suite, "mirror": mirror, "packages": sorted(packages),
              "xen_utils": versions.xen_utils}
    return cache / f"rootfs-{cache_key(inputs)}"


def rootfs(cache: Path, versions: Versions, mirror: str, packages: Sequence[str]) -> Path:
    """debootstrap minbase with the toolstack (about a minute), slimmed; cached."""
    target = rootfs_dir(cache, versions, mirror, packages)
    if (target / "etc/os-release").exists():
        return target
    with building(target) as work:
        debootstrap(work, versions.suite, mirror, packages)
        got = run.run(["chroot", work, "dpkg-query", "-W", "-f", "${Version}",
                       dom0.XEN_UTILS_PACKAGE], check=False).stdout.strip()
        if got and got != versions.xen_utils:
            log.warning("the mirror gave %s %s, apt's lists say %s: run apt-get update",
                        dom0.XEN_UTILS_PACKAGE, got, versions.xen_utils)
    return target


def overlay_files() -> dict[str, tuple[int, str]]:
    """Files xenlfs adds to the dom0 tree: path → (mode, text)."""
    agent = (Path(__file__).parent / "agent.py").read_text()
    return {"etc/xenlfs/dom0-up": (0o755, dom0.DOM0_UP), "etc/inittab": (0o644, dom0.INITTAB),
            dom0.AGENT_PATH.lstrip("/"): (0o644, agent)}


def slim(stage: Path, exclude: Sequence[str] = dom0.EXCLUDE) -> None:
    """Leave out what a lab dom0 never uses; precompile what its Python imports."""
    for pattern in exclude:
        for path in sorted(stage.glob(pattern), reverse=True):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
    # Debian's python3 ships no bytecode; compiling at every boot costs seconds under TCG.
    run.run(["chroot", stage, "python3", "-c", f"import {', '.join(dom0.PYTHON_IMPORTS)}"],
            env={"PYTHONHASHSEED": "0"})


def populate(stage: Path, kernel: tuple[Path, str] | None, modules: Sequence[str],
             exclude: Sequence[str] = dom0.EXCLUDE) -> None:
    slim(stage, exclude)
    if kernel is not None:
        tree, release = kernel
        for relative in needed_modules(tree, release, modules):
            (stage / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(tree / relative, stage / relative)
        for name in ("modules.order", "modules.builtin", "modules.builtin.modinfo"):
            if (tree / f"lib/modules/{release}/{name}").exists():
                shutil.copy2(tree / f"lib/modules/{release}/{name}",
                             stage / f"lib/modules/{release}/{name}")
        run.run(["depmod", "-b", stage, release])
    for relative, (mode, text) in overlay_files().items():
        path = stage / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        os.chmod(path, mode)
    shutil.copy2(busybox(), stage / "bin/busybox")
    (stage / "init").unlink(missing_ok=True)
    os.symlink("/bin/busybox", stage / "init")
    (stage / "dev/console").unlink(missing_ok=True)
    os.mknod(stage / "dev/console", 0o600 | stat.S_IFCHR, os.makedev(5, 1))


def dom0_initrd(cache: Path, root: Path, kernel: tuple[Path, str] | None,
                kernel_id: str, modules: Sequence[str],
                exclude: Sequence[str] = dom0.EXCLUDE) -> Path:
    inputs = {"root": root.name, "kernel": kernel_id, "modules": sorted(modules),
              "overlay": overlay_files(), "busybox": file_digest(busybox()),
              "exclude": list(exclude), "imports": dom0.PYTHON_IMPORTS}
    target = cache / f"dom0-{cache_key(inputs)}"
    if (target / "initrd.cpio").is_file():
        return target / "initrd.cpio"
    with building(target) as work:
        stage = work / "stage"
        run.run(["cp", "-a", root, stage])
        populate(stage, kernel, modules, exclude)
        cpio(stage, work / "initrd.cpio")
        shutil.rmtree(stage)
        (work / "inputs.json").write_text(json.dumps(inputs, indent=2, default=str) + "\n")
    return target / "initrd.cpio"
