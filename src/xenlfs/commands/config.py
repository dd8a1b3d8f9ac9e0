"""`xenlfs config show`: the resolved settings and where each came from."""

from __future__ import annotations

import argparse

from xenlfs import settings, ui
from xenlfs.commands.parser import ArgumentParser, add_group, add_json


def register(verbs: argparse._SubParsersAction[ArgumentParser], common: ArgumentParser) -> None:
    sub = add_group(verbs, "config", "show xenlfs's settings (config file and flags)", common)
    show = sub.add_parser(
        "show", parents=[common], help="print every setting, its value and source",
        description="Print every setting with its value and where it came from "
        "(default, a config file, or the command line).")
    add_json(show)
    show.set_defaults(handler=show_settings)


def show_settings(args: argparse.Namespace, config: settings.Config) -> int:
    rows = [{"key": s.key, "value": config.value(s), "source": config.sources[s.key],
             "flag": s.flag, "help": s.help} for s in settings.SETTINGS]
    if args.json:  # exact values: sizes in bytes, paths as strings, unset as null
        ui.print_json(rows)
        return 0
    table = ui.Table("setting", "value", "from")
    for s, row in zip(settings.SETTINGS, rows, strict=True):
        table.add_row(s.key, shown(s, row["value"]), row["source"])
    table.print()
    return 0


def shown(setting: settings.Setting, value: object) -> str:
    """A value as the user writes it in the file or on the command line: a size as 3 GiB."""
    if value is None:
        return "(not set)"
    if setting.parse is settings.parse_size and isinstance(value, int):
        return ui.size(value)
    return str(value)
