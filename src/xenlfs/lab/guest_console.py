"""Logging in to a guest on its Xen console (hvc0) from dom0, as a person at `xl console` would.

xenconsoled gives each guest console a pty; its path is in xenstore. We open that pty, wait
for agetty's login prompt, log in, run commands and read their output between markers that
the terminal's echo of the command line cannot produce.
"""

from __future__ import annotations

import os
import re
import select
import termios
import time
import tty
from dataclasses import dataclass

from xenlfs import run
from xenlfs.errors import XenlfsError

BEGIN, END = "<<XENLFS-BEGIN>>", "<<XENLFS-END>>"


class ConsoleTimeout(XenlfsError):
    pass


def console_tty(domain: str, key: str = "console/tty") -> str:
    """The pty of a guest's console: the PV console (console/tty), or for an HVM guest
    qemu's emulated serial port (serial/0/tty), as `xl console -t serial` finds it."""
    domid = run.run(["xl", "domid", domain]).stdout.strip()
    return str(run.run(["xenstore-read", f"/local/domain/{domid}/{key}"]).stdout.strip())


@dataclass
class Console:
    fd: int
    seen: str = ""

    @classmethod
    def open(cls, path: str) -> Console:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(fd, termios.TCSANOW)
        return cls(fd)

    def close(self) -> None:
        os.close(self.fd)

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def expect(self, pattern: str, timeout: float) -> re.Match[str]:
        """Wait until `pattern` appears in output not yet consumed; consume up to its end."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            match = regex.search(self.seen)
            if match:
                self.seen = self.seen[match.end():]
                return match
            left = deadline - time.monotonic()
            if left <= 0:
                raise ConsoleTimeout(
                    f"the guest console did not show {pattern!r} within {timeout:g} s",
                    hint=f"last output: {self.seen[-300:]!r}")
            ready, _, _ = select.select([self.fd], [], [], min(left, 1.0))
            if ready:
                self.seen += os.read(self.fd, 4096).decode("utf-8", "replace")


def log_in(console: Console, user: str, password: str, timeout: float) -> None:
    console.send("\r")
    console.expect(r"login: ?$|login: ", timeout)
    console.send(user + "\r")
    console.expect(r"[Pp]assword: ?", 30)
    console.send(password + "\r")
    console.expect(r"[#$] ?$|[#$] ", 30)


def run_command(console: Console, command: str, timeout: float = 30) -> str:
    """Run a shell command on the guest console and return its output (stdout+stderr)."""
    # The quotes split the markers so the terminal's echo of this line never matches them.
    begin = '"' + BEGIN[:5] + '""' + BEGIN[5:] + '"'
    end = '"' + END[:5] + '""' + END[5:] + '"'
    console.send(f"echo {begin}; {command} 2>&1; echo {end}\r")
    console.expect(re.escape(BEGIN) + r"\r?\n", timeout)
    match = console.expect(r"([\s\S]*?)" + re.escape(END), timeout)
    return match.group(1).replace("\r\n", "\n")


# What the demo asks the guest about itself, once logged in on hvc0.
GUEST_VIEW = {
    "hypervisor": "cat /sys/hypervisor/type",
    "memory_kib": "sed -n 's/^MemTotal: *\\([0-9]*\\) kB/\\1/p' /proc/meminfo",
    # The kernel mounts root as /dev/root (df shows that too, as the hint says); its device
    # number tells which disk it really is.
    "root": "awk '$2 == \"/\" && $1 != \"rootfs\" {print $1, $3}' /proc/mounts",
    "root_device": "mountpoint -d /",
    "xvda1_device": "cat /sys/class/block/xvda1/dev",
    "kernel": "uname -r",
    "hostname": "hostname",
    "detected": "dmesg | grep -m1 -i 'hypervisor detected'",
    # PV, PVH or HVM, as Xen runs it, and the kernel's own word on how it booted.
    "guest_type": "cat /sys/hypervisor/guest_type",
    # Xen's banner (arch/x86/xen/enlighten.c): "Booting kernel on Xen|Xen PVH|Xen HVM".
    "boot_line": "dmesg | grep -m1 -E 'Booting (paravirtualized )?kernel on'",
}


def wait_for_prompt(domain: str, timeout: float, key: str = "console/tty") -> None:
    """Wait for the login prompt on a console (an HVM guest's serial port has no log)."""
    deadline = time.monotonic() + timeout
    while True:  # qemu's serial pty appears in xenstore a moment after xl create
        try:
            path = console_tty(domain, key)
            break
        except XenlfsError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)
    console = Console.open(path)
    try:
        console.expect(r"login: ?", max(1.0, deadline - time.monotonic()))
    finally:
        console.close()


def guest_view(domain: str, user: str, password: str, timeout: float = 180.0,
               key: str = "console/tty") -> dict[str, str]:
    """Log in on the guest's console and return what the guest reports about itself."""
    console = Console.open(console_tty(domain, key))
    try:
        log_in(console, user, password, timeout)
        view = {key: run_command(console, command).strip() for key, command in GUEST_VIEW.items()}
        console.send("exit\r")
        return view
    finally:
        console.close()
