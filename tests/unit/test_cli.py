from __future__ import annotations

from xenlfs import __version__


def test_help_lists_verbs_and_exit_codes(xenlfs):
    result = xenlfs("--help")
    assert result.returncode == 0
    assert "config" in result.stdout
    assert "exit codes:" in result.stdout


def test_version(xenlfs):
    result = xenlfs("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"xenlfs {__version__}"


def test_mistyped_verb_is_a_usage_error_with_a_suggestion(xenlfs):
    result = xenlfs("confg")
    assert result.returncode == 2
    assert "invalid choice: 'confg'" in result.stderr
    assert "did you mean 'config'?" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_option_names_the_argument(xenlfs):
    result = xenlfs("config", "show", "--no-such-flag")
    assert result.returncode == 2
    assert "--no-such-flag" in result.stderr


def test_group_without_subverb_prints_its_help(xenlfs):
    result = xenlfs("config")
    assert result.returncode == 2
    assert "show" in result.stderr


def test_every_verb_has_help(xenlfs):
    from xenlfs.cli import build_parser

    parser = build_parser()
    stack = [([], parser)]
    seen = 0
    while stack:
        path, p = stack.pop()
        for action in p._actions:
            if action.__class__.__name__ == "_SubParsersAction":
                for name, sub in action.choices.items():
                    stack.append(([*path, name], sub))
        if path:
            seen += 1
            result = xenlfs(*path, "--help")
            assert result.returncode == 0, path
            assert "usage: xenlfs" in result.stdout
    assert seen >= 2


def test_bad_config_file_is_reported_with_position_and_no_traceback(xenlfs, tmp_path):
    cfg = tmp_path / "x.toml"
    cfg.write_text("[xenlfs]\ncache_dri = '/tmp'\n")
    result = xenlfs("--config", str(cfg), "config", "show")
    assert result.returncode == 1
    assert f"{cfg}:2:1: unknown setting 'cache_dri' in [xenlfs]" in result.stderr
    assert "did you mean 'cache_dir'?" in result.stderr
    assert "Traceback" not in result.stderr


def test_debug_shows_traceback_for_errors(xenlfs, tmp_path):
    cfg = tmp_path / "x.toml"
    cfg.write_text("[xenlfs\n")
    quiet = xenlfs("--config", str(cfg), "config", "show")
    loud = xenlfs("--debug", "--config", str(cfg), "config", "show")
    assert quiet.returncode == loud.returncode == 1
    assert "Traceback" not in quiet.stderr
    assert "Traceback" in loud.stderr
