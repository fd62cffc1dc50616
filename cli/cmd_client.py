"""``starwrs client``: log on over HTTPS and send messages through the web server.

::

    starwrs client [--url https://127.0.0.1:8443] [--ca FILE] [--state DIR]
                   --user U [--password P] send 'GRTL<...>'
                   [--mech sync|async|bulk] [--target RM] [--json] [--out FILE]
    starwrs client ... echo [--target DSP]

Each run logs on (``POST /logon``; the password comes from ``--password``, else
the environment variable ``STARWRS_PASSWORD``, else a prompt on a terminal),
sends the message as one frame through ``POST /dispatch`` and logs off.  The
server is verified against ``--ca``, else ``STATE/ca.pem``; the URL defaults to
the web address in ``STATE/deployment.json`` (``--state``, or ``./state`` when it
exists, which is where ``starwrs serve`` puts it).

* ``--mech sync`` (default): print the answer's payload.
* ``--mech async``: submit, then poll with a bounded backoff (0.1 s doubling to
  2 s, for at most ``--poll-timeout`` seconds) and print the final answer.
* ``--mech bulk``: ``send 'F<INBOXID=42>' --mech bulk --out FILE`` downloads the
  resource into ``FILE.part``, resuming from what is there after a broken
  connection (and across runs), checks the sha256 at the end and renames it to
  ``FILE``; prints ``{"out", "bytes", "sha256"}``.
* ``echo``: a connectivity test through web and dispatcher.

``--json`` prints the answer's header fields and payload as one JSON object.
The target defaults to the service whose catalogue knows the message's acronym
(``GRTL`` -> ``RM``, ``F`` -> ``INBX``, ...).

Exit status: 0 on success (``ERROR=0``); 1 on an error answer, printed as one JSON
line ``{"error": code, "message": ...}`` on stderr; 2 on usage or connection
errors (also one JSON line on stderr) -- never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import hashlib
import json
import os
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import trio
from starwrs.grammar import MessageError, parse
from starwrs.grammar.catalogue import SERVICES, lookup
from starwrs.grammar.errors import ErrorCode, describe
from starwrs.protocol import (
    NEED_DATA,
    BulkData,
    Connection,
    ConnectionClosed,
    Download,
    Echo,
    EchoReply,
    Event,
    Frame,
    Pending,
    Poll,
    ProtocolError,
    Request,
    Response,
    Role,
    Submit,
    Ticket,
    decode_frame,
)
from starwrs.protocol.header import header_to_dict
from starwrs.runtime.config import Deployment
from starwrs.runtime.https import ClientError, HttpResponse, HttpsClient
from starwrs.runtime.pki import client_context_for_ca

__all__ = ["register", "run"]

FRAME_TYPE = "application/x-starwrs-frame"
PASSWORD_ENV = "STARWRS_PASSWORD"  # noqa: S105 - the variable's name, not a password
USER_ENV = "STARWRS_USER"
#: bulk download: attempts after a broken connection, and the pause between them
RESUME_ATTEMPTS = 5
_BACKOFF_START = 0.1
_BACKOFF_MAX = 2.0
_LOGOFF_TIMEOUT = 5.0
#: a web server bound to every address is reached on loopback
_LOOPBACK_FOR = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104


class _Exit(Exception):
    """Stop with *status*, printing *obj* as one JSON line on stderr."""

    def __init__(self, status: int, obj: dict[str, Any]) -> None:
        super().__init__(obj.get("message", ""))
        self.status = status
        self.obj = obj


def _usage(message: str) -> _Exit:
    return _Exit(2, {"error": 2, "message": message})


# -- arguments ---------------------------------------------------------------------------


def _common(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """Options accepted both before and after the action (``send``, ``echo``)."""
    default: Any = argparse.SUPPRESS if suppress else None
    parser.add_argument("--url", default=default, help="the web server, https://HOST:PORT")
    parser.add_argument("--ca", type=Path, default=default, help="CA bundle to verify it")
    parser.add_argument(
        "--state", type=Path, default=default, help="state directory of 'starwrs serve'"
    )
    parser.add_argument("--user", default=default, help=f"user id (or ${USER_ENV})")
    parser.add_argument("--password", default=default, help=f"password (better: ${PASSWORD_ENV})")
    parser.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="print header fields and payload as JSON",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=argparse.SUPPRESS if suppress else 90.0,
        help="seconds any network step may take (default 90)",
    )


def _target(text: str) -> str:
    """``--target``: 1-4 visible ASCII characters (PROTOCOL.md section 2)."""
    value = text.strip().upper()
    if not (1 <= len(value) <= 4 and value.isascii() and value.isprintable() and " " not in value):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a target: 1-4 letters or digits, e.g. RM, OE, INBX"
        )
    return value


def register(sub: Any) -> None:
    """Add the ``client`` sub-command with its ``send`` and ``echo`` actions."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "client", help="log on over HTTPS and send a message (or an echo)"
    )
    _common(parser, suppress=False)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    send = actions.add_parser("send", help="send one metadata message and print the answer")
    _common(send, suppress=True)
    send.add_argument("message", help="the message, e.g. 'GRTL<PRODUCT=V>'")
    send.add_argument("--mech", choices=("sync", "async", "bulk"), default="sync")
    send.add_argument(
        "--target", type=_target, help="target service (default: from the acronym)"
    )
    send.add_argument("--out", type=Path, help="write the payload (bulk: the resource) here")
    send.add_argument(
        "--poll-timeout",
        type=float,
        default=300.0,
        help="async: give up polling after this many seconds (default 300)",
    )
    send.set_defaults(func=run)

    echo = actions.add_parser("echo", help="connectivity test through web and dispatcher")
    _common(echo, suppress=True)
    echo.add_argument(
        "--target", type=_target, default="DSP", help="target of the echo frame (default DSP)"
    )
    echo.set_defaults(func=run)


