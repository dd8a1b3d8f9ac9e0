"""The rehearsal-only probe: a bootscript, in the copy only, started last in the default
runlevel. It reports from inside dom0 on the console, one `xenlfs-rehearse:` line per fact
(xenstored, control_d, xl list, the bridges), then starts each guest with `xl create` and
watches its console for the login prompt. It changes nothing but starting the guests.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

NAME = "xenlfs-rehearse"
LOGIN_WAIT = 240  # seconds the probe watches each guest's console

SCRIPT = """\
#!/bin/sh
# xenlfs rehearse: a rehearsal-only probe, in the throwaway copy only (never on the host).
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
BRIDGES={bridges}
GUESTS={guests}
say() {{ echo "xenlfs-rehearse: $*"; }}
[ "$1" = start ] || exit 0
say "probe starts"
running() {{ for n in "$@"; do pidof "$n" >/dev/null 2>&1 && return 0; done; return 1; }}
if running xenstored oxenstored cxenstored; then
   say "xenstored: running"
elif ls /etc/rc.d/rc?.d/S*xencommons /etc/rc?.d/S*xencommons >/dev/null 2>&1; then
   say "xenstored: not running (xencommons is installed and enabled)"
else
   say "xenstored: not running (xencommons is not installed)"
fi
running xenconsoled && say "xenconsoled: running" || say "xenconsoled: not running"
caps=$(cat /proc/xen/capabilities 2>/dev/null)
case "$caps" in
   *control_d*) say "control_d: yes" ;;
   *) say "control_d: no (/proc/xen/capabilities: ${{caps:-missing}})" ;;
esac
if out=$(timeout 60 xl list 2>&1); then
   say "xl list: ok"
   echo "$out" | sed 's/^/xenlfs-rehearse:   /'
else
   say "xl list: failed: $(echo "$out" | tail -n 2 | tr '\\n' ' ')"
fi
for br in $BRIDGES; do
   if [ -d "/sys/class/net/$br/bridge" ]; then
      ports=$(ls "/sys/class/net/$br/brif" 2>/dev/null | tr '\\n' ' ')
      say "bridge $br: state $(cat /sys/class/net/$br/operstate), ports: ${{ports:-none}}"
      if [ -n "$ports" ]; then say "bridge $br: ok"; else say "bridge $br: no ports"; fi
   else
      say "bridge $br: missing"
   fi
done
for guest in $GUESTS; do
   name=${{guest%%:*}}; cfg=${{guest#*:}}; file_disk=no
   # The disks the config names (target=, phy:, file:), as dom0 sees them.
   for disk in $(grep -v '^[[:space:]]*#' "$cfg" | grep -o -e 'target=[^,"]*' \\
         -e 'phy:[^,"]*' -e 'file:[^,"]*' | sed 's/^[a-z]*[=:]//'); do
      [ -e "$disk" ] || say "guest $name: disk missing: $disk"
      [ -f "$disk" ] && file_disk=yes
   done
   if ! xl domid "$name" >/dev/null 2>&1; then
      if ! out=$(timeout 120 xl create "$cfg" 2>&1); then
         if [ "$file_disk" = yes ] && [ ! -d /sys/module/loop ]; then
            say "guest $name: the loop module is not loaded"
         fi
         tail -n 5 /var/log/xen/xen-hotplug.log 2>/dev/null \\
            | sed "s/^/xenlfs-rehearse: guest $name hotplug: /"
         say "guest $name: xl create failed: $(echo "$out" | grep -v '^Parsing config' \\
            | tail -n 4 | tr '\\n' ' ')"
         continue
      fi
   fi
   say "guest $name: created"
   domid=$(xl domid "$name")
   tty=$(xenstore-read "/local/domain/$domid/console/tty" 2>/dev/null)
   log=/run/xenlfs-rehearse-$name.log
   : > "$log"
   if [ -n "$tty" ]; then
      stty -F "$tty" raw -echo 2>/dev/null
      timeout {wait} cat "$tty" > "$log" 2>/dev/null &
   fi
   waited=0
   while [ $waited -lt {wait} ] && ! grep -q "login:" "$log"; do
      sleep 1; waited=$((waited + 1))
   done
   if grep -q "login:" "$log"; then
      say "guest $name: login prompt after $waited s"
   else
      say "guest $name: no login prompt within {wait} s (console: ${{tty:-none}})"
      tail -n 8 "$log" | tr -d '\\r' | sed "s/^/xenlfs-rehearse: guest $name console: /"
   fi
done
say "probe done"
exit 0
"""


@dataclass(frozen=True)
class Guest:
    name: str
    config: str  # its path in dom0
    bridges: tuple[str, ...]


def guest_from_config(text: str, path: str) -> Guest:
    """The name and bridges of an xl config (the few keys the probe needs)."""
    name = re.search(r"^\s*name\s*=\s*[\"']([^\"']+)[\"']", text, re.MULTILINE)
    bridges = tuple(dict.fromkeys(re.findall(r"bridge\s*=\s*([A-Za-z0-9_.-]+)", text)))
    return Guest(name[1] if name else Path(path).name.removesuffix(".cfg"), path, bridges)


def render(bridges: list[str], guests: list[Guest], wait: int = LOGIN_WAIT) -> str:
    return SCRIPT.format(bridges=shlex.quote(" ".join(bridges)),
                         guests=shlex.quote(" ".join(f"{g.name}:{g.config}" for g in guests)),
                         wait=wait)


def runlevel(inittab: str | None) -> str:
    match = re.search(r"^[^#:]*:(\d):initdefault:", inittab or "", re.MULTILINE)
    return match[1] if match else "3"


DEPEND_START = "etc/init.d/.depend.start"


def started_last(depend: str) -> str | None:
    """Debian's sysv-rc with insserv starts only the scripts its makefile-style
    /etc/init.d/.depend.start lists (startpar runs them): the probe becomes one more target,
    after all the others, with the console. None when the text is not such a file, or
    lists the probe already."""
    lines = depend.splitlines()
    index = next((i for i, line in enumerate(lines) if line.startswith("TARGETS =")), None)
    if index is None:
        return None
    targets = lines[index].split("=", 1)[1].split()
    if NAME in targets:
        return None
    lines[index] = " ".join(["TARGETS =", *targets, NAME])
    # INTERACTIVE: startpar gives it the console at once (it holds back the others' output
    # until they end, and the probe waits minutes for the guests' login prompts).
    shown = next((i for i, line in enumerate(lines) if line.startswith("INTERACTIVE =")), None)
    if shown is None:
        lines.insert(index + 1, f"INTERACTIVE = {NAME}")
    else:
        lines[shown] = lines[shown].rstrip() + f" {NAME}"
    return "\n".join([*lines, f"{NAME}: {' '.join(targets)}"]) + "\n"


def places(tree_has_lfs_rc: bool, level: str) -> tuple[str, str, str]:
    """(script path, start link path, link target) in the copy: LFS's rc.d or Debian's."""
    if tree_has_lfs_rc:
        return (f"etc/rc.d/init.d/{NAME}", f"etc/rc.d/rc{level}.d/S99{NAME}",
                f"../init.d/{NAME}")
    return f"etc/init.d/{NAME}", f"etc/rc{level}.d/S99{NAME}", f"../init.d/{NAME}"
