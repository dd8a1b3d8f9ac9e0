"""`xenlfs lab demo`: the whole hint, end to end, with xenlfs's own commands.

Step 0 snapshots a reference LFS-like root; step 4 takes the domU kernel from the lab's
kernel cache, or makes it there with `xenlfs kernel fix --role domU` and `kernel build`;
step 5 prepares the guest partition on a disk image; step 6 writes its xl config. Then the
lab boots Xen and dom0 with that disk, and inside dom0 `xenlfs guest create` starts the
guest, we wait for its login prompt on hvc0, log in, ask the guest about itself, list it
and shut it down.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xenlfs import run, ui
from xenlfs.errors import XenlfsError
from xenlfs.kernel.requirements import DEFAULT_TYPES, GuestType, Role
from xenlfs.lab import hvm, images, instance, kernels, reference
from xenlfs.lab.boot import Disk

log = logging.getLogger("xenlfs.lab")

DOM0_DIR = "/root/xenlfs-demo"


@dataclass(frozen=True)
class DemoOptions:
    cache_dir: Path
    mirror: str
    build: images.BuildOptions
    up: instance.UpOptions
    guest: str = "xenguest1"
    memory_mib: int = 256
    disk_size: str = "2G"
    login_timeout: float = 240.0
    keep_up: bool = False
    guest_type: str = "pv"  # pv (the hint's), pvh or hvm


@dataclass
class DemoReport:
    times: ui.StepTimes = field(default_factory=ui.StepTimes)
    guest_view: dict[str, str] = field(default_factory=dict)
    guest_listed: dict[str, Any] = field(default_factory=dict)
    console_tail: list[str] = field(default_factory=list)
    logs: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    login_seconds: float = 0.0  # xl create → the login prompt
    virtualisation: str = ""  # what Xen offers guests here: HVM with HAP or shadow paging


def xenlfs(*args: str | Path) -> None:
    """Run one of xenlfs's own commands on the host, its output shown to the user.

    Its stdout goes to our stderr, so that `lab demo --json` prints only the report."""
    argv = [sys.executable, "-m", "xenlfs", *map(str, args)]
    log.info("$ xenlfs %s", shlex.join(map(str, args)))
    proc = run.spawn(argv, stdout=sys.stderr)
    proc.wait()
    run.check_finished(proc)


def work_dir(cache_dir: Path) -> Path:
    path = cache_dir / "lab" / "demo"
    path.mkdir(parents=True, exist_ok=True)
    return path


def snapshot_of_reference(cache_dir: Path, mirror: str) -> Path:
    """`snapshot create` of the reference root (cached beside it, per its key)."""
    root = reference.reference_root(cache_dir, mirror)
    archive = work_dir(cache_dir) / f"lfs-snapshot-{root.name.rsplit('-', 1)[-1]}.tar.zst"
    if archive.is_file():
        log.info("snapshot of this reference root already made: %s", archive)
        return archive
    xenlfs("snapshot", "create", "--root", root, archive)
    return archive


def prepare_guest_disk(options: DemoOptions, snapshot: Path, image: Path,
                       kernel: Path) -> None:
    image.unlink(missing_ok=True)
    # HVM boots from the disk: its kernel goes into the guest's /boot, GRUB into the MBR.
    boot: list[str | Path] = ["--boot-kernel", kernel] if options.guest_type == "hvm" else []
    # The xl config that comes with the disk belongs to the lab's dom0 (step 6 writes it
    # there): beside the image, never in this host's /etc/xen.
    xenlfs("guest", "prepare", options.guest, "--snapshot", snapshot,
           "--target", image, "--size", options.disk_size, "--partition-table", "dos",
           "--hostname", options.guest, "--yes", "--type", options.guest_type, *boot,
           "--config-dir", image.parent, "--force")


def kernel_recipe(guest_type: str) -> tuple[tuple[GuestType, ...], bool]:
    """The hint's PV kernel, or the one built for all three types (PVH needs XEN_PVH):
    (the types, with the recommended options or not)."""
    if guest_type == "pv":
        return DEFAULT_TYPES, False
    return kernels.ALL_TYPES, True


def kernel_commands(tree: Path, guest_type: str) -> list[list[str]]:
    """What step 4 runs when the lab's kernel cache has no kernel for `guest_type`."""
    types, recommended = kernel_recipe(guest_type)
    return kernels.verbs(tree, Role.DOMU, types=types, recommended=recommended)


