"""grub add against hostile values, odd grub.cfg files and killed runs (issue 15), checked
with GRUB's own grub-script-check and by reading the written entry back as GRUB's lexer does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.system.host.test_grub import LFS_CFG, backups, boot_tree, script_check
from xenlfs import files


def grub_add(xenlfs, boot: Path, *extra: str, root: str = "/dev/sda2",
             env: dict[str, str] | None = None):
    return xenlfs("grub", "add", "--grub-cfg", str(boot / "grub/grub.cfg"),
                  "--boot-mount", str(boot), "--xen", str(boot / "xen.gz"),
                  "--kernel", str(boot / "vmlinuz-6.1-xen-dom0"), "--root", root, *extra, env=env)


def grub_commands(text: str) -> list[list[str]]:
    """Commands as GRUB's lexer reads them: words split at blanks, quotes and backslashes
    taken away, ';' and newlines ending a command, '{' and '}' words of their own."""
    commands: list[list[str]] = []
    words: list[str] = []
    word: list[str] | None = None
    i = 0

    def end_word() -> None:
        nonlocal word
        if word is not None:
            words.append("".join(word))
            word = None

    def end_command() -> None:
        nonlocal words
        end_word()
        if words:
            commands.append(words)
        words = []

    while i < len(text):
        c = text[i]
        if c == "'":
            close = text.index("'", i + 1)
            word = (word or []) + [text[i + 1:close]]
            i = close
        elif c == '"':
            word = word or []
            i += 1
            while text[i] != '"':
                if text[i] == "\\" and text[i + 1] in '"\\$':
                    i += 1
                word.append(text[i])
                i += 1
        elif c == "\\":
            word = (word or []) + [text[i + 1]]
            i += 1
        elif c == "#" and word is None:
            i = text.find("\n", i) - 1 if "\n" in text[i:] else len(text)
        elif c in " \t":
            end_word()
        elif c in ";\n":
            end_command()
        elif c in "{}" and word is None and (i + 1 == len(text) or text[i + 1] in " \t\n;"):
            end_word()
            words.append(c)
            end_command()
        else:
            word = (word or []) + [c]
        i += 1
    end_command()
    return commands


def xenlfs_block(cfg: Path) -> str:
    text = cfg.read_text()
    return text[text.index("### xenlfs begin xenlfs-xen"):text.index("### xenlfs end xenlfs-xen")]


HOSTILE = [
    ("dom0_mem=1G; reboot", ["dom0_mem=1G;", "reboot"]),
    ("x } menuentry evil { reboot", ["x", "}", "menuentry", "evil", "{", "reboot"]),
    ("a}; menuentry 'evil' { reboot; }", ["a};", "menuentry", "'evil'", "{", "reboot;", "}"]),
    ("$(reboot) ${prefix} `id`", ["$(reboot)", "${prefix}", "`id`"]),
    ('console=hvc0 it\'s "a b" x=\\', ["console=hvc0", "it's", "a b", "x=\\"]),
]


@pytest.mark.parametrize(("value", "words"), HOSTILE)
def test_hostile_args_stay_literal_words_of_their_own_line(xenlfs, tmp_path, value, words):
    boot = tmp_path / "boot"
    cfg = boot_tree(boot)
    result = grub_add(xenlfs, boot, "--xen-args", value, "--kernel-args", value,
                      "--title", f"LFS {value}")
    assert result.returncode == 0, result.stderr
    script_check(cfg)
    assert grub_commands(xenlfs_block(cfg)) == [
        ["menuentry", f"LFS {value}", "--id", "xenlfs-xen", "{"],
        ["multiboot", "/xen.gz", "placeholder", *words],
        ["module", "/vmlinuz-6.1-xen-dom0", "placeholder", "root=/dev/sda2", "ro", *words],
        ["}"]]
    listed = xenlfs("grub", "list", "--grub-cfg", str(cfg))
    assert "evil" not in listed.stdout.replace(f"LFS {value}", "")


@pytest.mark.parametrize("flag", ["--xen-args", "--kernel-args", "--title", "--root"])
@pytest.mark.parametrize("value", ["x\n}\nmenuentry evil {\n\treboot", "x\r", 'a "b'])
def test_what_cannot_be_quoted_is_refused_and_grub_cfg_is_untouched(xenlfs, tmp_path, flag,
                                                                     value):
    boot = tmp_path / "boot"
    cfg = boot_tree(boot)
    if flag == "--title" and value == 'a "b':
        return  # a title is one word: any quote in it is fine
    extra = [flag, value] if flag != "--root" else []
    result = grub_add(xenlfs, boot, *extra, **({"root": value} if flag == "--root" else {}))
    assert result.returncode == 2, result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    assert cfg.read_text() == LFS_CFG and not backups(cfg)


def test_config_file_values_are_checked_as_flags_are(xenlfs, tmp_path):
    boot = tmp_path / "boot"
    cfg = boot_tree(boot)
    conf = tmp_path / "xenlfs.toml"
    conf.write_text('[grub]\nxen_args = "loglvl=all\\n}\\nmenuentry evil {"\n')
    result = grub_add(xenlfs, boot, "--config", str(conf))
    assert result.returncode == 2 and "[grub] xen_args" in result.stderr, result.stderr
    assert cfg.read_text() == LFS_CFG
    conf.write_text('[grub]\nkernel_args = "quiet; reboot"\n')
    assert grub_add(xenlfs, boot, "--config", str(conf)).returncode == 0
    script_check(cfg)
    assert grub_commands(xenlfs_block(cfg))[2][-2:] == ["quiet;", "reboot"]


LATIN1_CFG = "set default=0\nmenuentry 'Démarrer' {\n}\n".encode("latin-1")


@pytest.mark.parametrize("content", [b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)), LATIN1_CFG])
def test_binary_or_latin1_grub_cfg_is_an_error_and_left_alone(xenlfs, tmp_path, content):
    boot = tmp_path / "boot"
    cfg = boot_tree(boot)
    cfg.write_bytes(content)
    for result in (grub_add(xenlfs, boot), xenlfs("grub", "list", "--grub-cfg", str(cfg)),
                   xenlfs("grub", "remove", "--grub-cfg", str(cfg))):
        assert result.returncode == 1, result.stderr
        assert "is not UTF-8" in result.stderr or "NUL byte" in result.stderr
        assert f"{cfg}:" in result.stderr and "internal error" not in result.stderr
    assert cfg.read_bytes() == content and not backups(cfg)


def test_binary_config_file_is_an_error(xenlfs, tmp_path):
    boot = tmp_path / "boot"
    cfg = boot_tree(boot)
    conf = tmp_path / "bin.toml"
    conf.write_bytes(b"[grub]\ntitle = 'x'\n\x00\xff\xfe")
    result = grub_add(xenlfs, boot, "--config", str(conf))
    assert result.returncode == 1 and f"{conf}:3:" in result.stderr, result.stderr
    assert "internal error" not in result.stderr and cfg.read_text() == LFS_CFG


def test_symlinked_grub_cfg_updates_its_target_with_its_mode_and_owner(xenlfs, tmp_path):
    """/boot/grub/grub.cfg -> ../grub2/grub.cfg: the real file gets the entry, keeps mode
    0640 and its owner; the link stays a link; nothing gets mode 0777."""
    boot = tmp_path / "boot"
    boot_tree(boot)
    real = boot / "grub2/grub.cfg"
    real.parent.mkdir()
    (boot / "grub/grub.cfg").rename(real)
    os.chown(real, 1234, 5678)
    real.chmod(0o640)
    (boot / "grub/grub.cfg").symlink_to("../grub2/grub.cfg")
    result = grub_add(xenlfs, boot)
    assert result.returncode == 0, result.stderr
    link = boot / "grub/grub.cfg"
    assert link.is_symlink() and os.readlink(link) == "../grub2/grub.cfg"
    assert "--id xenlfs-xen" in real.read_text()
    script_check(real)
    st = real.stat()
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o640, 1234, 5678)
    made = files.backups_of(real)
    assert len(made) == 1 and made[0].read_text() == LFS_CFG
    st = made[0].stat()
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o640, 1234, 5678)
    assert sorted(p.name for p in (boot / "grub").iterdir()) == ["grub.cfg"]


def test_backups_are_pruned_to_the_setting(xenlfs, tmp_path):
    boot = tmp_path / "boot"
    cfg = boot_tree(boot)
    for n in range(7):
        assert grub_add(xenlfs, boot, "--title", f"Xen {n}").returncode == 0
    kept = files.backups_of(cfg)  # oldest first
    assert len(kept) == 5 and len(backups(cfg)) == 5
    assert ["Xen 1" in kept[0].read_text(), "Xen 5" in kept[-1].read_text()] == [True, True]
    assert grub_add(xenlfs, boot, "--title", "Xen 7", "--backups", "2").returncode == 0
    kept = files.backups_of(cfg)
    assert len(backups(cfg)) == 2 and "Xen 6" in kept[-1].read_text()


def test_a_killed_runs_temp_file_is_removed_by_the_next_run(xenlfs, tmp_path):
    boot = tmp_path / "boot"
    cfg = boot_tree(boot)
    # strace kills grub add (SIGKILL) in place of its second rename(2), grub.cfg's own (the
    # first puts the backup in place): the new text is left in a temporary file.
    killed = subprocess.run(
        ["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=rename",
         "-e", "inject=rename:error=EIO:signal=KILL:when=2", sys.executable, "-m", "xenlfs",
         "grub", "add", "--grub-cfg", str(cfg), "--boot-mount", str(boot), "--xen",
         str(boot / "xen.gz"), "--kernel", str(boot / "vmlinuz-6.1-xen-dom0")],
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, capture_output=True, check=False)
    assert killed.returncode in (-signal.SIGKILL, 128 + signal.SIGKILL), killed.stderr
    assert cfg.read_text() == LFS_CFG
    [stale] = cfg.parent.glob(f"{files.TEMP_PREFIX}grub.cfg.*")
    assert "xenlfs-xen" in stale.read_text()
    assert grub_add(xenlfs, boot).returncode == 0
    assert not stale.exists()
    assert sorted(p.name for p in cfg.parent.iterdir() if not p.name.endswith(".xenlfs-bak")) \
        == ["grub.cfg"]
