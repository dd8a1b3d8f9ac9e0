"""The lab's Ganeti flavour: a dom0 with Debian's ganeti 3.0, for a single-node cluster whose
instances xenlfs's OS provider installs (issue 21; docs/testing.md "Ganeti in the lab").

Like hvm.py, the flavour is a set of BuildOptions (its own cache keys) plus how to boot it:
dom0's root is its initramfs, in RAM, and Ganeti's daemons need room beside it.
"""

from __future__ import annotations

import dataclasses
import shlex
from typing import NamedTuple

from xenlfs.lab import boot, dom0, images, instance

# python3-cffi-backend named: debootstrap's resolver does not follow the virtual
# python3-cffi-backend-api-* that bcrypt, cryptography and nacl need (ganeti stays
# unconfigured without it); zstd: the provider extracts .tar.zst snapshots.
PACKAGES = (*dom0.PACKAGES, "ganeti", "python3-cffi-backend", "zstd")


GANETI_LIB = "/usr/share/ganeti/3.0/ganeti"


class Timeout(NamedTuple):
    file: str        # under GANETI_LIB
    line: str        # the line's start, its indent included: "  DEFAULT_READY_TIMEOUT"
    ganeti: int      # Ganeti 3.0.2's value
    lab: int         # the lab's


# Ganeti's timeouts are set for real hardware. Under TCG, with dom0 on one vCPU of a busy
# 2-core host, a Python daemon takes 10-30 s to start and noded can take more than 5 s to
# finish an SSL handshake; seen in the lab (2026-12-02): an export's receiving daemon
# "Didn't become ready after 10 seconds", an import's "Child process didn't establish
# connection in time (60s)", and "RPC error in export_start …: Error 28: SSL connection
# timeout". A failed disk import is only a warning to Ganeti: the job succeeds and leaves an
# instance whose disk is empty. The lab scales them in dom0's RAM root, on each run (a
# no-op when done).
TIMEOUTS = (
    Timeout("_constants.py", "RPC_CONNECT_TIMEOUT", 5, 60),  # curl's connect + TLS handshake
    Timeout("_constants.py", "DISK_TRANSFER_CONNECT_TIMEOUT", 60, 600),  # import: peer in
    Timeout("masterd/instance.py", "  DEFAULT_READY_TIMEOUT", 10, 120),  # daemon: status file
    Timeout("masterd/instance.py", "  DEFAULT_LISTEN_TIMEOUT", 10, 120),  # import: listening
    Timeout("masterd/instance.py", "  DEFAULT_ERROR_TIMEOUT", 10, 120),  # status RPCs failing
)


def scale_timeouts_script(lib: str = GANETI_LIB) -> str:
    """A shell script that sets TIMEOUTS in Ganeti's Python (again: a no-op) and fails, naming
    the line, when one is neither Ganeti's value nor the lab's (another Ganeti)."""
    lines = ["set -e"]
    for t in TIMEOUTS:
        path = shlex.quote(f"{lib}/{t.file}")
        have = shlex.quote(f"^{t.line} = {t.lab}$")
        old = shlex.quote(f"^{t.line} = {t.ganeti}$")
        sed = shlex.quote(f"s/^{t.line} = {t.ganeti}$/{t.line} = {t.lab}/")
        missing = shlex.quote(f"{lib}/{t.file}: no line '{t.line.strip()} = {t.ganeti}' "
                              "(another Ganeti than 3.0?)")
        lines.append(f"grep -q {have} {path} || {{ grep -q {old} {path} || "
                     f"{{ echo {missing} >&2; exit 1; }}; sed -i {sed} {path}; }}")
    # Their bytecode, made again now: seen in the lab, a deleted .pyc of masterd/instance.py
    # was not written back, and each job compiled the module anew.
    files = sorted({shlex.quote(f"{lib}/{t.file}") for t in TIMEOUTS})
    lines.append(f"python3 -m py_compile {' '.join(files)}")
    return "\n".join(lines) + "\n"


def options(base: images.BuildOptions) -> images.BuildOptions:
    """The same lab, with Ganeti in dom0."""
    return dataclasses.replace(base, packages=PACKAGES)


def up_options(base: instance.UpOptions) -> instance.UpOptions:
    """dom0 2 GiB (its root in RAM, plus Ganeti's daemons, ~160 MB), the machine 3.5 GiB."""
    return dataclasses.replace(base, memory=3584 * boot.MiB, dom0_memory=2048 * boot.MiB)
