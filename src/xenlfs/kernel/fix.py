"""`xenlfs kernel fix`: turn a tree's .config into one that meets a role's requirements.

All the work happens on a copy in a temporary directory, with the tree's own tools:
scripts/config sets options, `make olddefconfig` (KCONFIG_CONFIG=copy) decides what sticks.
Options whose dependencies are off get those dependencies turned on too, as long as they are
options a user could pick in menuconfig; nothing is turned off but the options a guest type
wants off (Level.UNWANTED: VGA_CONSOLE for HVM). Then the copy is checked again, and only at
the end does it replace TREE/.config (atomically, with a backup).
"""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from xenlfs import files, run
from xenlfs.errors import PreconditionError
from xenlfs.kernel import check as checks
from xenlfs.kernel.config import KernelConfig, load
from xenlfs.kernel.explain import Explanation, enablers, explain
from xenlfs.kernel.kconfig import Kconfig, read_tree
from xenlfs.kernel.requirements import DEFAULT_TYPES, ENABLERS, GuestType, Level, Role

log = logging.getLogger("xenlfs.kernel")

# Xen PV needs a 64-bit kernel. With plain `make` on an x86_64 host ARCH is "x86", which
# shows the "64-bit kernel" prompt, and allnoconfig/tinyconfig then answer it with no.
ARCH = "ARCH=x86_64"
STARTS = ("defconfig", "tinyconfig", "allnoconfig", "olddefconfig")
_ROUNDS = 6
TEMP_PREFIX = "xenlfs-kernel-"


@dataclass(frozen=True)
class FixResult:
    before: KernelConfig
    after: KernelConfig
    text: str                       # the new .config
    results: list[checks.Result]    # the role's check on the new config
    added: list[str]                # dependencies turned on beyond the requirements
    not_stuck: list[Explanation]    # requirements still unmet, and why
    warnings: list[str]             # what olddefconfig said (unmet direct dependencies)


def require_tree(tree: Path) -> None:
    if not (tree / "Kconfig").is_file() or not (tree / "scripts/config").is_file():
        raise PreconditionError(f"{tree} is not a Linux source tree (no Kconfig, scripts/config)",
                                hint="give --src the top directory of an unpacked kernel")


def tree_version(tree: Path) -> str:
    """VERSION.PATCHLEVEL.SUBLEVEL from the top Makefile, as `make kernelversion` prints."""
    text = (tree / "Makefile").read_text(encoding="utf-8", errors="replace")
    found = re.findall(r"^(VERSION|PATCHLEVEL|SUBLEVEL|EXTRAVERSION)[ \t]*=[ \t]*(.*)$",
                       text[:2000], re.M)
    parts: dict[str, str] = {key: value.strip() for key, value in found}
    version = f"{parts.get('VERSION', '0')}.{parts.get('PATCHLEVEL', '0')}"
    version += f".{parts['SUBLEVEL']}" if parts.get("SUBLEVEL") else ""
    return version + parts.get("EXTRAVERSION", "")


def make_config(tree: Path, target: str, config_file: Path, *,
                tmpdir: Path | None = None) -> list[str]:
    """Run a kconfig make target on `config_file`; return the warnings it printed.

    `tmpdir` becomes the tools' TMPDIR: Kconfig's $(cc-option) probes run gcc, whose
    temporary files a kill -9 would otherwise leave in /tmp."""
    if target == "tinyconfig":
        return _tinyconfig(tree, config_file, tmpdir)
    result = run.run(["make", "-C", tree, ARCH, f"KCONFIG_CONFIG={config_file}", target],
                     env=_tmpdir_env(tmpdir),
                     hint="the kernel's config tool needs gcc, make, flex and bison")
    output = f"{result.stdout}\n{result.stderr}"
    return [line.strip() for line in output.splitlines()
            if "WARNING" in line or "unmet" in line or "warning:" in line]


def _tmpdir_env(tmpdir: Path | None) -> dict[str, str]:
    return {} if tmpdir is None else {"TMPDIR": str(tmpdir)}


def _tinyconfig(tree: Path, config_file: Path, tmpdir: Path | None) -> list[str]:
    """`make tinyconfig`, done so that it honours KCONFIG_CONFIG.

    Linux 6.1's rule merges the tiny.config fragments onto the tree's literal `.config`
    (scripts/kconfig/Makefile: `merge_config.sh -m .config …`), whatever KCONFIG_CONFIG
    says: the result is the tree's old config, not a tiny one, and with no .config the
    script creates an empty one. Same steps here, with the right base.
    """
    base = tree / "kernel/configs/tiny-base.config"
    run.run(["make", "-C", tree, ARCH, f"KCONFIG_CONFIG={config_file}",
             *([f"KCONFIG_ALLCONFIG={base}"] if base.is_file() else []), "allnoconfig"],
            env=_tmpdir_env(tmpdir))
    fragments = [f for f in (tree / "kernel/configs/tiny.config",
                             tree / "arch/x86/configs/tiny.config") if f.is_file()]
    run.run([tree / "scripts/kconfig/merge_config.sh", "-m", config_file, *fragments],
            env={"KCONFIG_CONFIG": str(config_file), **_tmpdir_env(tmpdir)},
            cwd=config_file.parent)
    return make_config(tree, "olddefconfig", config_file, tmpdir=tmpdir)


