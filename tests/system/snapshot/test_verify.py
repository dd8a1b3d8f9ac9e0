"""verify: a whole archive passes; damage, truncation or a foreign manifest fail;
--against a live tree names what was added, removed and changed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from xenlfs.snapshot import extract


@pytest.fixture
def snapshot(xenlfs, tree: Path, workdir: Path) -> Path:
    archive = workdir / "snap.tar.zst"
    result = xenlfs("snapshot", "create", "--root", str(tree), str(archive))
    assert result.returncode == 0, result.stderr
    return archive


def test_a_whole_archive_verifies(xenlfs, snapshot: Path):
    result = xenlfs("snapshot", "verify", "--json", str(snapshot))
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and report["problems"] == []
    manifest = Path(f"{snapshot}.manifest.jsonl").read_text().splitlines()
    assert report["entries"] == len(manifest) - 1


@pytest.mark.parametrize("suffix", [".tar", ".tar.gz"])
def test_a_flipped_byte_is_found(xenlfs, tree: Path, workdir: Path, suffix: str):
    archive = workdir / f"snap{suffix}"
    assert xenlfs("snapshot", "create", "--root", str(tree), str(archive)).returncode == 0
    data = bytearray(archive.read_bytes())
    # inside ping's content (plain tar) or the compressed stream (gzip)
    where = data.find(b"pretend binary") if suffix == ".tar" else len(data) // 2
    data[where] ^= 0x20
    archive.write_bytes(bytes(data))
    result = xenlfs("snapshot", "verify", str(archive))
    assert result.returncode == 1
    assert any(reason in result.stdout for reason in (
        "differ from the manifest", "could not decompress", "bad tar header checksum",
        "damaged tar data")), \
        result.stdout + result.stderr


def test_a_truncated_archive_is_found(xenlfs, snapshot: Path):
    size = snapshot.stat().st_size
    with open(snapshot, "r+b") as f:
        f.truncate(size * 2 // 3)
    result = xenlfs("snapshot", "verify", "--json", str(snapshot))
    assert result.returncode == 1
    problems = " ".join(json.loads(result.stdout)["problems"])
    assert "manifest says" in problems
    assert "zstd could not decompress" in problems or "truncated" in problems


def test_a_manifest_of_another_archive_is_found(xenlfs, snapshot: Path, tree: Path,
                                                workdir: Path):
    (tree / "new-file").write_text("makes the archive different\n" * 1000)
    other = workdir / "other.tar.zst"
    assert xenlfs("snapshot", "create", "--root", str(tree), str(other)).returncode == 0
    shutil.copy(f"{other}.manifest.jsonl", f"{snapshot}.manifest.jsonl")
    result = xenlfs("snapshot", "verify", str(snapshot))
    assert result.returncode == 1
    assert "not the archive this manifest describes" in result.stdout


def test_a_damaged_manifest_is_reported_with_its_line(xenlfs, snapshot: Path):
    path = Path(f"{snapshot}.manifest.jsonl")
    lines = path.read_text().splitlines(keepends=True)
    lines[3] = lines[3][:20] + "\n"
    path.write_text("".join(lines))
    result = xenlfs("snapshot", "verify", str(snapshot))
    assert result.returncode == 1
    assert f"{path}:4:" in result.stderr
    assert "Traceback" not in result.stderr


def test_against_an_extracted_copy_finds_nothing(xenlfs, snapshot: Path, workdir: Path):
    extract(snapshot, workdir / "copy")
    result = xenlfs("snapshot", "verify", str(snapshot), "--against", str(workdir / "copy"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "nothing added, removed or changed" in result.stdout


def test_against_names_every_kind_of_change(xenlfs, snapshot: Path, workdir: Path):
    copy = workdir / "copy"
    extract(snapshot, copy)
    (copy / "added").write_text("new\n")
    (copy / "empty").unlink()
    (copy / "old").write_text("changed content\n")
    os.chmod(copy / "tmp", 0o755)
    os.chown(copy / "home/user/notes", 0, 0)
    os.removexattr(copy / "usr/bin/ping", "security.capability")
    os.utime(copy / "srv/acl-file", ns=(0, 0))
    (copy / os.fsdecode(b"caf\xe9-latin1")).write_text("changed\n")
    result = xenlfs("snapshot", "verify", "--json", str(snapshot), "--against", str(copy))
    assert result.returncode == 1
    found = json.loads(result.stdout)
    assert found["added"] == ["added"]
    assert found["removed"] == ["empty"]
    assert found["changed_content"] == {"old": ["size", "sha256"],
                                        "caf\udce9-latin1": ["size", "sha256"]}
    metadata = found["changed_metadata"]
    assert metadata["tmp"] == ["mode"]
    assert metadata["home/user/notes"] == ["uid", "gid"]
    assert metadata["srv/acl-file"] == ["mtime_ns"]
    assert "xattrs" in metadata["usr/bin/ping"]
    # the hardlink shares its inode, so it lost the capability too
    assert "xattrs" in metadata["usr/bin/ping6"]
    text = xenlfs("snapshot", "verify", str(snapshot), "--against", str(copy)).stdout
    assert "added (1):\n  /added" in text
    assert "changed metadata" in text
    assert "  /caf\\xe9-latin1  (size, sha256)" in text


def test_list_and_show(xenlfs, snapshot: Path, workdir: Path):
    result = xenlfs("snapshot", "list", "--json", str(workdir))
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert row["archive"] == str(snapshot)
    assert row["status"] == "ok"
    assert row["compression"] == "zstd"
    shown = json.loads(xenlfs("snapshot", "show", "--json", str(snapshot)).stdout)
    assert shown["types"]["char"] == 1 and shown["types"]["block"] == 1
    assert shown["types"]["hardlink"] == 1 and shown["types"]["fifo"] == 1
    assert shown["capabilities"] == ["usr/bin/ping"]
    assert "usr/bin/ping" in shown["setuid"]
    assert shown["meta"]["kernel"] == os.uname().release
    assert any(e["path"] == "/proc" and e["keep_dir"] for e in shown["meta"]["excludes"])
    text = xenlfs("snapshot", "show", str(snapshot)).stdout
    assert "capabilities: /usr/bin/ping" in text


def test_the_hints_own_archive_is_checked_for_wholeness(xenlfs, tree: Path, workdir: Path):
    archive = workdir / "lfs-snapshot.tgz"
    subprocess.run(["tar", "-C", str(tree), "-czpf", str(archive), "."], check=True)
    result = xenlfs("snapshot", "verify", str(archive))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "hashes of its files could not be verified; --no-manifest" in result.stdout
    result = xenlfs("snapshot", "verify", "--no-manifest", str(archive))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "has no manifest, so only its wholeness was checked" in result.stdout
    with open(archive, "r+b") as f:
        f.truncate(archive.stat().st_size - 100)
    assert xenlfs("snapshot", "verify", "--no-manifest", str(archive)).returncode == 1


def test_a_missing_manifest_line_is_one_problem_not_a_shift(xenlfs, snapshot: Path):
    path = Path(f"{snapshot}.manifest.jsonl")
    lines = path.read_text().splitlines(keepends=True)
    gone = json.loads(lines[3])["path"]
    path.write_text("".join(lines[:3] + lines[4:]))
    result = xenlfs("snapshot", "verify", "--json", str(snapshot))
    assert result.returncode == 1
    assert json.loads(result.stdout)["problems"] == [
        f"{gone}: in the archive but not in the manifest"]


def test_a_member_missing_from_the_archive_is_named(xenlfs, tree: Path, workdir: Path):
    archive = workdir / "snap.tar"
    assert xenlfs("snapshot", "create", "--root", str(tree), str(archive)).returncode == 0
    path = Path(f"{archive}.manifest.jsonl")
    lines = path.read_text().splitlines(keepends=True)
    extra = json.loads(lines[2]) | {"path": "usr/bin/zzz-not-archived"}
    path.write_text("".join([*lines, json.dumps(extra) + "\n"]))
    result = xenlfs("snapshot", "verify", "--json", str(archive))
    assert json.loads(result.stdout)["problems"] == [
        "usr/bin/zzz-not-archived: in the manifest but missing from the archive"]


def test_names_with_newlines_are_printed_escaped(xenlfs, tree: Path, workdir: Path):
    (tree / "etc/evil\nname").write_text("x\n")
    out = workdir / "dir\nwith newline"
    out.mkdir()
    archive = out / "snap.tar"
    result = xenlfs("snapshot", "create", "--root", str(tree), str(archive))
    assert result.returncode == 0, result.stderr
    assert f"{workdir}/dir\\nwith newline/snap.tar: " in result.stdout
    listed = xenlfs("snapshot", "list", str(out))
    assert listed.stdout.count("\n") == 2  # the header and the archive's one line
    assert "dir\\nwith newline/snap.tar" in listed.stdout.splitlines()[1]
    shutil.rmtree(tree / "etc")
    (tree / "etc").mkdir()
    (tree / "etc/evil\nname").write_text("changed\n")
    against = xenlfs("snapshot", "verify", str(archive), "--against", str(tree))
    assert "  /etc/evil\\nname  (size, sha256)" in against.stdout, against.stdout
    assert not [line for line in against.stdout.splitlines() if line.startswith("name")]
    path = Path(f"{archive}.manifest.jsonl")
    path.write_text("".join(line for line in path.read_text().splitlines(keepends=True)
                            if "evil" not in line))
    verified = xenlfs("snapshot", "verify", str(archive))
    assert "etc/evil\\nname: in the archive but not in the manifest" in verified.stdout
    assert not [line for line in verified.stdout.splitlines() if line.startswith("name")]
