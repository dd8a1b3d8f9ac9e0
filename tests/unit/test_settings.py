from __future__ import annotations

import json

import pytest

from xenlfs.errors import SourceError
from xenlfs.settings import SETTINGS, parse_size, read_file


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
