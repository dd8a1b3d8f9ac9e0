from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import pytest

from xenlfs.errors import SourceError, UsageError
from xenlfs.settings import SETTINGS, Config, parse_size, read_file, resolve


def test_command_line_wins_over_config_file(xenlfs, tmp_path):
    cfg = tmp_path / "xenlfs.toml"
    cfg.write_text('[xenlfs]\ncache_dir = "/from/file"\nlog_dir = "/logs/from/file"\n')
    result = xenlfs("--config", str(cfg), "config", "show", "--json", "--cache-dir", "/from/flag")
    assert result.returncode == 0, result.stderr
    rows = {row["key"]: row for row in json.loads(result.stdout)}
    assert rows["xenlfs.cache_dir"]["value"] == "/from/flag"
    assert rows["xenlfs.cache_dir"]["source"] == "command line"
    assert rows["xenlfs.log_dir"]["value"] == "/logs/from/file"
    assert rows["xenlfs.log_dir"]["source"] == str(cfg)


def test_flag_before_the_verb_also_wins(xenlfs, tmp_path):
    cfg = tmp_path / "xenlfs.toml"
    cfg.write_text('[xenlfs]\ncache_dir = "/from/file"\n')
    result = xenlfs("--cache-dir", "/early", "--config", str(cfg), "config", "show", "--json")
    rows = {row["key"]: row for row in json.loads(result.stdout)}
    assert rows["xenlfs.cache_dir"]["value"] == "/early"


def test_environment_names_the_config_file(xenlfs, tmp_path):
    cfg = tmp_path / "env.toml"
    cfg.write_text('[xenlfs]\nlog_dir = "/env/logs"\n')
    result = xenlfs("config", "show", "--json", env={"XENLFS_CONFIG": str(cfg)})
    rows = {row["key"]: row for row in json.loads(result.stdout)}
    assert rows["xenlfs.log_dir"]["value"] == "/env/logs"


def test_every_setting_has_a_flag_and_a_file_key():
    # A flag names one setting within its section (verbs take flags from their sections).
    flags = [(s.section, s.flag) for s in SETTINGS]
    keys = [s.key for s in SETTINGS]
    assert len(set(flags)) == len(flags)
    assert len(set(keys)) == len(keys)
    assert all(s.help for s in SETTINGS)


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("[xenlfs]\ncache_dir = \n", ":2:", "not valid TOML"),
        ("[xenlf]\ncache_dir = '/x'\n", ":1:1:", "unknown table [xenlf]"),
        ("cache_dir = '/x'\n", ":1:1:", "'cache_dir' must be a table"),
    ],
)
def test_config_file_errors_say_where(tmp_path, text, where, what):
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    with pytest.raises(SourceError) as caught:
        read_file(cfg)
    assert where in str(caught.value)
    assert what in str(caught.value)


def resolved(tmp_path: Path, text: str, **flags: str) -> Config:
    """Config from this file's text and these flags (by dest), no other config file read."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    return resolve(argparse.Namespace(**flags), cfg)


@pytest.fixture(autouse=True)
def no_user_config(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-config-home"))
    monkeypatch.delenv("XENLFS_CONFIG", raising=False)


def test_the_typed_config_converts_the_file_and_the_flags(tmp_path):
    config = resolved(tmp_path, '[lab]\nmemory = "2G"\nboot_timeout = "30"\n'
                      '[snapshot]\ndir = "~/snaps"\n[guest]\nkernel = "/boot/vmlinuz-domU"\n',
                      setting__guest__memory="1024", setting__kernel__jobs="3")
    assert config.lab.memory == 2 << 30
    assert config.lab.boot_timeout == 30
    assert config.snapshot.dir == Path.home() / "snaps"
    assert config.guest.kernel == "/boot/vmlinuz-domU"
    assert config.guest.memory == 1024 and config.kernel.jobs == 3
    assert config.lab.dom0_memory == 1 << 30 and config.kernel.src is None  # the defaults
    assert config.sources["guest.memory"] == "command line"
    assert config.sources["lab.memory"] == str(tmp_path / "c.toml")
    assert config.sources["lab.cpu"] == "default"


def test_every_row_of_the_table_is_an_attribute_of_the_typed_config(tmp_path):
    config = resolved(tmp_path, "")
    for s in SETTINGS:
        section = getattr(config, s.section)
        assert config.value(s) == getattr(section, s.name) == s.default_value()
    assert {f.name for f in dataclasses.fields(Config)} == {s.section for s in SETTINGS} | {
        "sources"}


def test_the_typed_config_is_frozen(tmp_path):
    config = resolved(tmp_path, "")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.guest.kernel = "/boot/other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.guest = config.guest  # type: ignore[misc]


def test_an_unknown_key_in_the_file_is_an_error_at_its_line(tmp_path):
    with pytest.raises(SourceError) as caught:
        resolved(tmp_path, '[guest]\nkernel = "/k"\n\n  memroy = 256\n')
    assert f"{tmp_path / 'c.toml'}:4:3: unknown setting 'memroy' in [guest]" in str(caught.value)
    assert "did you mean 'memory'?" in str(caught.value)


def test_a_bad_value_names_its_line_or_its_flag(tmp_path):
    with pytest.raises(SourceError) as caught:
        resolved(tmp_path, '[guest]\nmemory = "lots"\n')
    assert ":2:1: bad value for memory" in str(caught.value)
    with pytest.raises(UsageError) as flagged:
        resolved(tmp_path, "", setting__lab__memory="2X")
    assert "argument --memory: expected a size like 512M or 2G" in str(flagged.value)


@pytest.mark.parametrize(
    ("text", "size"),
    [("4096", 4096), ("512M", 512 << 20), ("2G", 2 << 30), ("1GiB", 1 << 30), ("8k", 8192)],
)
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "2X", "-1G", "1.5G"])
def test_parse_size_rejects(text):
    with pytest.raises(ValueError):
        parse_size(text)


def test_an_empty_value_unsets_an_optional_setting_a_file_set(tmp_path):
    # [guest] kernel in a file would make every guest direct-boot: '' on the command line
    # takes it back (an HVM guest then boots from its disk).
    assert resolved(tmp_path, '[guest]\nkernel = "/boot/vmlinuz-domU"\n').guest.kernel == (
        "/boot/vmlinuz-domU")
    cleared = resolved(tmp_path, '[guest]\nkernel = "/boot/vmlinuz-domU"\n',
                       setting__guest__kernel="")
    assert cleared.guest.kernel is None and cleared.sources["guest.kernel"] == "command line"
    assert resolved(tmp_path, '[kernel]\nsrc = ""\n').kernel.src is None
    with pytest.raises(UsageError):  # a setting that has a default cannot be emptied
        resolved(tmp_path, "", setting__guest__memory="")
