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
    rows = [{"key": s.key, "value": str(config[s.key]), "source": config.sources[s.key],
             "flag": s.flag, "help": s.help} for s in settings.SETTINGS]
    if args.json:
        ui.print_json(rows)
        return 0
    for row in rows:
        ui.stdout.print(f"{row['key']} = {row['value']}  [dim]({row['source']})[/dim]")
    return 0