@dataclass(frozen=True)
class _Settings:
    url: str
    ca: Path | None
    user: str
    password: str
    timeout: float


def _settings(args: argparse.Namespace) -> _Settings:
    state: Path | None = args.state
    if state is None and Path("state", "deployment.json").is_file():
        state = Path("state")
    url: str | None = args.url
    if url is None and state is not None:
        try:
            web = Deployment.load(state).web
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise _usage(f"cannot read {state / 'deployment.json'}: {err}") from None
        host = _LOOPBACK_FOR.get(web.host, web.host)
        url = f"https://[{host}]:{web.port}" if ":" in host else f"https://{host}:{web.port}"
    if url is None:
        raise _usage("give --url https://HOST:PORT or --state DIR")
    ca: Path | None = args.ca
    if ca is None and state is not None:
        ca = state / "ca.pem"
    user = args.user or os.environ.get(USER_ENV)
    if not user:
        raise _usage(f"give --user (or set {USER_ENV})")
    password = args.password or os.environ.get(PASSWORD_ENV)
    if not password:
        if not sys.stdin.isatty():
            raise _usage(f"give --password (or set {PASSWORD_ENV})")
        password = getpass.getpass(f"password for {user}: ")
    if args.timeout <= 0:
        raise _usage("--timeout must be positive")
    return _Settings(url, ca, user, password, args.timeout)


def default_target(message: str) -> str:
    """The service whose catalogue knows the message's acronym (``RM`` if none does)."""
    try:
        acronym = parse(message).acronym
    except MessageError:
        return "RM"
    for service in SERVICES:
        if lookup(acronym, service):
            return service
    return "RM"


# -- answers ----------------------------------------------------------------------------


def _http_failure(response: HttpResponse) -> _Exit:
    """An HTTP answer other than success: its JSON error (exit 1) or a bare status (2)."""
    obj = response.json()
    if isinstance(obj, dict) and "error" in obj:
        return _Exit(1, obj)
    return _Exit(2, {"error": response.status, "message": f"HTTP {response.status} from server"})


def _text(payload: bytes) -> str:
    return payload.decode("utf-8", errors="replace")


def _payload_error(payload: bytes) -> int:
    """The ``ERROR=`` of a metadata answer (0 when absent or not a message)."""
    try:
        value = parse(payload.decode("utf-8")).get("ERROR")
    except (UnicodeDecodeError, MessageError):
        return 0
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return 0


def _check_answer(frame: Frame) -> None:
    code = frame.header.status or _payload_error(frame.payload)
    if code not in (0, 1):
        raise _answer_error(code, frame.payload)


def _answer_error(code: int, payload: bytes) -> _Exit:
    """Exit 1 with the code, what it means, and the answer as it came."""
    meaning = describe(code)
    return _Exit(
        1,
        {
            "error": code,
            "message": f"{code} {meaning}" if meaning else f"error {code}",
            "answer": _text(payload),
        },
    )


