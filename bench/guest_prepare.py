"""Benchmark of step 5: snapshot → ready guest image, xenlfs versus Debian's xen-tools.

Both start from the same snapshot (a xenlfs snapshot of the > 500 MB Debian root that
bench/snapshot.py prepares and caches) in the same run, on the same warm page cache, and
both end with a sparse ext4 image holding the edited guest and an xl config:

  xen-create-image --install-method=tar --install-source=SNAPSHOT --dir=... --noswap ...
  xenlfs guest prepare NAME --snapshot SNAPSHOT --target IMAGE --size ...

xen-tools also runs its hooks (hostname, fstab, network, SSH host keys, ...). Needs root
and xen-tools (apt-get install xen-tools).

    python3 bench/guest_prepare.py [--cache DIR] [--size 3G] [--repeat N]
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import common
from bench import snapshot as snapshot_bench

xenlfs = common.xenlfs


def environment() -> dict[str, str]:
    """No user configuration: each run sees the same defaults."""
    return common.environment(XDG_CONFIG_HOME="/nonexistent")


def make_snapshot(cache: Path) -> Path:
    tree = snapshot_bench.prepare(cache)
    archive = tree.parent / "guest-bench.tar.zst"
    if not archive.exists():
        subprocess.run(xenlfs("snapshot", "create", str(archive), "--root", str(tree)),
                       env=environment(), check=True, stderr=subprocess.DEVNULL)
    return archive


def timed(argv: list[str], log: Path) -> float:
    start = time.monotonic()
    with open(log, "ab") as out:
        subprocess.run(argv, env=environment(), stdout=out, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, check=True)
    return time.monotonic() - start


def fstab_of(image: Path) -> str:
    result = subprocess.run(["debugfs", "-R", "cat /etc/fstab", str(image)],
                            capture_output=True, text=True, check=True)
    return next((line for line in result.stdout.splitlines()
                 if line.split()[1:2] == ["/"]), "(no root line)")


def main() -> int:
    parser = common.parser(__doc__)
    parser.add_argument("--cache", type=Path, default=snapshot_bench.default_cache())
    parser.add_argument("--size", default="3G", help="image size for both (default 3G)")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    if os.geteuid() != 0 or not shutil.which("xen-create-image"):
        print("needs root and xen-tools (apt-get install xen-tools)", file=sys.stderr)
        return 2
    archive = make_snapshot(args.cache)
    subprocess.run(["cat", str(archive)], stdout=subprocess.DEVNULL, check=True)  # warm cache
    work = Path(tempfile.mkdtemp(prefix="xenlfs-bench-guest-", dir="/var/tmp"))
    kernel = work / "vmlinuz-domU"  # neither tool boots it; both only name it in the config
    kernel.write_bytes(b"")
    (work / "xt-cfg").mkdir()
    log = work / "bench.log"
    ours, theirs = [], []

    def xen_tools(host: str, *extra: str) -> list[str]:
        return ["xen-create-image", f"--hostname={host}", "--install-method=tar",
                f"--install-source={archive}", f"--dir={work / 'xt'}", f"--size={args.size}",
                "--noswap", "--fs=ext4", "--image=sparse", "--force", "--memory=512M",
                f"--kernel={kernel}", f"--initrd={kernel}", "--dist=bookworm",
                "--mirror=http://deb.debian.org/debian", "--genpass=0", "--password=xenlfs",
                f"--output={work / 'xt-cfg'}", "--nocopyhosts", "--dhcp", *extra]

    try:
        for n in range(args.repeat):
            # Its hooks make its edits (and try apt-get update, make SSH host keys); with
            # --hooks=0 xen-tools 4.9 fails at the end and leaves the image mounted.
            theirs.append(timed(xen_tools(f"benchxt{n}"), log))
            image = work / f"xenlfs{n}.img"
            ours.append(timed(xenlfs(
                "guest", "prepare", f"benchx{n}", "--snapshot", str(archive), "--target",
                str(image), "--size", args.size, "--config-dir", str(work / "xl-cfg"),
                "--kernel", str(kernel), "--dhcp", "--root-password-hash",
                "$6$bench$" + "x" * 86), log))
            print(f"xen-tools fstab: {fstab_of(work / f'xt/domains/benchxt{n}/disk.img')}")
            print(f"xenlfs    fstab: {fstab_of(image)}")
        size_mb = os.path.getsize(archive) / 1e6
        print(f"snapshot {archive.name}: {size_mb:.0f} MB, image {args.size}, "
              f"{args.repeat} run(s), median seconds:")
        a, b = statistics.median(theirs), statistics.median(ours)
        print(f"  xen-create-image --install-method=tar  {a:7.1f} s")
        print(f"  xenlfs guest prepare                   {b:7.1f} s")
        print(f"  ratio (xen-tools / xenlfs)             {a / b:7.1f}x  (target >= 2x)")
        return 0 if a / b >= 2 else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
