"""Xen itself (hint step 3): ./configure, the gthread fix only when needed, make, install.

`make world` is `make clean` + `make dist`; we run `make dist` so that running the build
again after a failure continues where it stopped instead of starting over. `make dist`
installs everything into dist/install, which is then copied into place (DESTDIR or /).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from xenlfs import files, run
from xenlfs.errors import PreconditionError
from xenlfs.recipes.recipe import Options, Phase, Recipe

# tools/Makefile runs QEMU's configure with PKG_CONFIG_PATH=$(XEN_ROOT)/tools/pkg-config…;
# older releases (the hint's 4.9) dropped the user's own PKG_CONFIG_PATH there, so a GLib
# that pkg-config finds only through it is not found and gthread-2.0's check fails.
_ASSIGNMENT = re.compile(r"PKG_CONFIG_PATH=(\$\(XEN_ROOT\)/tools/pkg-config\S*)")
_USER_PATH = re.compile(r"\$\$\{PKG_CONFIG_PATH:\+:\$\$\{PKG_CONFIG_PATH\}\}"
                        r"|\$\$\{?PKG_CONFIG_PATH\}?")


@dataclass(frozen=True)
class GthreadCheck:
    needed: bool
    why: str
    pcdir: str | None = None       # where the user's gthread-2.0.pc is


def effective_path(value: str, xen_root: Path, user_path: str) -> str:
    """PKG_CONFIG_PATH as the shell running the Makefile's recipe would see it."""
    value = value.replace("$(XEN_ROOT)", str(xen_root))
    return _USER_PATH.sub(lambda m: (":" if ":+:" in m[0] else "") + user_path
                          if user_path else "", value)


def _finds_gthread(env: Mapping[str, str]) -> bool:
    return run.run(["pkg-config", "--exists", "gthread-2.0"], check=False,
                   env=dict(env)).returncode == 0


def check_gthread(makefile: Path, env: Mapping[str, str] | None = None) -> GthreadCheck:
    """Does the generated tools/Makefile hide GLib's gthread-2.0 from pkg-config?"""
    env = dict(os.environ if env is None else env)
    user_path = env.get("PKG_CONFIG_PATH", "")
    values = _ASSIGNMENT.findall(makefile.read_text())
    if not values:
        return GthreadCheck(False, f"{makefile} does not set PKG_CONFIG_PATH")
    pcdir = run.run(["pkg-config", "--variable=pcfiledir", "gthread-2.0"], check=False,
                    env=env).stdout.strip() or None
    if pcdir is None:
        raise PreconditionError("pkg-config does not find GLib's gthread-2.0",
                                hint="install GLib (BLFS book 'GLib'; on Debian: apt-get "
                                "install libglib2.0-dev), then run this again")
    xen_root = makefile.parent.parent
    for value in values:
        if not _finds_gthread(env | {"PKG_CONFIG_PATH": effective_path(value, xen_root,
                                                                         user_path)}):
            return GthreadCheck(True, f"with {makefile}'s PKG_CONFIG_PATH, pkg-config does "
                                f"not find gthread-2.0 (it is in {pcdir})", pcdir)
    return GthreadCheck(False, f"pkg-config finds gthread-2.0 with {makefile.name}'s "
                        "PKG_CONFIG_PATH", pcdir)


def fix_gthread(text: str, pcdir: str) -> str:
    """The hint's sed, with the directory GLib's .pc files really are in."""
    return _ASSIGNMENT.sub(lambda m: f"PKG_CONFIG_PATH={m[1]}:{pcdir}", text)


def gthread_phase(tree: Path, note: Callable[[str], None]) -> str:
    makefile = tree / "tools/Makefile"
    if not makefile.is_file():
        return "no tools/Makefile: nothing to check for gthread"
    found = check_gthread(makefile)
    note(found.why)
    if not found.needed:
        return f"gthread fix not needed: {found.why}"
    assert found.pcdir is not None
    files.write_atomic(makefile, fix_gthread(makefile.read_text(), found.pcdir))
    return f"applied the gthread fix to {makefile}: {found.why}"


def builds_qemu(options: Options) -> bool:
    """Only QEMU's configure (run by the tools' build) checks gthread."""
    tools = any(t in ("dist", "world", "dist-tools", "tools", "install-tools", "install")
                for t in options.targets or ("dist",))
    return tools and not any(a in ("--disable-tools", "--with-system-qemu") or
                             a.startswith("--with-system-qemu=") for a in options.extra)


def from_deps(options: Options) -> tuple[str, ...]:
    """configure's variables that make the build take libyajl's and libaio's headers and
    libraries, and iasl, from the --deps tree first (Xen's own PREPEND_INCLUDES/_LIB)."""
    if options.deps is None:
        return ()
    usr = options.deps / str(options.prefix).strip("/")
    return (f"PREPEND_INCLUDES={usr}/include", f"PREPEND_LIB={usr}/lib", f"IASL={usr}/bin/iasl")


def phases(options: Options) -> list[Phase]:
    targets = options.targets or ("dist",)
    return [
        Phase("configure", (("./configure", f"--prefix={options.prefix}", *options.extra,
                             *from_deps(options)),)),
        *([Phase("gthread check", action=gthread_phase)] if builds_qemu(options) else []),
        Phase(f"make {' '.join(targets)}", (("make", f"-j{options.jobs}", *targets),)),
    ]


@dataclass(frozen=True)
class Dist:
    xen_gz: Path | None
    tools: list[str]
    libraries: int

    def as_dict(self) -> dict[str, object]:
        return {"xen_gz": str(self.xen_gz) if self.xen_gz else None, "tools": self.tools,
                "libraries": self.libraries}


def summarise(tree: Path, prefix: Path) -> Dist:
    """What `make dist` produced under dist/install."""
    install = tree / "dist/install"
    boot = install / "boot/xen.gz"
    root = install / str(prefix).strip("/")
    tools = sorted(p.name for d in ("sbin", "bin") if (root / d).is_dir()
                   for p in (root / d).iterdir())
    libs = len(list((root / "lib").glob("lib*.so.*"))) if (root / "lib").is_dir() else 0
    return Dist(boot.resolve() if boot.exists() else None, tools, libs)


RECIPE = Recipe(
    name="xen",
    summary="the Xen hypervisor (xen.gz) and its tools (xl, libxl, xenstored)",
    debian_source="xen",
    phases=phases,
    installs=("boot/xen.gz",),
    stage=lambda tree, work: tree / "dist/install",
    needs=("{prefix}/include/yajl/yajl_version.h", "{prefix}/lib/libyajl.so",
           "{prefix}/include/libaio.h", "{prefix}/lib/libaio.so", "{prefix}/bin/iasl"),
)
