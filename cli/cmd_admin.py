"""``starwrs admin``: order entry administration with the deployment's admin certificate.

::

    starwrs admin --state DIR apps USER RM INBX     # set the applications a user may use
    starwrs admin --state DIR disable USER           # a disabled user's sessions end
    starwrs admin --state DIR enable USER

The request goes straight to the order entry proxy over mutual TLS with the
``admin`` certificate from ``STATE``; order entry then tells every dispatcher, so
the change applies from the user's next request.  Prints the answer message; exit
status 0 on ``ERROR=0``, 1 on an error answer, 2 when order entry cannot be reached.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import trio
from starwrs.grammar import Member, Message, parse, serialize
from starwrs.grammar.codecs import list_group
from starwrs.grammar.errors import MessageError
from starwrs.protocol import ProtocolError, Request, Response
from starwrs.runtime.channel import PeerGone, ReadTimeout, open_tls_channel
from starwrs.runtime.config import Deployment
from starwrs.runtime.pki import load_pki


def register(sub: Any) -> None:
    """Add the ``admin`` sub-command."""
    parser: argparse.ArgumentParser = sub.add_parser("admin", help="order entry administration")
    parser.add_argument("--state", type=Path, default=Path("state"), help="state directory")
    actions = parser.add_subparsers(dest="action", required=True)
    apps = actions.add_parser("apps", help="set the applications a user may use")
    apps.add_argument("user")
    apps.add_argument("apps", nargs="*", help="targets, e.g. RM INBX RS")
    for name in ("enable", "disable"):
        act = actions.add_parser(name, help=f"{name} a user")
        act.add_argument("user")
    parser.set_defaults(func=run)


def build(args: argparse.Namespace) -> Message:
    """The admin request message for the parsed arguments."""
    if args.action == "apps":
        apps = list_group([a.strip().upper() for a in args.apps])
        return Message("UAPP", (Member("USERID", args.user), Member("APPS", apps)))
    enabled = "1" if args.action == "enable" else "0"
    return Message("UENB", (Member("USERID", args.user), Member("ENABLED", enabled)))


async def send(deployment: Deployment, message: Message) -> Response:
    """Send *message* to order entry as the admin; return its answer."""
    pki = load_pki(deployment.state_dir)
    address = deployment.proxies["OE"]
    channel = await open_tls_channel(
        address.host,
        address.port,
        pki.internal_client_context("admin"),
        server_hostname="oe",
        connect_timeout=deployment.limits.connect_timeout,
        read_timeout=deployment.limits.proxy_timeout,
    )
    async with channel:
        await channel.send(Request("OE", serialize(message).encode()))
        answer = await channel.receive()
    if not isinstance(answer, Response):
        raise PeerGone(f"unexpected answer {answer!r}")
    return answer


def run(args: argparse.Namespace) -> int:
    """Run one admin action."""
    try:
        deployment = Deployment.load(args.state.resolve())
        answer = trio.run(send, deployment, build(args))
    except (OSError, KeyError, ValueError) as err:
        print(f"starwrs admin: cannot read the deployment in {args.state}: {err}", file=sys.stderr)
        return 2
    except (PeerGone, ReadTimeout, ProtocolError) as err:
        print(f"starwrs admin: order entry unreachable: {err}", file=sys.stderr)
        return 2
    text = answer.payload.decode("utf-8", "replace")
    print(text)
    try:
        ok = parse(text).get("ERROR") == "0"
    except MessageError:
        ok = False
    return 0 if ok and answer.status == 0 else 1
