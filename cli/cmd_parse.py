"""``starwrs parse [FILE|-] [--canonical] [--validate] [--service S]``.

Reads one metadata message (UTF-8) from FILE or standard input and prints it as
canonical JSON (the shape documented in :mod:`starwrs.grammar.jsonform`), or with
``--canonical`` as canonical wire text.  ``--validate`` also applies the typed
catalogue.  On bad input: one JSON line ``{"error": CODE, "message": ..., "offset": N}``
on standard error and exit status 1 -- never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from starwrs.grammar import MessageError, parse, serialize
from starwrs.grammar.errors import ErrorCode
from starwrs.grammar.jsonform import dumps


def register(sub: Any) -> None:
    """Add the ``parse`` sub-command."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "parse", help="parse a metadata message and print it as JSON"
    )
    parser.add_argument("file", nargs="?", default="-", help="a file, or - for stdin")
    parser.add_argument("--canonical", action="store_true", help="print canonical wire text")
    parser.add_argument("--validate", action="store_true", help="apply the typed catalogue")
    parser.add_argument(
        "--service",
        choices=["RM", "INBX", "DSS", "OE"],
        help="whose catalogue to validate against (default: by acronym)",
    )
    parser.add_argument("--indent", type=int, default=None, help="pretty-print the JSON")
    parser.set_defaults(func=run)


def _read(path: str) -> str:
    if path == "-":
        data = sys.stdin.buffer.read()
    else:
        with open(path, "rb") as f:
            data = f.read()
    return data.decode("utf-8")


def _fail(code: int, message: str, offset: int = 0) -> int:
    err = {"error": code, "message": message, "offset": offset}
    print(json.dumps(err, ensure_ascii=False), file=sys.stderr)
    return 1


def run(args: argparse.Namespace) -> int:
    """Parse, optionally validate, print; return the exit status."""
    try:
        text = _read(args.file)
    except OSError as err:
        return _fail(ErrorCode.INCORRECT_INPUT, f"cannot read {args.file}: {err.strerror}")
    except UnicodeDecodeError as err:
        return _fail(ErrorCode.UNKNOWN_TOKEN, "input is not UTF-8", err.start)
    # A trailing newline from a file or `echo` is not part of the message.
    if text.endswith("\n"):
        text = text[:-2] if text.endswith("\r\n") else text[:-1]
    try:
        message = parse(text)
        if args.validate:
            from starwrs.grammar.catalogue import validate

            message = validate(message, args.service).to_message()
    except MessageError as err:
        return _fail(int(err.code), err.message, err.offset)
    if args.canonical:
        print(serialize(message))
    else:
        print(dumps(message, indent=args.indent))
    return 0
