"""QEMU's machine protocol (QMP) on the lab's qmp.sock: attach disks to a running lab."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from xenlfs.errors import XenlfsError


class QmpError(XenlfsError):
    """QEMU refused a QMP command or did not answer."""


def command(path: Path, name: str, arguments: dict[str, Any] | None = None,
            timeout: float = 30.0) -> Any:
    """Run one QMP command on a fresh connection and return its "return" value."""
    deadline = time.monotonic() + timeout
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(os.fspath(path))
            stream = sock.makefile("rwb")
            _answer(stream, deadline, greeting=True)
            for message in ({"execute": "qmp_capabilities"},
                            {"execute": name, "arguments": arguments or {}}):
                stream.write(json.dumps(message).encode() + b"\n")
                stream.flush()
                result = _answer(stream, deadline)
            return result
    except (OSError, ValueError) as e:
        raise QmpError(f"QEMU's monitor at {path} did not answer {name}: {e}",
                       hint="is the lab up? 'xenlfs lab status'") from e


def _answer(stream: Any, deadline: float, greeting: bool = False) -> Any:
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            raise QmpError("QEMU closed its monitor connection")
        message = json.loads(line)
        if greeting and "QMP" in message:
            return message
        if "error" in message:
            raise QmpError(f"QEMU: {message['error'].get('desc', message['error'])}")
        if "return" in message:
            return message["return"]
    raise TimeoutError("no answer from QEMU's monitor")


def attach_disk(path: Path, image: Path, node: str, serial: str, readonly: bool = False) -> None:
    """Hot-plug a raw image as a virtio disk (PCI hotplug; dom0 sees a new /dev/vdX)."""
    command(path, "blockdev-add", {
        "node-name": node, "driver": "raw", "read-only": readonly,
        "file": {"driver": "file", "filename": os.fspath(image)}})
    command(path, "device_add", {"driver": "virtio-blk-pci", "drive": node, "id": node,
                                 "serial": serial})