def _settings(wanted: dict[str, str], localversion: str | None) -> list[str]:
    args: list[str] = []
    flags = {"m": "--module", "n": "--disable"}
    for symbol, value in wanted.items():
        args += [flags.get(value, "--enable"), symbol]
    if localversion is not None:
        args += ["--set-str", "LOCALVERSION", localversion]
    return args


def _set(tree: Path, work: Path, wanted: dict[str, str], localversion: str | None) -> list[str]:
    run.run([tree / "scripts/config", "--file", work, *_settings(wanted, localversion)],
            env=_tmpdir_env(work.parent))
    return make_config(tree, "olddefconfig", work, tmpdir=work.parent)


def _targets(results: list[checks.Result], config: KernelConfig, kconfig: Kconfig,
             recommended: bool) -> dict[str, str]:
    """What to set for the unmet requirements, and the dependencies they need first."""
    wanted: dict[str, str] = {}
    for result in results:
        req = result.requirement
        if result.met or (req.level is Level.RECOMMENDED and not recommended):
            continue
        if req.off:
            wanted[req.symbol] = "n"
            continue
        sym = kconfig.symbols[req.symbol]
        for dep in enablers(explain(req.symbol, config, kconfig, want=1)):
            wanted.setdefault(dep, "y")
        if sym.prompt is not None:
            module = (req.module and sym.type == "tristate" and config.get("MODULES") == "y"
                      and result.status is not checks.Status.MODULE)
            wanted[req.symbol] = "m" if module else "y"
    return wanted


def fix(tree: Path, role: Role, *, localversion: str | None = None, start: str | None = None,
        recommended: bool = False, types: tuple[GuestType, ...] = DEFAULT_TYPES,
        initramfs: bool = False) -> FixResult:
    require_tree(tree)
    kconfig = read_tree(tree)
    current = tree / ".config"
    if start is None and not current.is_file():
        raise PreconditionError(f"{current} does not exist",
                                hint="start from one: --start defconfig (dom0) or "
                                "--start tinyconfig (a small domU)")
    # In a locked temporary directory, also the tools' TMPDIR: they leave files beside the
    # copy (.config.old, merge_config.sh's and gcc's temporaries), and a run killed with
    # SIGKILL leaves the directory, which the next run removes.
    with files.temp_dir(TEMP_PREFIX) as tmp:
        work = tmp / ".config"
        if current.is_file():
            shutil.copyfile(current, work)
        warnings = make_config(tree, start or "olddefconfig", work, tmpdir=tmp)
        config = load(work)
        # The diff is against the file that will be replaced, or what --start made.
        before = load(current) if start is None else config
        wanted = {s: "y" for s in ENABLERS[role]
                  if s in kconfig and kconfig.symbols[s].prompt and config.get(s) != "y"}
        for _ in range(_ROUNDS):
            if wanted or localversion is not None:
                warnings = _set(tree, work, wanted, localversion)
            config = load(work)
            new = {s: v for s, v in _targets(checks.check(config, role, kconfig, types=types,
                                                          initramfs=initramfs), config,
                                             kconfig, recommended).items()
                   if wanted.get(s) != v}
            if not new:
                break
            wanted.update(new)
        else:
            warnings = _set(tree, work, wanted, localversion)
        text = work.read_text()
        after = load(work)
    results = checks.check(after, role, kconfig, types=types, initramfs=initramfs)
    required = {r.requirement.symbol for r in results}
    added = [s for s in wanted if s not in required and after.get(s) in ("y", "m")
             and before.get(s) not in ("y", "m")]
    not_stuck = [explain(r.requirement.symbol, after, kconfig,
                         want=2 if r.requirement.builtin else 1)
                 for r in results if not r.met
                 and (r.requirement.level is not Level.RECOMMENDED or recommended)]
    return FixResult(before, after, text, results, added, not_stuck, warnings)


def diff(before: KernelConfig, after: KernelConfig) -> list[str]:
    """Symbol by symbol, like the kernel's scripts/diffconfig: '-A y', '+B m', ' C n -> y'."""
    lines = []
    for symbol in sorted(before.values.keys() | after.values.keys()):
        old, new = before.values.get(symbol), after.values.get(symbol)
        if old == new or (old in (None, "n") and new in (None, "n")):
            continue
        if old is None:
            lines.append(f"+{symbol} {new}")
        elif new is None:
            lines.append(f"-{symbol} {old}")
        else:
            lines.append(f" {symbol} {old} -> {new}")
    return lines


def apply(tree: Path, result: FixResult) -> Path | None:
    """Write the new .config into the tree; returns the backup of the old one."""
    return files.write_atomic(tree / ".config", result.text)

