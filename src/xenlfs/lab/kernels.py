"""The lab's and CI's kernels, each built once: Debian's linux-source tarball unpacked once
per tarball and role, STARTS[role] + `kernel fix --role ROLE`, built with `kernel build`'s
code, and kept under CACHE/kernel/builds keyed by kernel version + a hash of the exact .config.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from xenlfs import files, run, ui
from xenlfs.digest import file_digest
from xenlfs.errors import PreconditionError, XenlfsError
from xenlfs.kernel import build, check, config, explain, fix, kconfig, requirements
from xenlfs.kernel.requirements import DEFAULT_TYPES, GuestType, Role

DEBIAN_SOURCE = Path("/usr/src/linux-source-6.1.tar.xz")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One user of a source tree at a time: its .config and objects are shared state."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def source_key(tarball: Path) -> str:
    name = tarball.name.split(".tar")[0]
    return f"{name}-{file_digest(tarball)[:12]}"


def unpacked_tree(cache_dir: Path, tarball: Path, purpose: str) -> Path:
    """The tarball unpacked once per purpose (a role, the tests) under CACHE/kernel/src."""
    if not tarball.is_file():
        raise PreconditionError(f"{tarball} does not exist",
                                hint="on Debian: apt-get install linux-source-6.1")
    trees = cache_dir / "kernel/src"
    target = trees / f"{source_key(tarball)}-{purpose}"
    if not target.is_dir():
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        with ui.step(f"unpack {tarball.name}"):
            run.run(["tar", "-xf", tarball, "-C", partial])
        os.rename(partial, target)
    tops = [p for p in target.iterdir() if (p / "Kconfig").is_file()]
    if len(tops) != 1:
        raise PreconditionError(f"{target} holds no single kernel tree",
                                hint=f"remove {target} and try again")
    return tops[0]


def config_digest(text: str) -> str:
    """A hash of a .config's settings (CC_VERSION_TEXT among them), not of its comments."""
    settings = "\n".join(line for line in text.splitlines() if line.startswith("CONFIG_"))
    return hashlib.sha256(settings.encode()).hexdigest()[:12]


# What each role's cached kernel starts from: the smallest config for a guest, the tree's
# default for a dom0 (which must drive real, or QEMU's, hardware).
STARTS = {Role.DOMU: "tinyconfig", Role.DOM0: "defconfig"}


def recipe_key(tarball: Path, role: Role, flavour: str = "") -> str:
    """A hash of everything `kernel fix` makes a role's .config from: the source, the start,
    the requirements and the code applying them, and the toolchain olddefconfig records."""
    digest = hashlib.sha256(f"{source_key(tarball)} {role} {STARTS[role]}{flavour}".encode())
    for module in (check, config, explain, fix, kconfig, requirements):
        digest.update(Path(str(module.__file__)).read_bytes())
    for tool in ("gcc", "ld"):
        digest.update(run.run([tool, "--version"], hint="the kernel build needs binutils and "
                              "gcc").stdout.encode())
    return digest.hexdigest()[:16]


def flavour_name(role: Role, types: tuple[GuestType, ...], recommended: bool) -> str:
    """The suffix naming a role's kernel built for other guest types than PV: '-pv-pvh-hvm+'
    (`+`: with the recommended options too); '' for the hint's PV kernel."""
    if tuple(types) == DEFAULT_TYPES and not recommended:
        return ""
    return "-" + "-".join(str(t) for t in types) + ("+" if recommended else "")


def localversion(role: Role) -> str:
    """General setup → Local version of a role's cached kernel: 6.1.192-xen-domU."""
    return f"-xen-{role}"


def lookup(cache_dir: Path, role: Role, *, tarball: Path = DEBIAN_SOURCE,
           types: tuple[GuestType, ...] = DEFAULT_TYPES, recommended: bool = False) -> Path | None:
    """The kernel the recipe for `role` made before (see cached_kernel), or None: no build."""
    recipe = _recipe_file(cache_dir, tarball, role, flavour_name(role, types, recommended))
    with contextlib.suppress(OSError):
        made = cache_dir / "kernel/builds" / recipe.read_text().strip()
        if (made / "bzImage").is_file():
            return made
    return None


@contextlib.contextmanager
def source_tree(cache_dir: Path, role: Role, *, tarball: Path = DEBIAN_SOURCE,
                types: tuple[GuestType, ...] = DEFAULT_TYPES,
                recommended: bool = False) -> Iterator[Path]:
    """The role's own unpacked tree, held (locked) while the recipe runs in it."""
    purpose = f"{role}{flavour_name(role, types, recommended)}"
    with _locked(cache_dir / "kernel/src" / f"{source_key(tarball)}-{purpose}.lock"):
        yield unpacked_tree(cache_dir, tarball, purpose)


def verbs(tree: Path, role: Role, *, types: tuple[GuestType, ...] = DEFAULT_TYPES,
          recommended: bool = False, jobs: int = 2, nice: int = 19) -> list[list[str]]:
    """The recipe as xenlfs's own commands (what cached_kernel runs in-process): `kernel fix`
    from STARTS[role], then `kernel build`. keep() puts the result into the cache."""
    fix_argv = ["kernel", "fix", "--src", str(tree), "--role", str(role),
                "--start", STARTS[role], f"--localversion={localversion(role)}"]
    if tuple(types) != DEFAULT_TYPES:
        fix_argv += ["--type", ",".join(str(t) for t in types)]
    if recommended:
        fix_argv.append("--recommended")
    return [fix_argv, ["kernel", "build", "--src", str(tree), "--jobs", str(jobs),
                       "--nice", str(nice)]]


