"""Boot times of the three guest types in the lab: `xl create` → the login prompt.

    python3 bench/guest_types.py [--types pv,pvh,hvm] [--cpu qemu64 --cpu qemu64,+svm,+npt]

Each run is one `xenlfs lab demo --json --type T --cpu C` (its caches warm: run each once
before timing, or read the first run as cold). Printed per run: the steps `guest create`
and "wait for the login prompt" from the demo's own step times, their sum (xl create →
login), what Xen offered (HVM with HAP or shadow paging) and the load average at the start.
Run as root, one lab at a time; numbers depend on how busy the machine is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import common


def run_demo(kind: str, cpu: str) -> dict[str, object]:
    load = os.getloadavg()[0]
    start = time.monotonic()
    result = subprocess.run(
        common.xenlfs("lab", "demo", "--json", "--type", kind, "--cpu", cpu,
                      "--instance", f"bench-{kind}", "--guest", f"{kind}bench"),
        capture_output=True, text=True, check=False, env=common.environment())
    wall = time.monotonic() - start
    if result.returncode != 0:
        return {"type": kind, "cpu": cpu, "error": result.stderr[-1500:], "load": load}
    report = json.loads(result.stdout)
    steps: dict[str, float] = report["steps"]
    create = next(v for k, v in steps.items() if "guest create" in k)
    login = next(v for k, v in steps.items() if "login prompt" in k)
    return {"type": kind, "cpu": cpu, "create_s": round(create, 1), "login_s": round(login, 1),
            "create_to_login_s": round(create + login, 1), "whole_s": round(wall, 1),
            "virtualisation": report.get("virtualisation"), "load": round(load, 1),
            "guest_type": report["guest_view"].get("guest_type"),
            "boot_line": report["guest_view"].get("boot_line")}


def main() -> int:
    parser = common.parser(__doc__)
    parser.add_argument("--types", default="pv,pvh,hvm")
    parser.add_argument("--cpu", action="append", default=[])
    args = parser.parse_args()
    rows = [run_demo(kind, cpu) for cpu in (args.cpu or ["qemu64"])
            for kind in args.types.split(",")]
    print(json.dumps(rows, indent=2))
    print(f"\n{'type':<5} {'cpu':<20} {'create':>7} {'→login':>7} {'sum':>7} {'whole':>7}  "
          "Xen offers              load")
    for r in rows:
        if "error" in r:
            print(f"{r['type']:<5} {r['cpu']:<20} failed: {str(r['error']).splitlines()[-1:]}")
            continue
        print(f"{r['type']:<5} {r['cpu']:<20} {r['create_s']:>7} {r['login_s']:>7} "
              f"{r['create_to_login_s']:>7} {r['whole_s']:>7}  {r['virtualisation']!s:<23} "
              f"{r['load']}")
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
