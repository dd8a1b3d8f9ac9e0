"""The dress rehearsal's time: `xenlfs rehearse --root REFERENCE-HOST`, warm (the reference
host already built), from the command's start to the guest's login prompt.

    python3 bench/rehearse.py [--cache-dir DIR] [--runs N] [--json]

Target on 2 cores under TCG: <= 120 s from start to the guest's login. Reported beside it:
the copy (snapshot create of the host, the image, grub-install) and each boot phase's time.
Run as root; numbers depend on how busy the machine is (see the load average).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from xenlfs import settings, ui
from xenlfs.lab import host

TARGET_START_TO_LOGIN = 120.0


def one_run(cache_dir: Path, root: Path) -> dict[str, object]:
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "xenlfs", "--cache-dir", str(cache_dir), "rehearse", "--root",
         str(root), "--json"], capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent / "src")})
    whole = time.monotonic() - start
    if result.returncode != 0:
        raise SystemExit(f"rehearse failed (exit {result.returncode}):\n{result.stderr[-3000:]}"
                         f"\n{result.stdout[-3000:]}")
    data = json.loads(result.stdout)
    boot = float(data["seconds"])
    phases = {p["name"]: p["at"] for p in data["phases"]}
    return {"start_to_login_s": round(whole, 1), "copy_s": round(whole - boot, 1),
            "boot_to_login_s": round(boot, 1), "phases_at_s": phases}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=settings.default_cache_dir())
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    ui.setup_logging(debug=False, log_dir=None)
    reference = host.reference_host(args.cache_dir)  # warm: built before the clock starts
    runs = [one_run(args.cache_dir, reference.root) for _ in range(args.runs)]
    whole = [float(str(r["start_to_login_s"])) for r in runs]
    results = {"load_average": os.getloadavg()[0], "cpus": os.cpu_count(), "runs": runs,
               "start_to_login_median_s": round(statistics.median(whole), 1),
               "target_start_to_login_s": TARGET_START_TO_LOGIN}
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for key, value in results.items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