def domu_kernel(options: DemoOptions) -> Path:
    """The lab's domU kernel from its cache; when it is not there, made by xenlfs's own
    `kernel fix` and `kernel build` in Debian's linux-source (about 20 minutes), then kept
    in the same cache (lab/kernels.py)."""
    types, recommended = kernel_recipe(options.guest_type)
    found = kernels.lookup(options.cache_dir, Role.DOMU, types=types, recommended=recommended)
    if found is not None:
        log.info("domU kernel: in the lab's kernel cache, made by kernel fix + kernel build")
        return found / "bzImage"
    with kernels.source_tree(options.cache_dir, Role.DOMU, types=types,
                             recommended=recommended) as tree:
        for argv in kernel_commands(tree, options.guest_type):
            xenlfs(*argv)
        return kernels.keep(options.cache_dir, tree, Role.DOMU, types=types,
                            recommended=recommended) / "bzImage"


def console_key(guest_type: str) -> str:
    """Where in xenstore the guest's login console is: the PV console, or qemu's serial."""
    return "serial/0/tty" if guest_type == "hvm" else "console/tty"


def in_dom0(lab: instance.Lab, env: dict[str, str], *args: str,
            timeout: float = 300.0) -> str:
    """Run xenlfs inside dom0, as a user logged in there would."""
    log.info("dom0$ xenlfs %s", shlex.join(args))
    result = lab.channel.run(["python3", "-m", "xenlfs", *args], env=env, timeout=timeout)
    if result.stderr.strip():
        log.info("%s", result.stderr.rstrip())
    return result.stdout


WAIT_SCRIPT = ("import sys\nfrom xenlfs.lab.guest_console import wait_for_prompt\n"
               "wait_for_prompt(sys.argv[1], float(sys.argv[2]), sys.argv[3])")


def wait_for_login_prompt(lab: instance.Lab, guest: str, timeout: float,
                          guest_type: str = "pv", env: dict[str, str] | None = None) -> float:
    if guest_type == "hvm":  # xenconsoled logs only the PV console: read the serial port
        start = time.monotonic()
        lab.channel.run(["python3", "-c", WAIT_SCRIPT, guest, str(timeout),
                         console_key(guest_type)], env=env, timeout=timeout + 60)
        return time.monotonic() - start
    path = f"/var/log/xen/console/guest-{guest}.log"
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        text = lab.channel.run(["cat", path], check=False, timeout=30).stdout
        if "login:" in text:
            return time.monotonic() - start
        time.sleep(1.0)
    raise XenlfsError(f"guest {guest} showed no login prompt on hvc0 within {timeout:g} s",
                      hint=f"its console log in dom0 is {path}; 'xenlfs lab run -- cat {path}'")


VIEW_SCRIPT = ("import json, sys\nfrom xenlfs.lab.guest_console import guest_view\n"
               "print(json.dumps(guest_view(*sys.argv[1:4], key=sys.argv[4])))")


def demo(options: DemoOptions) -> DemoReport:
    report = DemoReport()
    times = report.times
    work = work_dir(options.cache_dir)
    # Per lab instance: two demos at once (two users, two test runs) never share a disk.
    image = work / options.up.name / f"{options.guest}.img"
    image.parent.mkdir(exist_ok=True)

    with ui.step("step 0: snapshot the reference LFS root", times):
        snapshot = snapshot_of_reference(options.cache_dir, options.mirror)
    with ui.step("step 4: domU kernel ('xenlfs kernel fix --role domU --start tinyconfig"
                 + ("'" if options.guest_type == "pv" else " --type pv,pvh,hvm --recommended'")
                 + " + 'xenlfs kernel build', cached)", times):
        kernel = domu_kernel(options)
        log.info("domU kernel: %s", kernel)
    with ui.step(f"step 5: prepare the {options.guest_type.upper()} guest's disk image", times):
        prepare_guest_disk(options, snapshot, image, kernel)
    with ui.step("lab: build (cached) and boot Xen + dom0 with the guest's disk", times):
        build = hvm.options(options.build) if options.guest_type == "hvm" else options.build
        artefacts = images.build(build)
        up = dataclasses.replace(options.up, disks=(Disk(image, options.guest),))
        lab = instance.up(artefacts, up)
    report.logs["serial log (Xen and dom0)"] = str(lab.spec.serial_log)
    try:
        _in_lab(options, lab, kernel, work, report)
    finally:
        if options.keep_up:
            log.info("the lab stays up: 'xenlfs lab run --instance %s -- xl list'; "
                     "'xenlfs lab down --instance %s' stops it", up.name, up.name)
        else:
            lab.stop()
    return report


