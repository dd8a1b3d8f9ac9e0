"""Talk to dom0 from the host: run commands (agent over virtio-serial), move files (9p share).

Commands: one JSON request per connection to QEMU's agent socket, answered by agent.py in
dom0 (see its protocol). Every call has a timeout. Files: the lab's share directory on the
host is mounted at /mnt/host in dom0; copying is a local copy plus a `cp` in dom0.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shlex
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xenlfs import run
from xenlfs.errors import XenlfsError
from xenlfs.lab import dom0

log = logging.getLogger("xenlfs.lab")


class ChannelError(XenlfsError):
    """dom0's agent did not answer, or answered nonsense."""


@dataclass(frozen=True)
class Channel:
    agent_socket: Path
    share: Path

    def request(self, message: Mapping[str, Any], timeout: float) -> dict[str, Any]:
        """Send one request and return its answer, or raise ChannelError within `timeout`."""
        rid = uuid.uuid4().hex
        payload = ("\n" + json.dumps({**message, "id": rid}) + "\n").encode()
        deadline = time.monotonic() + timeout
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(max(0.1, min(timeout, 10.0)))
                sock.connect(os.fspath(self.agent_socket))
                sock.sendall(payload)
                buffer = b""
                while True:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError
                    sock.settimeout(left)
                    chunk = sock.recv(1 << 16)
                    if not chunk:
                        raise ChannelError("QEMU closed the agent socket (is the lab stopping?)")
                    buffer += chunk
                    while b"\n" in buffer:
                        line, buffer = buffer.split(b"\n", 1)
                        answer = _parse(line)
                        if answer is not None and answer.get("id") == rid:
                            return answer
        except TimeoutError as e:
            raise ChannelError(f"dom0's agent did not answer within {timeout:g} s",
                               hint="see the lab's serial log; 'xenlfs lab status'") from e
        except OSError as e:
            raise ChannelError(f"cannot reach dom0's agent at {self.agent_socket}: {e}",
                               hint="is the lab up? 'xenlfs lab status'") from e

    def ping(self, timeout: float = 10.0) -> dict[str, Any]:
        return self.request({"op": "ping"}, timeout)

    def wait(self, timeout: float) -> None:
        """Wait until the agent answers (it may still be starting)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.ping(timeout=min(5.0, max(0.5, deadline - time.monotonic())))
                return
            except ChannelError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def run(self, argv: Sequence[str], *, input: str | bytes | None = None,
            timeout: float = 300.0, check: bool = True, env: Mapping[str, str] | None = None,
            cwd: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run a command in dom0: its stdout, stderr and exit status, like run.run()."""
        args = [os.fspath(a) for a in argv]
        line = "dom0: " + shlex.join(args)
        log.debug("+ %s", line)
        request: dict[str, Any] = {"op": "run", "argv": args, "timeout": timeout}
        if input is not None:
            data = input.encode() if isinstance(input, str) else input
            request["stdin"] = base64.b64encode(data).decode()
        if env:
            request["env"] = dict(env)
        if cwd:
            request["cwd"] = cwd
        answer = self.request(request, timeout + 15.0)
        if not answer.get("ok"):
            raise ChannelError(f"{line}: the agent could not run it: {answer.get('error')}")
        stdout = base64.b64decode(answer.get("stdout", "")).decode("utf-8", "replace")
        stderr = base64.b64decode(answer.get("stderr", "")).decode("utf-8", "replace")
        if answer.get("timed_out"):
            raise run.timed_out(line, args, timeout, stderr)
        result = subprocess.CompletedProcess(args, int(answer["rc"]), stdout, stderr)
        if check and result.returncode != 0:
            raise run.failed(line, args, result.returncode, stderr)
        return result

    def shell(self, script: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return self.run(["sh", "-c", script], **kwargs)

    # --- files, through the 9p share ------------------------------------------------------

    def push(self, source: Path, target: str, *, timeout: float = 600.0) -> None:
        """Copy a host file or directory to `target` in dom0."""
        staged = self._stage_name(source.name)
        if source.is_dir():
            shutil.copytree(source, self.share / staged, symlinks=True)
        else:
            shutil.copy2(source, self.share / staged)
        try:
            self.run(["sh", "-c", 'mkdir -p "$(dirname "$2")" && rm -rf "$2" && cp -a "$1" "$2"',
                      "push", f"{dom0.SHARE_MOUNT}/{staged}", target], timeout=timeout)
        finally:
            _remove(self.share / staged)

    def pull(self, source: str, target: Path, *, timeout: float = 600.0) -> None:
        """Copy a dom0 file or directory to `target` on the host."""
        staged = self._stage_name(Path(source).name)
        try:
            self.run(["cp", "-a", source, f"{dom0.SHARE_MOUNT}/{staged}"], timeout=timeout)
            _remove(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(self.share / staged, target)
        finally:
            _remove(self.share / staged)

    def _stage_name(self, name: str) -> str:
        return f".xenlfs-{uuid.uuid4().hex[:12]}-{name}"

    def disk_device(self, serial: str, timeout: float = 30.0) -> str:
        """The /dev path in dom0 of the virtio disk QEMU was given with this serial."""
        result = self.run(
            ["sh", "-c", 'for s in /sys/block/vd*/serial; do [ "$(cat "$s")" = "$1" ] && '
             'basename "$(dirname "$s")"; done; true', "disk", serial], timeout=timeout)
        names = result.stdout.split()
        if len(names) != 1:
            raise ChannelError(f"dom0 has {len(names)} disks with serial {serial!r}: {names}")
        return f"/dev/{names[0]}"


def _parse(line: bytes) -> dict[str, Any] | None:
    if not line.strip():
        return None
    try:
        value = json.loads(line)
    except ValueError:
        return None  # a fragment of an answer meant for a client that went away
    return value if isinstance(value, dict) else None


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
