"""Benchmark of `guest clone`: 10 copy-on-write clones of one prepared guest versus 10 full
`guest prepare`s from the same snapshot, time and space, in one run on one filesystem.

Both sides end with 10 guests, each with its own image, edits and xl config. The
filesystem is a loop-mounted XFS made with reflink=1 (the reflink backend); space is what
the filesystem's used blocks grow by (shared extents counted once, as the disk holds them).

    python3 bench/clones.py [--tree DIR] [--count 10] [--size 2G]

--tree: the root to snapshot (default: the Debian root bench/snapshot.py prepares and
caches). Needs root and xfsprogs (apt-get install xfsprogs).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import common
from bench import snapshot as snapshot_bench
from bench.guest_prepare import environment, timed, xenlfs


def used(where: Path) -> int:
    os.sync()
    st = os.statvfs(where)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def main() -> int:
    parser = common.parser(__doc__)
    parser.add_argument("--tree", type=Path, help="the root to snapshot")
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--size", default="2G", help="each guest image's size (default 2G)")
    args = parser.parse_args()
    if os.geteuid() != 0 or not shutil.which("mkfs.xfs"):
        print("needs root and xfsprogs (apt-get install xfsprogs)", file=sys.stderr)
        return 2
    tree = args.tree or snapshot_bench.prepare(snapshot_bench.default_cache())
    work = Path(tempfile.mkdtemp(prefix="xenlfs-bench-clones-", dir="/var/tmp"))
    fs_image, xfs, xen, log = work / "xfs.img", work / "xfs", work / "xen", work / "bench.log"
    kernel = work / "vmlinuz-domU"  # never booted: the xl configs only name it
    kernel.write_bytes(b"")
    try:
        archive = work / "guest.tar.zst"
        subprocess.run(xenlfs("snapshot", "create", str(archive), "--root", str(tree)),
                       env=environment(), check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        subprocess.run(["cat", str(archive)], stdout=subprocess.DEVNULL, check=True)
        subprocess.run(["truncate", "-s", "40G", fs_image], check=True)
        subprocess.run(["mkfs.xfs", "-q", "-m", "reflink=1", fs_image], check=True)
        xfs.mkdir()
        subprocess.run(["mount", "-o", "loop", fs_image, xfs], check=True)
        try:
            start = used(xfs)
            prepares = [timed(xenlfs(
                "guest", "prepare", f"full{n}", "--snapshot", str(archive), "--target",
                str(xfs / f"full{n}.img"), "--size", args.size, "--config-dir", str(xen),
                "--kernel", str(kernel), "--vif", "bridge=xenbr0", "--dhcp"), log)
                for n in range(args.count)]
            prepared = used(xfs) - start
            names = [f"clone{n}" for n in range(args.count)]
            start = used(xfs)
            cloning = timed(xenlfs("guest", "clone", "full0", *names, "--config-dir",
                                   str(xen)), log)
            cloned = used(xfs) - start
        finally:
            subprocess.run(["umount", xfs], check=False)
        full = sum(prepares)
        mb = 1e6
        print(f"snapshot {archive.name}: {archive.stat().st_size / mb:.0f} MB of "
              f"{tree}; images {args.size} on XFS (reflink=1); {args.count} guests each:")
        print(f"  {args.count} x xenlfs guest prepare     {full:7.1f} s  "
              f"{prepared / mb:8.1f} MB  (each {min(prepares):.1f}-{max(prepares):.1f} s)")
        print(f"  xenlfs guest clone full0 +{args.count}     {cloning:7.1f} s  "
              f"{cloned / mb:8.1f} MB")
        time_ratio, space_ratio = cloning / full, cloned / prepared
        print(f"  ratio (clone / prepare)         {time_ratio:7.3f}x  {space_ratio:8.3f}x"
              "  (target <= 0.2x for both)")
        return 0 if time_ratio <= 0.2 and space_ratio <= 0.2 else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
