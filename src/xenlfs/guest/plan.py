"""The hint's step 5 inside the extracted tree: a plan of edits computed from what is there
(reading only, through the confined GuestRoot), then applied in one place.

The plan is a list of actions, each small and named after the hint's line it stands for,
plus notes on what was not done and why."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field

from xenlfs import files
from xenlfs.guest import detect, edits
from xenlfs.guest.rootfs import GuestPathError, GuestRoot, Node


@dataclass(frozen=True)
class GuestOptions:
    name: str
    hostname: str
    root_device: str = "/dev/xvda1"
    swap_device: str | None = None
    iface: str = "eth0"
    network: edits.Network = field(default_factory=edits.Network)
    root_password_hash: str | None = None
    ssh_key: str | None = None
    console: str = "hvc0"


@dataclass(frozen=True)
class Mkdir:
    path: str
    mode: int

    def describe(self) -> str:
        return f"mkdir -m {self.mode:o} {self.path}"

    def apply(self, root: GuestRoot) -> None:
        root.mkdir(self.path, self.mode)


@dataclass(frozen=True)
class Symlink:
    path: str
    target: str
    replace: bool = False  # an empty directory or a wrong link is there

    def describe(self) -> str:
        return f"ln -s{'f' if self.replace else ''} {self.target} {self.path}"

    def apply(self, root: GuestRoot) -> None:
        if self.replace:
            root.remove(self.path)
        root.symlink(self.path, self.target)


@dataclass(frozen=True)
class CharDevice:
    path: str
    mode: int
    major: int
    minor: int
    replace: bool = False

    def describe(self) -> str:
        return f"mknod -m {self.mode:o} {self.path} c {self.major} {self.minor}"

    def apply(self, root: GuestRoot) -> None:
        if self.replace:
            root.remove(self.path)
        root.mknod(self.path, self.mode, self.major, self.minor)


@dataclass(frozen=True)
class WriteFile:
    path: str
    old: str | None
    new: str
    mode: int = 0o644
    why: str = ""

    def describe(self) -> str:
        return f"{'edit' if self.old is not None else 'write'} {self.path}" + \
            (f" ({self.why})" if self.why else "")

    def diff(self) -> str:
        return files.unified_diff(self.path, self.old, self.new)

    def apply(self, root: GuestRoot) -> None:
        root.write_text(self.path, self.new, mode=self.mode)


Action = Mkdir | Symlink | CharDevice | WriteFile


@dataclass
class Plan:
    system: detect.System
    actions: list[Action] = field(default_factory=list)
    done: list[str] = field(default_factory=list)  # edits already in place
    skipped: list[str] = field(default_factory=list)  # edits not made, with the reason
    problems: list[str] = field(default_factory=list)  # paths the guest cannot resolve

    def diffs(self) -> list[str]:
        return [a.diff() for a in self.actions if isinstance(a, WriteFile)]


# The hint's `mkdir -pv {dev,proc,sys,run} mnt media/{floppy,cdrom}`, `install -dv -m 1777
# tmp` and `mkdir -v boot` (boot stays empty: Xen loads the domU kernel from dom0).
DIRECTORIES = (("/dev", 0o755), ("/proc", 0o555), ("/sys", 0o555), ("/run", 0o755),
               ("/mnt", 0o755), ("/media/floppy", 0o755), ("/media/cdrom", 0o755),
               ("/tmp", 0o1777), ("/boot", 0o755))
# The hint writes `ln -sv run var/run`, which from var/ points at itself; LFS's book links
# to /run and /run/lock, which is what the guest needs.
LINKS = (("/var/run", "/run"), ("/var/lock", "/run/lock"))
NODES = (("/dev/console", 0o600, 5, 1), ("/dev/null", 0o666, 1, 3))


def _node(root: GuestRoot, plan: Plan, path: str, *, follow: bool = True) -> Node | None:
    try:
        return root.node(path, follow=follow)
    except GuestPathError as e:
        plan.problems.append(f"{path}: {e.message}; not changed")
        return None


def plan_directories(root: GuestRoot, plan: Plan) -> None:
    for path, mode in DIRECTORIES:
        node = _node(root, plan, path)
        if node is None:
            continue
        if node.kind == "dir":
            if node.st is not None and stat.S_IMODE(node.st.st_mode) == mode:
                plan.done.append(f"{path} exists (mode {mode:o})")
            else:
                plan.actions.append(Mkdir(path, mode))
        elif node.st is None:
            plan.actions.append(Mkdir(path, mode))
        else:
            plan.skipped.append(f"{path}: is a {node.kind}, not a directory; left alone")


def plan_links(root: GuestRoot, plan: Plan) -> None:
    for path, target in LINKS:
        here = _node(root, plan, path, follow=False)
        if here is None:
            continue
        if here.kind == "symlink":
            try:
                points_to = root.resolve(path)
            except GuestPathError:
                points_to = ""
            if points_to == target:
                plan.done.append(f"{path} -> {root.readlink(path)}")
            else:
                plan.actions.append(Symlink(path, target, replace=True))
        elif here.st is None:
            plan.actions.append(Symlink(path, target))
        elif here.kind == "dir" and not root.listdir(path):
            plan.actions.append(Symlink(path, target, replace=True))
        else:
            plan.skipped.append(f"{path} -> {target}: {path} is a non-empty {here.kind}; "
                                "left alone (move its contents to /run and link it by hand)")


def plan_nodes(root: GuestRoot, plan: Plan) -> None:
    for path, mode, major, minor in NODES:
        node = _node(root, plan, path, follow=False)
        if node is None:
            continue
        st = node.st
        if st is not None and node.kind == "char" and stat.S_IMODE(st.st_mode) == mode \
                and (os.major(st.st_rdev), os.minor(st.st_rdev)) == (major, minor):
            plan.done.append(f"{path} is c {major} {minor} mode {mode:o}")
        elif st is not None and node.kind == "dir":
            plan.skipped.append(f"{path} is a directory; left alone")
        else:
            plan.actions.append(CharDevice(path, mode, major, minor, replace=st is not None))


def plan_file(root: GuestRoot, plan: Plan, path: str, edit: Callable[[str | None], str], *,
              mode: int = 0o644, why: str = "") -> None:
    """Plan one file edit: read what the guest sees at `path`, compute the new text."""
    try:
        old = root.read_text(path)
    except GuestPathError as e:
        plan.problems.append(f"{path}: {e.message}; not edited")
        return
    except UnicodeDecodeError:
        old = None
    folder = root.resolve(path, follow=False).rsplit("/", 1)[0] or "/"
    planned = {a.path for a in plan.actions if isinstance(a, Mkdir)}
    if root.node(folder).kind != "dir" and folder not in planned:
        plan.problems.append(f"{path}: its directory is {folder} in the guest, which does "
                             "not exist; not edited")
        return
    new = edit(old)
    linked = root.node(path, follow=False).kind == "symlink"
    if new == old and not linked:
        plan.done.append(f"{path} already as needed")
        return
    note = why + ("; it was a symlink to " + root.readlink(path) + ", now a file"
                  if linked else "")
    plan.actions.append(WriteFile(path, old, new, mode, note.lstrip("; ")))


def plan_edits(root: GuestRoot, opts: GuestOptions, *, fstype: str = "ext4") -> Plan:
    """Every step-5 edit this guest needs, and what is not done and why. `fstype`: the
    filesystem the guest's root is on — a fact found on the target (or made there), kept
    apart from what the user asked for."""
    system = detect.detect(root)
    plan = Plan(system)
    for step in (plan_directories, plan_links, plan_nodes):
        step(root, plan)
    plan_file(root, plan, "/etc/fstab",
              lambda t: edits.fstab(t, root=opts.root_device, fstype=fstype,
                                    swap=opts.swap_device), why="root on the guest's disk")
    if system.has_inittab:
        plan_file(root, plan, "/etc/inittab",
                  lambda t: edits.inittab(t or "", console=opts.console),
                  why=f"a getty on {opts.console}")
    else:
        plan.skipped.append(f"/etc/inittab: {system.init} guest ({system.evidence}); not "
                            "edited" + (f" — systemd starts a getty on {opts.console} by "
                                        "itself when it is the kernel's console"
                                        if system.init == detect.SYSTEMD else ""))
    if system.init == detect.LFS:
        plan_file(root, plan, f"/etc/sysconfig/ifconfig.{opts.iface}",
                  lambda t: edits.ifconfig(t or _first_ifconfig(root, opts.iface),
                                           iface=opts.iface, network=opts.network),
                  why=f"interface {opts.iface}")
    else:
        plan.skipped.append(f"network: not an LFS-bootscripts guest ({system.evidence}); "
                            f"configure {opts.iface} in its own way")
    plan_file(root, plan, "/etc/hostname", lambda _t: edits.hostname(opts.hostname))
    plan_file(root, plan, "/etc/hosts", lambda t: edits.hosts(t, opts.hostname))
    if opts.root_password_hash:
        hash_ = opts.root_password_hash
        plan_file(root, plan, "/etc/shadow", lambda t: edits.shadow_root(t, hash_),
                  mode=0o600, why="root's password")
    if opts.ssh_key:
        key = opts.ssh_key
        ssh = _node(root, plan, "/root/.ssh")
        if ssh is not None and ssh.kind != "dir":
            plan.actions.append(Mkdir("/root/.ssh", 0o700))
        plan_file(root, plan, "/root/.ssh/authorized_keys",
                  lambda t: edits.authorized_keys(t, key), mode=0o600, why="root's SSH key")
    return plan


def _first_ifconfig(root: GuestRoot, iface: str) -> str | None:
    """The host's own ifconfig.* (e.g. ifconfig.enp3s0) as a base for the guest's."""
    for name in root.listdir("/etc/sysconfig"):
        if name.startswith("ifconfig.") and name != f"ifconfig.{iface}":
            try:
                return root.read_text(f"/etc/sysconfig/{name}")
            except GuestPathError:
                continue
    return None


def apply(root: GuestRoot, plan: Plan) -> None:
    for action in plan.actions:
        action.apply(root)
