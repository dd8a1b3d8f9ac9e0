"""The throwaway copy's own writes (write_in_copy) and the copy's pipe (copy_tree) where no
root is needed: a file written through a link stays in the copy, and a producer thread that
cannot start leaves no end of the pipe open."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from xenlfs.rehearse import image


def test_write_in_copy_follows_links_inside_the_copy_only(tmp_path: Path) -> None:
    top = tmp_path / "copy"
    outside = tmp_path / "outside.cfg"
    outside.write_text("this machine's file\n")
    (top / "boot/grub").mkdir(parents=True)
    # An absolute link, as the host has it: inside the copy it names the copy's file.
    (top / "boot/grub/grub.cfg").symlink_to(outside)
    ours = top / str(outside).lstrip("/")
    ours.parent.mkdir(parents=True)
    ours.write_text("set timeout=5\n")
    ours.chmod(0o600)
    diff = image.write_in_copy(top, "boot/grub/grub.cfg", "set timeout=0\n")
    assert outside.read_text() == "this machine's file\n"
    assert ours.read_text() == "set timeout=0\n" and (ours.stat().st_mode & 0o777) == 0o600
    assert (top / "boot/grub/grub.cfg").is_symlink()
    assert "-set timeout=5\n+set timeout=0\n" in diff and "a/boot/grub/grub.cfg" in diff
    # A new file, its directories made in the copy, with the mode asked for.
    diff = image.write_in_copy(top, "etc/rc.d/init.d/probe", "#!/bin/sh\n", mode=0o755)
    assert (top / "etc/rc.d/init.d/probe").stat().st_mode & 0o777 == 0o755
    assert diff.startswith("--- /dev/null\n+++ b/etc/rc.d/init.d/probe\n")


def test_copy_tree_closes_the_pipe_when_its_producer_cannot_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_thread(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", no_thread)
    before = sorted(os.listdir("/proc/self/fd"))
    with pytest.raises(RuntimeError, match="can't start new thread"):
        image.copy_tree(tmp_path, [], tmp_path / "dest", "/")
    assert sorted(os.listdir("/proc/self/fd")) == before
