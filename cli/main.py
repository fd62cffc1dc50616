"""The ``starwrs`` command line.

Theory of operation
-------------------
Each sub-command lives in its own module ``starwrs.cli.cmd_<name>`` that exposes
``register(subparsers)``; the module adds its parser and sets ``func`` to a
callable taking the parsed namespace and returning the exit status.  Modules are
imported lazily by name so a broken or slow import in one command never affects
another, and ``starwrs --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import NoReturn

#: sub-command name -> module (relative to this package) that registers it
COMMANDS: dict[str, str] = {
    "parse": "cmd_parse",
    "header": "cmd_header",
    "bench": "cmd_bench",
    "client": "cmd_client",
    "serve": "cmd_serve",
    "run": "cmd_run",
    "admin": "cmd_admin",
    "status": "cmd_status",
    "report": "cmd_report",
    "datamart": "cmd_datamart",
    "collector": "cmd_collector",
}


class Parser(argparse.ArgumentParser):
    """An argument parser whose every complaint is one line on stderr, exit 2.

    argparse prints the whole usage block before the error; a user who typed one
    wrong option needs the error and where to look, so this prints
    ``starwrs serve: error: … (starwrs serve --help)`` and nothing else.  Sub-command
    parsers inherit the class (argparse creates them with ``type(self)``).
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {printable(message)} (see {self.prog} --help)\n")


def printable(text: str) -> str:
    """*text* with every character that is not printable escaped (``\\x1e``): an
    argument the user typed must not break the one line of an error in two."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def version() -> str:
    """The installed distribution's version."""
    try:
        return metadata.version("starwrs")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare tree
        return "unknown"


def command_of(argv: Sequence[str] | None) -> str | None:
    """The sub-command *argv* names, when it names one before any top-level option."""
    args = sys.argv[1:] if argv is None else list(argv)
    return args[0] if args and args[0] in COMMANDS else None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """Return the top-level parser with the sub-commands registered.

    Every command module imports what its command needs (trio, DuckDB, pyarrow, …),
    about a second of imports together; a command line that names its command imports
    only that command's module (the others get a bare placeholder parser, so argparse
    still knows every name).  ``starwrs --help`` and mistakes import them all.
    """
    parser = Parser(
        prog="starwrs",
        description="starwrs: secure web reporting for telecom call detail data.",
    )
    parser.add_argument("--version", action="version", version=f"starwrs {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = command_of(argv)
    for name, module_name in COMMANDS.items():
        if wanted is not None and name != wanted:
            sub.add_parser(name)  # never chosen: the command line named another one
            continue
        try:
            module = importlib.import_module(f"{__package__}.{module_name}")
        except ModuleNotFoundError as err:
            if err.name != f"{__package__}.{module_name}":
                raise
            continue  # command not built yet
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``starwrs`` console script; returns the exit status."""
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        status: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as err:  # the last line of defence: never a traceback
        # Every command reports the mistakes it knows of itself; this catches the
        # ones nobody foresaw, still as one line, with the detail in the log level.
        print(f"starwrs {args.command}: {err.__class__.__name__}: {err}", file=sys.stderr)
        return 1
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
