"""Step 4: start Xen's daemons at boot the LFS way, and check dom0 is really running on Xen.

LFS boots with SysV init: a script in /etc/rc.d/init.d using /lib/lsb/init-functions, started
and stopped through S/K symlinks in /etc/rc.d/rcN.d. Xen's own xencommons script is written
for other distributions; this one does the same work (kernel modules, xenfs, xenstored,
xen-init-dom0, xenconsoled) in the LFS bootscript style.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from xenlfs import files, run
from xenlfs.errors import PreconditionError

NAME = "xencommons"
# After the network (S20 in LFS), before services that may use xl; stopped early.
START_LEVELS, STOP_LEVELS = (3, 4, 5), (0, 1, 2, 6)
START_ORDER, STOP_ORDER = 25, 15

SCRIPT = """\
#!/bin/sh
########################################################################
# Begin xencommons
#
# Description : Xen's dom0 daemons: xenstored, xen-init-dom0, xenconsoled
#
# Notes       : Written by 'xenlfs service install'. Xen's own xencommons
#               does the same for other distributions.
#
########################################################################

### BEGIN INIT INFO
# Provides:            xencommons
# Required-Start:      $local_fs
# Should-Start:        $network
# Required-Stop:       $local_fs
# Should-Stop:
# Default-Start:       {start}
# Default-Stop:        {stop}
# Short-Description:   Starts Xen's xenstored and xenconsoled in dom0
# Description:         Loads the Xen kernel modules, mounts xenfs, starts
#                      xenstored, initialises dom0 and starts xenconsoled.
# X-LFS-Provided-By:   xenlfs
### END INIT INFO

. /lib/lsb/init-functions

XENSTORED={prefix}/sbin/xenstored
XENCONSOLED={prefix}/sbin/xenconsoled
XEN_INIT_DOM0={prefix}/lib/xen/bin/xen-init-dom0
RUNDIR=/run/xen

# Some are built into a kernel; a missing module is not an error.
MODULES="xen-evtchn xen-gntdev xen-gntalloc xen-blkback xen-netback xen-pciback"

case "${{1}}" in
   start)
      for m in xenfs ${{MODULES}}; do modprobe -q "${{m}}" 2>/dev/null; done
      if ! grep -q control_d /proc/xen/capabilities 2>/dev/null; then
         mountpoint -q /proc/xen || mount -t xenfs xenfs /proc/xen
      fi
      if ! grep -q control_d /proc/xen/capabilities 2>/dev/null; then
         log_failure_msg "Not running as Xen dom0 (no control_d in /proc/xen/capabilities)"
         exit 1
      fi
      mkdir -p "${{RUNDIR}}" /var/log/xen /var/lib/xenstored

      log_info_msg "Starting xenstored..."
      if pidofproc -p "${{RUNDIR}}/xenstored.pid" "${{XENSTORED}}" >/dev/null; then
         log_success_msg2 "already running"
      else
         "${{XENSTORED}}" --pid-file "${{RUNDIR}}/xenstored.pid"
         evaluate_retval
         # xen-init-dom0 writes dom0's entries into the store.
         log_info_msg "Setting domain 0 name, domid and JSON config..."
         "${{XEN_INIT_DOM0}}" >/dev/null
         evaluate_retval
      fi

      log_info_msg "Starting xenconsoled..."
      start_daemon -p "${{RUNDIR}}/xenconsoled.pid" "${{XENCONSOLED}}" \\
         --pid-file="${{RUNDIR}}/xenconsoled.pid"
      evaluate_retval
      ;;

   stop)
      log_info_msg "Stopping xenconsoled..."
      killproc -p "${{RUNDIR}}/xenconsoled.pid" "${{XENCONSOLED}}"
      evaluate_retval
      # Like Xen's own script: xenstored cannot be restarted safely while domains
      # run, so it is left running until the machine halts.
      ;;

   restart)
      ${{0}} stop
      sleep 1
      ${{0}} start
      ;;

   status)
      statusproc -p "${{RUNDIR}}/xenstored.pid" "${{XENSTORED}}"
      statusproc -p "${{RUNDIR}}/xenconsoled.pid" "${{XENCONSOLED}}"
      ;;

   *)
      echo "Usage: ${{0}} {{start|stop|restart|status}}"
      exit 1
      ;;
