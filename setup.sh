#!/bin/sh
# Set up xenlfs on a Debian 12 machine, as root: the system packages in
# deps/debian-packages.txt, then xenlfs and its test tools in ./.venv.
# On LFS (no apt-get) the package list is printed for you to build from the (B)LFS books.
set -eu
cd "$(dirname "$0")"
packages=$(grep -v '^[[:space:]]*\(#\|$\)' deps/debian-packages.txt)
if command -v apt-get >/dev/null 2>&1; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $packages
else
    echo "setup.sh: no apt-get; make sure these (or their LFS/BLFS builds) are installed:" >&2
    echo "$packages" | tr '\n' ' ' >&2
    echo >&2
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
echo "setup.sh: xenlfs is ready: .venv/bin/xenlfs --help" >&2
