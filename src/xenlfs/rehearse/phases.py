"""The boot's phases as one table: what proves each on the serial console, what shows it
failed, and the fix as a command. A failure users meet that is not here is one new row.

A phase passes when its proof is seen, or when a later phase's is (a kernel booted with
`quiet` prints no banner, yet init running proves it ran). It fails when one of its failure
patterns is seen first, or when its deadline (seconds after the phase before) passes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78]|\r|\x00")

PROBE = "xenlfs-rehearse:"


def clean(text: str) -> str:
    """The serial log without terminal escapes (LFS's coloured OK/FAIL, GRUB's cursor)."""
    return _ANSI.sub("", text)


@dataclass(frozen=True)
class Failure:
    pattern: str  # a regex; its named groups fill the diagnosis and the fix
    diagnosis: str
    fix: str
    generic: bool = False  # a more specific row wins when both match the same line
    when: str | None = None  # only with this context flag set (e.g. "boot_separate")


@dataclass(frozen=True)
class Phase:
    key: str
    name: str
    proof: str
    deadline: float
    timeout: tuple[str, str]  # (diagnosis, fix) when the deadline passes
    failures: tuple[Failure, ...] = field(default=())


KERNEL_CHECK = "xenlfs kernel check --role dom0 --config /boot/config-$(uname -r)"
# GRUB's multiboot loader asks the video BIOS for modes; the rehearsal's machine has no video
# card, so it says this just before Xen starts, and boots on.
GRUB_NO_VIDEO = r"Can't get controller info"
# LFS's init-functions on a terminal: "      Message...  *  [  OK  ]" (colours stripped);
# "*****" before a FAIL.
_RESULT = r"(?m)^[ \t]*(?P<what>[^\n\[]*?)[ \t.*]*\[ *(?P<status>{}) *\]"
FAIL_LINE = _RESULT.format("FAIL")
RESULT_LINE = _RESULT.format("OK|FAIL|WARN|SKIP")
# The kernel's and Xen's own lines share the console with the bootscripts, and land in the
# middle of a message that LFS prints in pieces ("Mounting virtual file systems: /run" ...
# "[  113.0] random: crng init done" ... " /sys/fs/cgroup  [ OK ]").
_INTERLEAVED = re.compile(r"(?:\[ *\d+\.\d+\]|\(XEN\)) [^\n]*\n")


def base_phases() -> list[Phase]:
    return [
        Phase("grub", "GRUB runs the entry", rf"{PROBE} GRUB runs the entry", 90,
              ("GRUB did not run the rehearsed entry", "see the serial log: grub.cfg did not "
               "parse, or GRUB stopped before its menu"),
              (Failure(r"error: (?P<what>[^\n]+)", "GRUB: {what}",
                       "grub-script-check /boot/grub/grub.cfg", generic=True),)),
        Phase("xen", "Xen starts", r"\(XEN\) Xen version \d", 90,
              ("GRUB ran the entry but Xen never printed its banner",
               "is the entry's multiboot file Xen's xen.gz? xenlfs grub list"),
              (Failure(r"error: file [`'](?P<path>/boot/[^'\s]+)' not found",
                       "GRUB: file '{path}' not found — /boot is a separate partition, so GRUB "
                       "sees that file as '{grub_path}'",
                       "xenlfs grub add --xen {path} --kernel … (it writes paths as GRUB sees "
                       "them), or write '{grub_path}' in the entry", when="boot_separate"),
               Failure(r"error: file [`'](?P<path>[^'\s]+)' not found",
                       "GRUB: file '{path}' not found on the filesystem GRUB reads the entry from",
                       "ls /boot; xenlfs grub add --xen /boot/xen.gz --kernel … writes the "
                       "paths as GRUB sees them"),
               Failure(r"error: (?P<what>no multiboot header found|invalid arch[^\n]*|"
                       r"unsupported[^\n]*|invalid magic number)",
                       "GRUB: {what} — the entry's multiboot file is not a Xen image GRUB can load"
                       " (a gzipped xen.gz needs 'insmod gzio' in the entry)",
                       "xenlfs grub add --xen /boot/xen.gz --kernel … (or add 'insmod gzio')"),
               Failure(rf"error: (?!{GRUB_NO_VIDEO})(?P<what>[^\n]+)", "GRUB: {what}",
                       "xenlfs grub list; fix the entry's lines in grub.cfg", generic=True))),
        Phase("dom0_load", "Xen loads dom0", r"\(XEN\) Freed \d+kB init memory", 120,
              ("Xen started but did not hand over to dom0", "see Xen's lines in the serial log"),
              (Failure(r"(?P<what>Not a Xen-ELF image|No Xen notes|Kernel does not support "
                       r"(?:PV|HVM)[^\n]*|Could not set up DOM0 guest OS|not a valid ELF)",
                       "Xen cannot start the dom0 kernel ({what}): it is not a kernel built for "
                       "Xen", KERNEL_CHECK),
               Failure(r"Panic on CPU \d+:\s*\n(?:\(XEN\)\s*)?(?P<what>[^\n]+)",
                       "Xen panicked: {what}", "see Xen's lines in the serial log",
                       generic=True))),
        Phase("dom0_kernel", "dom0 kernel runs as Xen's dom0",
              r"Booting paravirtualized kernel on Xen|Linux version \d", 60,
              ("Xen started the dom0 kernel, which printed nothing on Xen's console: a kernel "
               "without Xen dom0 support (CONFIG_XEN_DOM0, CONFIG_HVC_XEN) stays silent",
               KERNEL_CHECK),
              (Failure(r"(?P<what>Hardware Dom0 crashed|Domain 0 crashed|d0v\d+ [^\n]*crash)",
                       "the dom0 kernel crashed at once ({what}): it lacks Xen dom0 support",
                       KERNEL_CHECK),)),
        Phase("root", "root filesystem mounted",
              r"EXT[234]-fs \([^)]+\): mounted filesystem|XFS \([^)]+\): Ending clean mount", 150,
              ("the root filesystem was never mounted: the kernel (or its initramfs) waited for "
               "root={root_arg}, which it does not see (the copy's disk is {disk}; the root "
               "filesystem is {root_device}, UUID {root_uuid})",
               "xenlfs grub add --root UUID={root_uuid} --kernel … (or write "
               "root=UUID={root_uuid} on the entry's kernel line); if root= is right, the "
               "kernel or initramfs lacks the {bus} disk's driver: " + KERNEL_CHECK),
              (Failure(r"ALERT!\s+(?P<device>\S+) does not exist",
                       "root={device} names a device the kernel cannot see (the copy's disk is "
                       "{disk}; the root filesystem is {root_device}, UUID {root_uuid})",
                       "xenlfs grub add --root UUID={root_uuid} --kernel … (or write "
                       "root=UUID={root_uuid} on the entry's kernel line)"),
               Failure(r"VFS: Cannot open root device \"?(?P<device>[^\" ]+)\"?",
                       "the kernel cannot see the root device {device}: root= is wrong, or the "
                       "kernel lacks the driver of the root disk ({bus}) built in",
                       "xenlfs grub add --root UUID={root_uuid} --kernel … ; " + KERNEL_CHECK),
               Failure(r"VFS: Unable to mount root fs on (?P<device>\S+)",
                       "VFS: unable to mount root on {device}: the kernel lacks the driver for "
                       "the root disk or ext4 built in", KERNEL_CHECK),
               Failure(r"Kernel panic - not syncing: (?P<what>[^\n]+)",
                       "the dom0 kernel panicked: {what}", KERNEL_CHECK, generic=True))),
        Phase("init", "init runs", r"INIT: version \S+ booting|systemd\[1\]: ", 60,
              ("the kernel mounted root but init did not start", "is /sbin/init there?"),
              (Failure(r"Kernel panic - not syncing: (?P<what>No working init found[^\n]*|"
                       r"Requested init [^\n]*)", "the kernel found no init: {what}",
                       "install sysvinit (LFS chapter 8), or give init= on the kernel line"),)),
        # A failing script is caught by its FAIL line at once; only a hang waits this long.
        Phase("bootscripts", "bootscripts", rf"{PROBE} probe starts", 480,
              ("the bootscripts did not finish", "see the last bootscript lines: one hangs"),
              (Failure(FAIL_LINE, "a bootscript failed: {what}",
                       "run that script by hand after the boot (/etc/rc.d/init.d/…), and fix "
                       "what it reports", generic=True),)),
        Phase("xencommons", "xencommons", rf"{PROBE} xenstored: running", 60,
              ("the probe did not report on xenstored", "see the serial log"),
              (Failure(rf"{PROBE} xenstored: not running \(xencommons is not installed\)",
                       "xencommons is not installed: nothing starts xenstored and xenconsoled",
                       "xenlfs service install"),
               Failure(r"(?m)^[ \t]*(?P<what>Starting xenstored[^\n\[]*?)[ \t.*]*\[ *FAIL *\]",
                       "xencommons: xenstored did not start ({what})",
                       "install Xen's tools (xenlfs build xen), then /etc/rc.d/init.d/xencommons "
                       "start"),
               Failure(rf"{PROBE} xenstored: not running(?P<what>[^\n]*)",
                       "xenstored is not running{what}",
                       "/etc/rc.d/init.d/xencommons start, and see /var/log/xen"))),
        Phase("control_d", "control_d", rf"{PROBE} control_d: yes", 30,
              ("the probe did not report control_d", "see the serial log"),
              (Failure(rf"{PROBE} control_d: no(?P<what>[^\n]*)",
                       "dom0 lacks control_d{what}: the kernel is not running as Xen's dom0 or "
                       "has no xenfs", KERNEL_CHECK),
               Failure(r"Not running as Xen dom0[^\n]*", "xencommons: not running as Xen dom0",
                       KERNEL_CHECK))),
        Phase("xl", "xl list", rf"{PROBE} xl list: ok", 60,
              ("the probe did not report xl list", "see the serial log"),
              (Failure(rf"{PROBE} xl list: failed: (?P<what>[^\n]*)",
                       "xl list failed: {what}", "xenlfs service status"),)),
    ]


def bridge_phase(name: str) -> Phase:
    b = re.escape(name)
    return Phase(f"bridge:{name}", f"bridge {name}", rf"{PROBE} bridge {b}: ok", 30,
                 (f"the probe did not report the bridge {name}", "see the serial log"),
                 (Failure(rf"Unable to process \S*ifconfig\.{b}\b[^\n]*(?:\n[^\n]*)?SERVICE "
                          r"'?(?P<service>\w+)", f"ifup {name}: the '{{service}}' service is not "
                          "installed in /lib/services", "xenlfs bridge setup (it installs a "
                          "bridge service when BLFS's is absent)"),
                  Failure(rf"(?m)^[ \t]*Bringing up the {b} interface[^\n]*?Interface {b} "
                          r"doesn't exist", f"ifup {name}: LFS's ifup brought {name} up before "
                          "its bridge service made it: its ifconfig file lacks VIRTINT=yes",
                          f"xenlfs bridge setup --bridge {name} (it writes VIRTINT=yes), or add "
                          f"VIRTINT=yes to /etc/sysconfig/ifconfig.{name}"),
                  Failure(rf"(?m)^[ \t]*(?P<what>Creating the {b} bridge[^\n\[]*?)"
                          r"[ \t.*]*\[ *FAIL *\]",
                          f"the bridge {name} could not be made ({{what}})",
                          f"ifup {name} by hand; is the bridge module (CONFIG_BRIDGE) there?"),
                  Failure(rf"{PROBE} bridge {b}: missing",
                          f"there is no bridge {name}: the guests' vifs have nothing to join",
                          f"xenlfs bridge setup --bridge {name}"),
                  Failure(rf"{PROBE} bridge {b}: no ports",
                          f"the bridge {name} has no ports: the host's interface is not in it",
                          f"check INTERFACE_COMPONENTS in /etc/sysconfig/ifconfig.{name}")))


def guest_phase(name: str, deadline: float = 300) -> Phase:
    g = re.escape(name)
    return Phase(f"guest:{name}", f"guest {name} login prompt",
                 rf"{PROBE} guest {g}: login prompt", deadline,
                 (f"guest {name} showed no login prompt in time",
                  f"xenlfs guest console {name}"),
                 (Failure(rf"{PROBE} guest {g}: disk missing: (?P<path>\S+)",
                          f"guest {name}'s config names a disk that does not exist: {{path}}",
                          f"xenlfs guest prepare {name} --target {{path}} --snapshot … (or fix "
                          "the disk line: xenlfs guest check)"),
                  Failure(rf"{PROBE} guest {g}: the loop module is not loaded",
                          f"xl create {name}: the block hotplug script found no free loop device "
                          "for its file-backed disk: the loop module is not loaded",
                          "echo loop >> /etc/sysconfig/modules (LFS's modules bootscript loads "
                          "it at boot); now: modprobe loop"),
                  Failure(rf"{PROBE} guest {g}: xl create failed: [^\n]*?(?P<path>/[^\s:,']+)"
                          r"[^\n]*No such file or directory",
                          f"guest {name}'s config names a disk that does not exist: {{path}}",
                          f"xenlfs guest prepare {name} --target {{path}} --snapshot …"),
                  Failure(rf"{PROBE} guest {g}: xl create failed: (?P<what>[^\n]*)",
                          f"xl create {name} failed: {{what}}", f"xenlfs guest check {name}"),
                  Failure(rf"{PROBE} guest {g}: no login prompt(?P<what>[^\n]*)",
                          f"guest {name} booted no login prompt{{what}}",
                          f"xenlfs guest console {name} (see the guest console lines above)")))


def table(bridges: Sequence[str], guests: Sequence[str]) -> list[Phase]:
    return [*base_phases(), *map(bridge_phase, bridges), *map(guest_phase, guests)]


@dataclass(frozen=True)
class Diagnosis:
    phase: str  # the phase's key
    name: str
    diagnosis: str
    fix: str
    lines: tuple[str, ...]  # the serial log lines that show it


def _format(template: str, values: Mapping[str, str]) -> str:
    class Missing(dict[str, str]):
        def __missing__(self, key: str) -> str:
            return "{" + key + "}"

    return template.format_map(Missing(values))


def _context_lines(text: str, start: int, end: int, around: int = 3) -> tuple[str, ...]:
    first = text.count("\n", 0, start)
    last = text.count("\n", 0, end)
    lines = text.splitlines()
    return tuple(line for line in lines[max(0, first - around):last + 2] if line.strip())


def _message_before(text: str, at: int) -> str:
    """The LFS message a bare '***** [ FAIL ]' line belongs to: output of the command in
    between pushed it up (LFS indents its messages by six spaces)."""
    for line in reversed(text[:at].splitlines()[-6:]):
        if re.match(r"^ {6}\S", line):
            return line.strip()
    return "(its message is above in the serial log)"


def proof_line(phase: Phase, text: str) -> str | None:
    """The serial log line that proved the phase (e.g. which device root was mounted from)."""
    match = re.search(phase.proof, text)
    if match is None:
        return None
    start = text.rfind("\n", 0, match.start()) + 1
    end = text.find("\n", match.end())
    return text[start:end if end >= 0 else len(text)].strip()


def bootscript_results(text: str) -> list[tuple[str, str]]:
    """(message, status) of each LFS bootscript line, whole even when the kernel or Xen
    printed into the middle of it."""
    scripts = _INTERLEAVED.sub("", text)
    return [(m["what"], m["status"]) for m in re.finditer(RESULT_LINE, scripts)]


def tail_lines(text: str, count: int = 15) -> tuple[str, ...]:
    return tuple(line for line in text.splitlines() if line.strip())[-count:]


@dataclass
class Watch:
    """Follows the (cleaned) serial text and says which phases passed and what failed."""

    phases: list[Phase]
    context: Mapping[str, str]
    passed: dict[str, float | None] = field(default_factory=dict)  # key → seconds, or None
    bootscripts: list[tuple[str, str]] = field(default_factory=list)

    def next_phase(self) -> Phase | None:
        return next((p for p in self.phases if p.key not in self.passed), None)

    def last_time(self) -> float:
        times = [t for t in self.passed.values() if t is not None]
        return max(times, default=0.0)

    def update(self, text: str, now: float) -> Diagnosis | None:
        """Note what the text proves by now; a Diagnosis when a phase failed."""
        last = -1
        for index, phase in enumerate(self.phases):
            if phase.key in self.passed or re.search(phase.proof, text):
                last = index
        for phase in self.phases[:last + 1]:
            if phase.key not in self.passed:
                self.passed[phase.key] = now if re.search(phase.proof, text) else None
        self.bootscripts = bootscript_results(text)
        return self._failure(text)

    def _failure(self, text: str) -> Diagnosis | None:
        best: tuple[int, bool, Phase, Failure, re.Match[str]] | None = None
        for phase in self.phases:
            if phase.key in self.passed:
                continue
            for row in phase.failures:
                if row.when and not self.context.get(row.when):
                    continue
                match = re.search(row.pattern, text)
                if match is None:
                    continue
                line = text.count("\n", 0, match.start())
                if best is None or (line, row.generic) < (best[0], best[1]):
                    best = (line, row.generic, phase, row, match)
        if best is None:
            return None
        _, _, phase, row, match = best
        values = {**self.context, **{k: v for k, v in match.groupdict().items() if v}}
        if "what" in match.groupdict() and not match["what"]:
            values["what"] = _message_before(text, match.start())
        if "path" in values and self.context.get("boot_separate"):
            values.setdefault("grub_path", "/" + values["path"].removeprefix("/boot/"))
        return Diagnosis(phase.key, phase.name, _format(row.diagnosis, values),
                         _format(row.fix, values), _context_lines(text, match.start(),
                                                                  match.end()))

    def timed_out(self, text: str, now: float) -> Diagnosis | None:
        phase = self.next_phase()
        if phase is None or now - self.last_time() <= phase.deadline:
            return None
        diagnosis, fix = phase.timeout
        return Diagnosis(phase.key, phase.name,
                         f"{_format(diagnosis, self.context)} (nothing in {phase.deadline:g} s)",
                         _format(fix, self.context), tail_lines(text))