def _frame_json(frame: Frame, **extra: Any) -> str:
    return json.dumps(
        {"header": header_to_dict(frame.header), "payload": _text(frame.payload), **extra}
    )


class _Client:
    """One logged-on session: frames out through ``POST /dispatch``, frames back."""

    def __init__(self, http: HttpsClient) -> None:
        self.http = http

    async def logon(self, user: str, password: str) -> None:
        body = json.dumps({"user": user, "password": password}).encode()
        response = await self.http.request(
            "POST", "/logon", body=body, headers=[("content-type", "application/json")]
        )
        if response.status != 200:
            raise _http_failure(response)

    async def logoff(self) -> None:
        with trio.move_on_after(_LOGOFF_TIMEOUT) as scope:
            scope.shield = True
            with contextlib.suppress(ClientError):
                await self.http.request("POST", "/logoff")

    async def exchange(self, conn: Connection, event: Event) -> tuple[Frame, Event]:
        """Send *event* (one frame) and return the answer frame and its event."""
        data = conn.send(event)
        response = await self.http.request(
            "POST", "/dispatch", body=data, headers=[("content-type", FRAME_TYPE)]
        )
        if response.status != 200:
            raise _http_failure(response)
        try:
            frame = decode_frame(response.body)
            conn.receive_data(response.body)
            answer = conn.next_event()
        except ProtocolError as err:
            raise _Exit(
                2, {"error": int(err.code), "message": f"bad answer: {err.message}"}
            ) from None
        assert answer is not NEED_DATA
        return frame, answer


async def _send_sync(client: _Client, message: bytes, target: str) -> Frame:
    frame, _ = await client.exchange(Connection(Role.CLIENT), Request(target, message))
    return frame


async def _send_async(client: _Client, message: bytes, target: str, poll_timeout: float) -> Frame:
    frame, answer = await client.exchange(Connection(Role.CLIENT), Submit(target, message))
    if not isinstance(answer, Ticket):
        return frame  # refused: an error answer instead of a ticket
    ticket = answer.ticket
    deadline = trio.current_time() + poll_timeout
    pause = _BACKOFF_START
    while True:
        frame, answer = await client.exchange(Connection(Role.CLIENT), Poll(ticket, target))
        if not isinstance(answer, Pending):
            return frame
        if trio.current_time() + pause > deadline:
            raise _Exit(
                1,
                {
                    "error": int(ErrorCode.PROXY_TIMEOUT),
                    "message": f"no result within {poll_timeout:g} s",
                },
            )
        await trio.sleep(pause)
        pause = min(pause * 2, _BACKOFF_MAX)


async def _echo(client: _Client, target: str) -> tuple[Frame, float]:
    started = trio.current_time()
    frame, answer = await client.exchange(Connection(Role.CLIENT), Echo(target))
    if not isinstance(answer, EchoReply):
        _check_answer(frame)
    return frame, trio.current_time() - started


# -- bulk download -------------------------------------------------------------------------


def _hash_file(path: Path) -> tuple[int, Any]:
    hasher = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while block := f.read(1024 * 1024):
            hasher.update(block)
            size += len(block)
    return size, hasher


def _bad_answer(err: ProtocolError) -> _Exit:
    if err.code == ErrorCode.CHECKSUM_MISMATCH:
        return _Exit(1, {"error": int(err.code), "message": err.message})
    return _Exit(2, {"error": int(err.code), "message": f"bad answer: {err.message}"})


async def _get_once(client: _Client, download: Download, out: BinaryIO) -> None:
    """One bulk get from ``download.offset``, appending to *out* frame by frame.

    Returns when the transfer is done or the answer was cut short.

    Raises:
        _Exit: an error answer, or a checksum mismatch (7011).
        ClientError: the connection broke.
    """
    conn = Connection(Role.CLIENT)
    data = conn.send(download.request())
    async with client.http.stream(
        "POST", "/dispatch", body=data, headers=[("content-type", FRAME_TYPE)]
    ) as response:
        if response.status != 200:
            parts: list[bytes] = []
            while (chunk := await response.receive_some()) is not None:
                parts.append(chunk)
            raise _http_failure(HttpResponse(response.status, response.headers, b"".join(parts)))
        while (chunk := await response.receive_some()) is not None:
            conn.receive_data(chunk)
            while True:
                try:
                    event = conn.next_event()
                    if isinstance(event, BulkData):
                        out.write(download.feed(event))
                except ProtocolError as err:
                    raise _bad_answer(err) from None
                if isinstance(event, Response):
                    raise _answer_error(event.status, event.payload)
                if download.done or event is NEED_DATA or isinstance(event, ConnectionClosed):
                    break
            if download.done:
                with contextlib.suppress(ClientError):  # read the end for keep-alive
                    while await response.receive_some() is not None:
                        pass
                return


