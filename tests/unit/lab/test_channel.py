"""The host side of the channel against the real agent code, over a local Unix socket."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from xenlfs.errors import CommandFailed
from xenlfs.lab.agent import Agent
from xenlfs.lab.channel import Channel, ChannelError


@pytest.fixture
def channel(tmp_path: Path) -> Iterator[Channel]:
    """Plays QEMU: each client connection is served by agent.py's Agent."""
    path = tmp_path / "agent.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()
    connections: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            connections.append(conn)
            conn.setblocking(False)
            # The agent keeps serving its fd after the client leaves (as in dom0, where the
            # port outlives host connections): give it a fd of its own that is never closed,
            # so its number is never reused by a later connection it would then read from.
            agent = Agent(os.dup(conn.fileno()))
            threading.Thread(target=agent.serve, daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield Channel(path, tmp_path / "share")
    server.close()
    for conn in connections:
        conn.close()


def test_run_returns_output_and_status(channel: Channel) -> None:
    result = channel.run(["sh", "-c", "cat; echo e >&2; exit 4"], input="hi\n", check=False)
    assert (result.returncode, result.stdout, result.stderr) == (4, "hi\n", "e\n")


def test_failure_is_a_typed_error(channel: Channel) -> None:
    with pytest.raises(CommandFailed, match="exit status 4") as caught:
        channel.run(["sh", "-c", "echo broken >&2; exit 4"])
    assert caught.value.returncode == 4 and "broken" in caught.value.stderr


def test_command_timeout(channel: Channel) -> None:
    with pytest.raises(CommandFailed, match=r"did not finish within 0\.5 s"):
        channel.run(["sleep", "5"], timeout=0.5)


def test_missing_program_is_127(channel: Channel) -> None:
    assert channel.run(["no-such-program-xenlfs"], check=False).returncode == 127


def test_env_and_cwd(channel: Channel, tmp_path: Path) -> None:
    result = channel.run(["sh", "-c", 'echo "$X $(pwd)"'], env={"X": "1"}, cwd=str(tmp_path))
    assert result.stdout == f"1 {tmp_path}\n"


def test_ping(channel: Channel) -> None:
    assert channel.ping()["ok"] is True


def test_no_agent_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ChannelError, match="cannot reach dom0's agent"):
        Channel(tmp_path / "none.sock", tmp_path).ping(timeout=1)


def test_silent_agent_times_out(tmp_path: Path) -> None:
    path = tmp_path / "mute.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()
    try:
        with pytest.raises(ChannelError, match=r"did not answer within 0\.5 s"):
            Channel(path, tmp_path).ping(timeout=0.5)
    finally:
        server.close()


def test_stale_fragments_and_other_answers_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "noisy.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()

    def answer() -> None:
        conn, _ = server.accept()
        request = conn.recv(4096).decode().strip()
        rid = request.split('"id": "')[1].split('"')[0]
        conn.sendall(b'{"id": "old", "ok": tru' + b'\n{"id": "other", "ok": true}\n'
                     + f'\n{{"id": "{rid}", "ok": true, "uptime": 1}}\n'.encode())
        conn.close()

    threading.Thread(target=answer, daemon=True).start()
    assert Channel(path, tmp_path).ping(timeout=5)["uptime"] == 1
    server.close()
