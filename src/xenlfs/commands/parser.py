"""The argparse pieces every verb's parser is built from (cli.py builds the top level)."""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from typing import NoReturn

from xenlfs.errors import ExitCode


class ArgumentParser(argparse.ArgumentParser):
    """argparse that suggests the verb you meant and exits with the documented usage code."""

    def error(self, message: str) -> NoReturn:
        match = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if match:
            choices = re.findall(r"'([^']*)'", match[2])
            close = difflib.get_close_matches(match[1], choices, 1)
            if close:
                message += f"; did you mean '{close[0]}'?"
        self.print_usage(sys.stderr)
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message}\n")


def add_dry_run(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true",
                        help="print exactly what would be done and change nothing")


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def add_group(verbs: argparse._SubParsersAction[ArgumentParser], name: str, help: str,
              common: ArgumentParser) -> argparse._SubParsersAction[ArgumentParser]:
    """A verb with sub-verbs (e.g. 'snapshot create'); bare 'xenlfs snapshot' prints its help."""
    group = verbs.add_parser(name, help=help, description=help, parents=[common])
    group.set_defaults(group_parser=group)
    sub = group.add_subparsers(dest=f"{name}_verb", metavar="VERB", parser_class=ArgumentParser)
    return sub
