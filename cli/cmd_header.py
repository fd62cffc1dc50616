"""``starwrs header decode|encode``: the common header between hex, JSON and text.

* ``starwrs header decode HEX [--text]`` reads a header (or a whole frame) in hex and
  prints its fields as one JSON object, or with ``--text`` its text form
  ``HDR<VERSION=1,ECHO=0,MECH=SYNC,...>``.
* ``starwrs header encode [INPUT]`` reads the JSON object or the text form and prints
  the header's bytes in hex.

``HEX`` / ``INPUT`` default to standard input (also ``-``).  Bad input: one JSON line
``{"error": CODE, "message": "..."}`` on standard error and exit status 1, where CODE
is the status a peer would answer with (7001, 7005, 7008, 7009) -- never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from starwrs.protocol.errors import ErrorCode, ProtocolError
from starwrs.protocol.header import (
    DEFAULT_MAX_FRAME_SIZE,
    HEADER_SIZE,
    MAX_FRAME_LENGTH,
    header_from_dict,
    header_from_text,
    header_to_dict,
    header_to_text,
    pack_header,
    parse_header,
)


def register(sub: Any) -> None:
    """Add the ``header`` sub-command with its ``decode`` and ``encode`` actions."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "header", help="decode or encode the common frame header"
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    decode = actions.add_parser("decode", help="hex header or frame -> JSON (or text form)")
    decode.add_argument("hex", nargs="?", default="-", help="hex digits, or - for stdin")
    decode.add_argument("--text", action="store_true", help="print the HDR<...> text form")
    _max_option(decode)
    decode.set_defaults(func=run_decode)

    encode = actions.add_parser("encode", help="JSON or HDR<...> text -> hex header")
    encode.add_argument("input", nargs="?", default="-", help="JSON or text form, - for stdin")
    _max_option(encode)
    encode.set_defaults(func=run_encode)


def _frame_size(text: str) -> int:
    """``--max-frame-size``: a whole number of bytes, at least one header."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of bytes") from None
    if not HEADER_SIZE <= value <= MAX_FRAME_LENGTH:
        raise argparse.ArgumentTypeError(
            f"{value} is outside {HEADER_SIZE}..{MAX_FRAME_LENGTH} bytes"
        )
    return value


def _max_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-frame-size",
        type=_frame_size,
        default=DEFAULT_MAX_FRAME_SIZE,
        metavar="N",
        help=f"largest frame length accepted (default {DEFAULT_MAX_FRAME_SIZE})",
    )


def _fail(code: int, message: str) -> int:
    print(json.dumps({"error": int(code), "message": message}), file=sys.stderr)
    return 1


def _read(arg: str) -> str:
    return sys.stdin.read() if arg == "-" else arg


def run_decode(args: argparse.Namespace) -> int:
    """Decode a hex header; print JSON or the text form; return the exit status."""
    try:
        text = _read(args.hex).strip()
        data = bytes.fromhex(text.removeprefix("0x"))
    except (ValueError, UnicodeError) as err:
        return _fail(ErrorCode.MALFORMED_FRAME, f"not hexadecimal: {err}")
    try:
        header = parse_header(data, min(args.max_frame_size, MAX_FRAME_LENGTH))
        if len(data) > header.length:
            return _fail(
                ErrorCode.MALFORMED_FRAME,
                f"{len(data) - header.length} bytes after the frame's length {header.length}",
            )
        print(header_to_text(header) if args.text else json.dumps(header_to_dict(header)))
    except ProtocolError as err:
        return _fail(err.code, err.message)
    return 0


def run_encode(args: argparse.Namespace) -> int:
    """Encode a JSON or text-form header; print hex; return the exit status."""
    limit = min(args.max_frame_size, MAX_FRAME_LENGTH)
    try:
        text = _read(args.input).strip()
    except UnicodeError as err:
        return _fail(ErrorCode.MALFORMED_FRAME, f"input is not UTF-8: {err}")
    try:
        if text.startswith("{"):
            try:
                obj = json.loads(text)
            except (ValueError, RecursionError) as err:
                return _fail(ErrorCode.MALFORMED_FRAME, f"not JSON: {err}")
            header = header_from_dict(obj, limit)
        else:
            header = header_from_text(text, limit)
        print(pack_header(header).hex())
    except ProtocolError as err:
        return _fail(err.code, err.message)
    return 0
