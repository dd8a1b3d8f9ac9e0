from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from xenlfs.lab import qmp


def fake_qemu(path: Path, answers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Serve QMP connections: greeting, then one answer per command. Returns what it got."""
    received: list[dict[str, Any]] = []
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()

    def serve() -> None:
        while answers:
            conn, _ = server.accept()
            stream = conn.makefile("rwb")
            stream.write(b'{"QMP": {"version": {}}}\n')
            stream.flush()
            for line in stream:
                received.append(json.loads(line))
                if received[-1]["execute"] == "qmp_capabilities":
                    reply: dict[str, Any] = {"return": {}}
                else:
                    reply = answers.pop(0)
                stream.write(b'{"event": "NOISE"}\n' + json.dumps(reply).encode() + b"\n")
                stream.flush()
                if received[-1]["execute"] != "qmp_capabilities":
                    break
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return received


def test_attach_disk_adds_a_block_node_and_a_virtio_device(tmp_path: Path) -> None:
    sock = tmp_path / "qmp.sock"
    got = fake_qemu(sock, [{"return": {}}, {"return": {}}])
    qmp.attach_disk(sock, Path("/images/g.img"), "hot-g", "g")
    commands = [m for m in got if m["execute"] != "qmp_capabilities"]
    assert commands[0] == {"execute": "blockdev-add", "arguments": {
        "node-name": "hot-g", "driver": "raw", "read-only": False,
        "file": {"driver": "file", "filename": "/images/g.img"}}}
    assert commands[1]["arguments"] == {"driver": "virtio-blk-pci", "drive": "hot-g",
                                        "id": "hot-g", "serial": "g"}


def test_refusal_is_an_error_with_qemus_words(tmp_path: Path) -> None:
    sock = tmp_path / "qmp.sock"
    fake_qemu(sock, [{"error": {"class": "GenericError", "desc": "Duplicate node name"}}])
    with pytest.raises(qmp.QmpError, match="Duplicate node name"):
        qmp.command(sock, "blockdev-add", {})


def test_no_qemu_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(qmp.QmpError, match="did not answer"):
        qmp.command(tmp_path / "none.sock", "query-status", timeout=1)
