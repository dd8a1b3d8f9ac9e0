"""The guest lifecycle over the real xl (hint step 6: `xl create -c`, `xl list`, `xl top`).

Every command needs Xen's dom0: xl talks to the hypervisor and xenstored. Outside dom0 xl
fails with libxc errors that do not say so; we check /proc/xen/capabilities first.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from xenlfs import run
from xenlfs.errors import CommandFailed, PreconditionError, ToolMissing, UsageError
from xenlfs.xl import check

CAPABILITIES = Path("/proc/xen/capabilities")


def in_dom0(capabilities: Path = CAPABILITIES) -> bool:
    try:
        return "control_d" in capabilities.read_text()
    except OSError:
        return False


def require_dom0(capabilities: Path = CAPABILITIES) -> None:
    if in_dom0(capabilities):
        return
    why = ("it does not exist: this kernel is not running on Xen, or xenfs is not mounted"
           if not capabilities.exists() else "it does not say control_d: this is a guest")
    raise PreconditionError(
        f"not running in Xen's dom0 ({capabilities}: {why}); xl can only manage guests there",
        hint="boot this machine into Xen (hint step 4: xenlfs grub add, xenlfs service "
        "install) and run this there, or try it under QEMU: xenlfs lab demo")


def parse_host(info: str) -> check.Host:
    """`xl info -n` → what xl asks the hypervisor while it reads a config. libxl sizes CPU maps
    in whole bytes of max_cpu_id + 1 bits; the cpu_topology table says each CPU's node."""
    fields = {}
    node_cpus: dict[int, int] = {}
    for line in info.splitlines():
        row = re.fullmatch(r"\s*(\d+):\s+(\d+)\s+(\d+)\s+(\d+)\s*", line)
        if row:
            cpu, node = int(row[1]), int(row[4])
            node_cpus[node] = node_cpus.get(node, 0) | 1 << cpu
            continue
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()

    def number(key: str) -> int | None:
        return int(fields[key]) if fields.get(key, "").isdigit() else None

    max_cpu_id = number("max_cpu_id")
    cpus = None if max_cpu_id is None else (max_cpu_id + 1 + 7) // 8 * 8
    nodes = number("nr_nodes")
    by_node = None if not node_cpus or nodes is None else tuple(
        node_cpus.get(n, 0) for n in range(nodes))
    return check.Host(cpus=cpus, online_cpus=number("nr_cpus"), nodes=nodes,
                      node_cpus=by_node)


def host() -> check.Host:
    """This host as xl sees it, in dom0; elsewhere (or if xl cannot say) nothing is known, and
    the checks that need it are left out rather than the check failing."""
    if not in_dom0():
        return check.Host()
    try:
        return parse_host(run.run(["xl", "info", "-n"], timeout=30).stdout)
    except (CommandFailed, ToolMissing):
        return check.Host()


def config_path(name_or_file: str, config_dir: Path) -> Path:
    """A guest's config: the file itself if it exists, else CONFIG_DIR/NAME.cfg."""
    given = Path(name_or_file)
    if given.is_file() or "/" in name_or_file or name_or_file.endswith(".cfg"):
        return given
    return named_config(name_or_file, config_dir)


def named_config(name: str, config_dir: Path) -> Path:
    """Where a guest's config lives: CONFIG_DIR/NAME.cfg (/etc/xen/NAME.cfg, as the hint)."""
    return config_dir / f"{name}.cfg"


def checked(path: Path) -> check.Report:
    """Check a config before xl sees it; refuse it with our messages where xl would."""
    if not path.is_file():
        raise UsageError(f"no guest config {path}",
                         hint="write one: xenlfs guest config NAME --kernel ... --memory ... "
                         "--disk ...")
    report = check.check_file(path, host())
    if in_dom0():
        check.check_bridges(report)
    if not report.ok:
        errors = "\n".join(str(f) for f in report.findings if f.severity == "error")
        raise UsageError(f"xl would refuse {path}:\n{errors}",
                         hint=f"fix the file; xenlfs guest check {path} lists every problem")
    return report


def create(path: Path, *, console: bool) -> None:
    argv = ["xl", "create", str(path), *(["-c"] if console else [])]
    if console and not run.dry_run():
        # The console is the user's terminal: xl must get our stdin and stdout.
        proc = run.spawn(argv, stdin=None)
        proc.wait()
        run.check_finished(proc, hint="see /var/log/xen/ for the guest's logs")
        return
    run.run(argv, writes=True, hint="see /var/log/xen/xl-NAME.log and /var/log/xen/")


@dataclass(frozen=True)
class Domain:
    name: str
    id: int
    memory: int  # MiB
    vcpus: int
    state: str
    time: float  # CPU seconds


def parse_list(text: str) -> list[Domain]:
    """`xl list`: Name ID Mem VCPUs State Time(s); a name may contain spaces."""
    domains = []
    for line in text.splitlines()[1:]:
        m = re.match(r"(.+?)\s+(\d+)\s+(\d+)\s+(\d+)\s+([-rbpsdc]{6})\s+([\d.]+)\s*$", line)
        if m:
            domains.append(Domain(m[1], int(m[2]), int(m[3]), int(m[4]), m[5], float(m[6])))
    return domains


def list_domains() -> list[Domain]:
    return parse_list(run.run(["xl", "list"]).stdout)


def parse_top(text: str) -> list[dict[str, str]]:
    """One `xentop -b -i 1` sample → one dict per domain, keyed by xentop's column names."""
    lines = [line for line in text.splitlines() if line.strip()]
    header_at = next((i for i, line in enumerate(lines) if line.split()[:1] == ["NAME"]), None)
    if header_at is None:
        return []
    columns = lines[header_at].split()
    rows = []
    for line in lines[header_at + 1:]:
        if line.split()[:1] == ["NAME"]:
            break
        fields = line.replace("no limit", "no_limit").split()
        extra = len(fields) - len(columns)
        if extra < 0:
            continue
        name = " ".join(fields[:extra + 1])
        rows.append(dict(zip(columns, [name, *fields[extra + 1:]], strict=True)))
    return rows


def top() -> list[dict[str, str]]:
    return parse_top(run.run(["xentop", "-b", "-i", "1"]).stdout)


def require_running(name: str) -> None:
    if not any(d.name == name or str(d.id) == name for d in list_domains()):
        raise UsageError(f"no running guest named {name}", hint="see: xenlfs guest list")


def console(name: str) -> None:
    require_running(name)
    proc = run.spawn(["xl", "console", name], stdin=None)
    proc.wait()
    run.check_finished(proc)


def shutdown(name: str, *, wait: bool, timeout: float) -> None:
    require_running(name)
    run.run(["xl", "shutdown", name], writes=True)
    if not wait or run.dry_run():
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(d.name == name for d in list_domains()):
            return
        time.sleep(1)
    raise CommandFailed(f"{name} did not shut down within {timeout:g} s",
                        argv=["xl", "shutdown", name], returncode=None,
                        hint=f"look at its console (xenlfs guest console {name}); to stop it "
                        f"at once: xenlfs guest destroy {name}")


def destroy(name: str) -> None:
    require_running(name)
    run.run(["xl", "destroy", name], writes=True)