async def _download(client: _Client, resource: str, target: str, out_path: Path) -> dict[str, Any]:
    part = out_path.with_name(out_path.name + ".part")
    have, hasher = _hash_file(part) if part.exists() else (0, hashlib.sha256())
    download = Download.resume(resource, have, hasher, target=target)
    failures = 0
    pause = _BACKOFF_START
    try:
        with part.open("ab") as out:
            while True:
                before = download.offset
                problem = f"the answer stopped at {before} bytes"
                try:
                    await _get_once(client, download, out)
                except ClientError as err:
                    problem = str(err)
                out.flush()
                if download.done:
                    break
                if download.offset > before:
                    failures, pause = 0, _BACKOFF_START
                failures += 1
                if failures > RESUME_ATTEMPTS:
                    raise ClientError(f"download failed at {download.offset} bytes: {problem}")
                await client.http.aclose()
                await trio.sleep(pause)
                pause = min(pause * 2, _BACKOFF_MAX)
    except _Exit as err:
        if err.obj.get("error") == ErrorCode.CHECKSUM_MISMATCH:
            part.unlink(missing_ok=True)
        raise
    part.replace(out_path)
    size, digest = _hash_file(out_path)
    return {"out": str(out_path), "bytes": size, "sha256": digest.hexdigest()}


# -- main -------------------------------------------------------------------------------


async def _run(args: argparse.Namespace, settings: _Settings) -> int:
    try:
        context = client_context_for_ca(settings.ca)
    except (OSError, ValueError, ssl.SSLError) as err:
        raise _usage(f"cannot load the CA {settings.ca}: {err}") from None
    http = HttpsClient(settings.url, context, timeout=settings.timeout)
    client = _Client(http)
    try:
        await client.logon(settings.user, settings.password)
        try:
            return await _action(client, args)
        finally:
            await client.logoff()
    finally:
        await http.aclose()


async def _action(client: _Client, args: argparse.Namespace) -> int:
    as_json: bool = args.json
    if args.action == "echo":
        frame, seconds = await _echo(client, args.target)
        if as_json:
            print(_frame_json(frame, seconds=round(seconds, 6)))
        else:
            print(f"echo ok: {args.target or '-'} answered in {seconds * 1000:.1f} ms")
        return 0
    message: str = args.message
    target: str = args.target or default_target(message)
    if args.mech == "bulk":
        if args.out is None:
            raise _usage("--mech bulk needs --out FILE")
        result = await _download(client, message, target, args.out)
        print(json.dumps(result))
        return 0
    if args.mech == "async":
        frame = await _send_async(client, message.encode(), target, args.poll_timeout)
    else:
        frame = await _send_sync(client, message.encode(), target)
    _check_answer(frame)
    if args.out is not None:
        args.out.write_bytes(frame.payload)
        if as_json:
            print(_frame_json(frame, out=str(args.out)))
    elif as_json:
        print(_frame_json(frame))
    else:
        print(_text(frame.payload))
    return 0


def run(args: argparse.Namespace) -> int:
    """Run ``starwrs client``; return the exit status (0, 1 or 2)."""
    try:
        settings = _settings(args)
        if args.action == "send" and args.mech == "bulk" and args.out is None:
            raise _usage("--mech bulk needs --out FILE")
        return trio.run(_run, args, settings)
    except _Exit as err:
        print(json.dumps(err.obj), file=sys.stderr)
        return err.status
    except ClientError as err:
        print(json.dumps({"error": 2, "message": str(err)}), file=sys.stderr)
        return 2
    except OSError as err:
        print(
            json.dumps({"error": 2, "message": f"{err.__class__.__name__}: {err}"}), file=sys.stderr
        )
        return 2