def _in_lab(options: DemoOptions, lab: instance.Lab, kernel: Path, work: Path,
            report: DemoReport) -> None:
    times, guest = report.times, options.guest
    env = lab.install_xenlfs()
    report.virtualisation = hvm.virtualisation(lab)
    log.info("Xen in the lab: %s", report.virtualisation)
    kind = options.guest_type
    disk = lab.channel.disk_device(guest)
    console = "ttyS0" if kind == "hvm" else "hvc0"
    with ui.step(f"step 6: write {guest}'s xl config in dom0 ({kind})", times):
        in_dom0(lab, env, "guest", "config", guest, *xl_args(options, lab, kernel, disk),
                "--force")
    with ui.step(f"step 6: xenlfs guest create {guest} (in dom0)", times):
        in_dom0(lab, env, "guest", "create", guest)
    with ui.step(f"wait for the guest's login prompt on {console}", times):
        report.login_seconds = wait_for_login_prompt(lab, guest, options.login_timeout, kind,
                                                     env)
    with ui.step(f"log in on {console} and ask the guest about itself", times):
        result = lab.channel.run(["python3", "-c", VIEW_SCRIPT, guest, "root",
                                  reference.ROOT_PASSWORD, console_key(kind)], env=env,
                                 timeout=300)
        report.guest_view = json.loads(result.stdout)
    with ui.step("xenlfs guest list (in dom0)", times):
        listed = json.loads(in_dom0(lab, env, "guest", "list", "--json"))
        rows = listed if isinstance(listed, list) else listed.get("domains", [])
        report.guest_listed = next((d for d in rows if d.get("name") == guest), {})
    with ui.step(f"xenlfs guest shutdown {guest} --wait (in dom0)", times):
        in_dom0(lab, env, "guest", "shutdown", guest, "--wait")
    if kind == "hvm":  # its console is qemu's serial port, which xenconsoled does not log
        return
    console_log = f"/var/log/xen/console/guest-{guest}.log"
    local_log = work / f"{guest}.console.log"
    lab.channel.pull(console_log, local_log)
    report.logs["guest console log"] = str(local_log)
    report.console_tail = local_log.read_text(errors="replace").splitlines()[-25:]


def xl_args(options: DemoOptions, lab: instance.Lab, kernel: Path, disk: str) -> list[str]:
    """`guest config` arguments in dom0: the disk as dom0 sees it (virtio), by type."""
    memory = ["--memory", str(options.memory_mib)]
    if options.guest_type == "hvm":  # the whole disk: SeaBIOS boots GRUB from its MBR;
        # type=vif: PV network only, no emulated NIC and so no tap device for it.
        return ["--type", "hvm", *memory, "--disk", f"phy:{disk},xvda,w",
                "--vif", "bridge=xenbr0,type=vif"]
    dom0_kernel = f"{DOM0_DIR}/vmlinuz-xen-domU"
    lab.channel.push(kernel, dom0_kernel)
    return ["--type", options.guest_type, "--kernel", dom0_kernel, *memory,
            "--disk", f"phy:{disk}1,xvda1,w", "--vif", "bridge=xenbr0",
            "--root", "/dev/xvda1 ro", "--extra", "console=hvc0"]


def check(report: DemoReport, options: DemoOptions) -> list[str]:
    """What the guest reported that does not match what the hint promises; empty when all do."""
    view, problems = report.guest_view, []
    if view.get("hypervisor") != "xen":
        problems.append(f"/sys/hypervisor/type is {view.get('hypervisor')!r}, not 'xen'")
    if not view.get("root_device") or view.get("root_device") != view.get("xvda1_device"):
        problems.append(f"root is device {view.get('root_device')!r} ({view.get('root')!r}), "
                        f"not xvda1 ({view.get('xvda1_device')!r})")
    wanted = {"pv": "PV", "pvh": "PVH", "hvm": "HVM"}[options.guest_type]
    if view.get("guest_type") != wanted:
        problems.append(f"/sys/hypervisor/guest_type is {view.get('guest_type')!r}, not "
                        f"{wanted!r}")
    memory_mib = int(view.get("memory_kib") or 0) // 1024
    # MemTotal is what is left after the kernel's own reservations: within 20% of memory=.
    if not 0.8 * options.memory_mib <= memory_mib <= options.memory_mib:
        problems.append(f"the guest sees {memory_mib} MiB, configured {options.memory_mib} MiB")
    return problems