esac

exit 0

# End xencommons
"""


@dataclass(frozen=True)
class Plan:
    """The bootscript to write and the rcN.d links to make, under a root directory."""

    script: Path
    text: str
    links: tuple[tuple[Path, str], ...]


def render(prefix: Path) -> str:
    return SCRIPT.format(prefix=prefix, start=" ".join(map(str, START_LEVELS)),
                         stop=" ".join(map(str, STOP_LEVELS)))


def plan_install(root: Path, prefix: Path) -> Plan:
    rc = root / "etc/rc.d"
    if not (rc / "init.d").is_dir():
        raise PreconditionError(f"{rc / 'init.d'} does not exist: this is not an LFS bootscript "
                                "tree", hint="install LFS-Bootscripts (LFS book, chapter 9), or "
                                "give --root the LFS system's top directory")
    links = [(rc / f"rc{n}.d" / f"S{START_ORDER}{NAME}", f"../init.d/{NAME}")
             for n in START_LEVELS]
    links += [(rc / f"rc{n}.d" / f"K{STOP_ORDER}{NAME}", f"../init.d/{NAME}")
              for n in STOP_LEVELS]
    return Plan(rc / "init.d" / NAME, render(prefix), tuple(links))


def pending(plan: Plan) -> tuple[files.FileChange | None, list[tuple[Path, str]]]:
    """What is not yet in place: the script's change if its text differs, the links."""
    script = files.FileChange.to(plan.script, plan.text, what="a bootscript", mode=0o755)
    links = [(link, target) for link, target in plan.links
             if not (link.is_symlink() and os.readlink(link) == target)]
    return script if script.needed else None, links


def apply_install(plan: Plan) -> None:
    try:
        _apply(plan)
    except PermissionError as e:
        raise PreconditionError(f"cannot write {e.filename}: {e.strerror}",
                                hint="run as root") from e


def _apply(plan: Plan) -> None:
    script, links = pending(plan)
    if script is not None:
        script.apply()
    for link, target in links:
        if run.dry_run():
            continue
        link.parent.mkdir(exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str


def running(proc: Path, names: tuple[str, ...]) -> list[int]:
    """Pids whose command name is one of `names` (read from /proc, no ps needed)."""
    pids = []
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                comm = (entry / "comm").read_text().strip()
            except OSError:
                continue  # the process ended while we looked
            if comm in names:
                pids.append(int(entry.name))
    return sorted(pids)


def status(proc: Path = Path("/proc")) -> list[Check]:
    """Is this dom0 on Xen, with Xen's daemons running? One check per thing the hint asks."""
    caps_file = proc / "xen/capabilities"
    try:
        caps = caps_file.read_text().split()
    except OSError:
        caps = None
    checks = [Check(
        "control_d", caps is not None and "control_d" in caps,
        f"{caps_file}: {' '.join(caps) or '(empty)'}" if caps is not None else
        f"{caps_file} does not exist",
        "boot the Xen entry ('xenlfs grub add'), and build the dom0 kernel with CONFIG_XEN_DOM0 "
        "and CONFIG_XENFS; then mount xenfs: 'mount -t xenfs xenfs /proc/xen' (xencommons "
        "does this)")]
    for daemon, names in (("xenstored", ("xenstored", "oxenstored", "cxenstored")),
                          ("xenconsoled", ("xenconsoled",))):
        pids = running(proc, names)
        checks.append(Check(daemon, bool(pids),
                            f"running, pid {', '.join(map(str, pids))}" if pids else "not running",
                            f"/etc/rc.d/init.d/{NAME} start (install it with "
                            "'xenlfs service install'); see /var/log/xen/ if it fails"))
    return checks
