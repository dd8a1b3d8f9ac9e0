"""The lab's agent in dom0: runs commands for the host over a virtio-serial port.

This file runs inside the lab's dom0 under Debian's python3 (3.11, standard library only).
It is copied into the dom0 initramfs and never imported on the host. Files move through the
9p share mounted at /mnt/host, not through this port.

Protocol: one JSON object per line in each direction. Every line either side writes starts
with a newline, so a fragment left by a client that went away never glues itself to the
next message. A request carries an "id" that its answer repeats; the host ignores answers
that are not for it. Each request runs in its own thread.

  {"id", "op": "ping"}  ->  {"id", "ok": true, "uptime", "pid"}
  {"id", "op": "run", "argv", "stdin"?, "timeout"?, "cwd"?, "env"?}
      ->  {"id", "ok": true, "rc", "timed_out", "stdout", "stderr"}  (stdin/out/err base64)
A request that cannot be served is answered {"id", "ok": false, "error": "..."}.
"""

from __future__ import annotations

import base64
import glob
import json
import os
import select
import subprocess
import sys
import threading
import time
from typing import Any

PORT_NAME = "org.xenlfs.agent"
READY = "dom0 ready"
_START = time.monotonic()


def find_port() -> str | None:
    for name_file in glob.glob("/sys/class/virtio-ports/*/name"):
        with open(name_file) as f:
            if f.read().strip() == PORT_NAME:
                return "/dev/" + name_file.split("/")[-2]
    return None


def run_request(request: dict[str, Any]) -> dict[str, Any]:
    stdin = request.get("stdin")
    env = dict(os.environ)
    env.update(request.get("env") or {})
    try:
        proc = subprocess.run(
            request["argv"],
            input=base64.b64decode(stdin) if stdin is not None else None,
            stdin=subprocess.DEVNULL if stdin is None else None,
            capture_output=True, timeout=request.get("timeout"), cwd=request.get("cwd"),
            env=env, check=False, start_new_session=True)
        rc, out, err, timed_out = proc.returncode, proc.stdout, proc.stderr, False
    except subprocess.TimeoutExpired as e:
        rc, timed_out = None, True
        out = e.stdout if isinstance(e.stdout, bytes) else b""
        err = e.stderr if isinstance(e.stderr, bytes) else b""
    except (FileNotFoundError, PermissionError, NotADirectoryError) as e:
        rc, out, err, timed_out = 127, b"", f"{e}\n".encode(), False
    return {"rc": rc, "timed_out": timed_out, "stdout": base64.b64encode(out).decode(),
            "stderr": base64.b64encode(err).decode()}


class Agent:
    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        data = memoryview(("\n" + json.dumps(message) + "\n").encode())
        with self.lock:
            while data:
                try:
                    data = data[os.write(self.fd, data):]
                except BlockingIOError:
                    select.select([], [self.fd], [], 1.0)
                except OSError:
                    return  # the host went away; it ignores answers it did not wait for

    def handle(self, request: dict[str, Any]) -> None:
        rid = request.get("id")
        answer: dict[str, Any]
        try:
            if request.get("op") == "ping":
                answer = {"uptime": time.monotonic() - _START, "pid": os.getpid()}
            elif request.get("op") == "run":
                answer = run_request(request)
            else:
                raise ValueError(f"unknown op {request.get('op')!r}")
            answer.update(id=rid, ok=True)
        except Exception as e:  # every request gets an answer, whatever went wrong
            answer = {"id": rid, "ok": False, "error": f"{type(e).__name__}: {e}"}
        self.send(answer)

    def serve(self) -> None:
        """Serve requests until the port fails (then init starts a fresh agent)."""
        buffer = b""
        while True:
            try:
                ready, _, _ = select.select([self.fd], [], [], 1.0)
                if not ready:
                    continue
                chunk = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                continue
            except (OSError, ValueError):
                return
            if not chunk:  # no host connected: wait for one
                time.sleep(0.2)
                continue
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                try:
                    request = json.loads(line) if line.strip() else None
                except ValueError:
                    request = None  # a fragment from a client that went away
                if isinstance(request, dict):
                    threading.Thread(target=self.handle, args=(request,), daemon=True).start()


def main() -> int:
    port = None
    for _ in range(300):
        port = find_port()
        if port and os.path.exists(port):
            break
        time.sleep(0.1)
    if not port:
        print(f"xenlfs-agent: no virtio-serial port named {PORT_NAME}", file=sys.stderr)
        return 1
    fd = os.open(port, os.O_RDWR | os.O_NONBLOCK)
    print(f"xenlfs-agent: listening on {port}", flush=True)
    print(READY, flush=True)
    Agent(fd).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