def cached_kernel(cache_dir: Path, role: Role, *, tarball: Path = DEBIAN_SOURCE, jobs: int = 2,
                  nice: int | None = 19, types: tuple[GuestType, ...] = DEFAULT_TYPES,
                  recommended: bool = False) -> Path:
    """A kernel for `role` (STARTS[role] + `kernel fix --role ROLE`), built once.

    Returns CACHE/kernel/builds/VERSION-ROLE-CONFIGHASH, holding bzImage, config, System.map,
    release and, if the config has modules, modules/ (an INSTALL_MOD_PATH). Built only if
    that directory does not exist yet; the hash covers the whole .config, compiler included.
    Which directory a recipe made is remembered under builds/recipes/, so a cached kernel
    costs no `kernel fix` (olddefconfig takes seconds).
    """
    found = lookup(cache_dir, role, tarball=tarball, types=types, recommended=recommended)
    if found is not None:
        return found
    flavour = flavour_name(role, types, recommended)
    with source_tree(cache_dir, role, tarball=tarball, types=types,
                     recommended=recommended) as tree:
        result = fix.fix(tree, role, localversion=localversion(role), start=STARTS[role],
                         types=types, recommended=recommended)
        if any(r.fails for r in result.results):
            raise XenlfsError(f"{STARTS[role]} + kernel fix --role {role} does not meet the "
                              f"{role} requirements: "
                              + ", ".join(e.symbol for e in result.not_stuck))
        out = _build_dir(cache_dir, tree, f"{role}{flavour}", result.text)
        if not (out / "bzImage").is_file():
            (tree / ".config").write_text(result.text)
            built = build.build(tree, jobs=jobs, nice=nice,
                                log_path=cache_dir / "kernel/logs" / f"{out.name}.log")
            _store(out, tree, built.release, built.modules)
        _remember(_recipe_file(cache_dir, tarball, role, flavour), out)
        return out


def keep(cache_dir: Path, tree: Path, role: Role, *, tarball: Path = DEBIAN_SOURCE,
         types: tuple[GuestType, ...] = DEFAULT_TYPES, recommended: bool = False) -> Path:
    """A tree the recipe's verbs() configured and built, kept in the cache as cached_kernel
    keeps its own: the same directory for the same .config, remembered as the recipe's."""
    flavour = flavour_name(role, types, recommended)
    text = (tree / ".config").read_text()
    out = _build_dir(cache_dir, tree, f"{role}{flavour}", text)
    if not (out / "bzImage").is_file():
        _store(out, tree, build.kernel_release(tree),
               any(line == "CONFIG_MODULES=y" for line in text.splitlines()))
    _remember(_recipe_file(cache_dir, tarball, role, flavour), out)
    return out


def _recipe_file(cache_dir: Path, tarball: Path, role: Role, flavour: str) -> Path:
    return cache_dir / "kernel/builds/recipes" / recipe_key(tarball, role, flavour)


def _build_dir(cache_dir: Path, tree: Path, purpose: str, config_text: str) -> Path:
    return cache_dir / "kernel/builds" / (f"{fix.tree_version(tree)}-{purpose}-"
                                          f"{config_digest(config_text)}")


def _remember(recipe: Path, out: Path) -> None:
    recipe.parent.mkdir(parents=True, exist_ok=True)
    files.write_atomic(recipe, out.name + "\n", backup=False)


def _store(out: Path, tree: Path, release: str, modules: bool) -> None:
    """Copy a built tree's kernel (and modules) into `out`, complete or not at all."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    if modules:
        run.run(["make", "-C", tree, fix.ARCH, f"INSTALL_MOD_PATH={partial / 'modules'}",
                 "modules_install"])
    shutil.copyfile(tree / "arch/x86/boot/bzImage", partial / "bzImage")
    shutil.copyfile(tree / "System.map", partial / "System.map")
    shutil.copyfile(tree / ".config", partial / "config")
    (partial / "release").write_text(release + "\n")
    os.chmod(partial, 0o755)
    try:
        os.rename(partial, out)
    except OSError:  # built meanwhile from another tree: the same config, keep that one
        shutil.rmtree(partial)


def cached_domu_kernel(cache_dir: Path, **kwargs: Any) -> Path:
    """The lab's PV domU kernel: CACHE/kernel/builds/VERSION-domU-HASH/bzImage."""
    return cached_kernel(cache_dir, Role.DOMU, **kwargs) / "bzImage"


# One guest kernel for every type the lab boots: PV, PVH (XEN_PVH, so ACPI) and HVM (the
# serial console; with the recommended options the PV-on-HVM drivers and PCI).
ALL_TYPES = (GuestType.PV, GuestType.PVH, GuestType.HVM)


def cached_any_type_domu_kernel(cache_dir: Path, **kwargs: Any) -> Path:
    """The lab's domU kernel for PV, PVH and HVM: VERSION-domU-pv-pvh-hvm+-HASH/bzImage."""
    return cached_kernel(cache_dir, Role.DOMU, types=ALL_TYPES, recommended=True,
                         **kwargs) / "bzImage"
