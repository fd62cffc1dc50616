"""``starwrs admin``: order entry administration with the deployment's admin certificate.

::

    starwrs admin --state DIR apps USER RM INBX     # replace the applications a user may use
    starwrs admin --state DIR apps USER --add RS    # add to them (--remove takes away)
    starwrs admin --state DIR disable USER           # a disabled user's sessions end
    starwrs admin --state DIR enable USER
    starwrs admin --state DIR brand ENTPID --name "BlueLine Telecom" --logo logo.png \
        --color '#0b5f5a' [--accent '#9a3412'] [--legal TEXT] [--brand ID]
    starwrs admin --state DIR brand ENTPID --reset   # the house brand again
    starwrs admin --state DIR news --user USER --title T --text TEXT   # news (cli/admin_news.py)
    starwrs admin --state DIR tariff load FILE       # tariffs (cli/admin_tariff.py)
    starwrs admin --state DIR rerate --corp C --from DAY --to DAY   # (cli/admin_rerate.py)
    starwrs admin --state DIR collector enroll ENTPID CERT   # collectors (cli/admin_collector.py)

The request goes straight to the order entry proxy over mutual TLS with the
``admin`` certificate from ``STATE``; order entry then tells every dispatcher, so
the change applies from the user's next request.  ``brand`` sets the brand an
enterprise presents to its users (seed 002 claim 92: a reseller's customers see the
reseller); options not given keep their value, ``--brand ID`` names a brand so that
several enterprises present the same one, and the values are checked here with the
rules order entry applies (a PNG, JPEG, GIF or WebP logo of at most 64 KiB;
colours ``#rrggbb``; printable text) before anything is sent.  A brand change
shows at the user's next page load.  Prints the answer message; exit
status 0 on ``ERROR=0``; 1 on an error answer, printed as one line that says what
the code means; 2 for a usage mistake or when order entry cannot be reached.
"""

from __future__ import annotations

import argparse
import base64
import sys
from pathlib import Path
from typing import Any

import trio
from starwrs.cli import admin_collector, admin_datamart, admin_news, admin_tariff
from starwrs.grammar import Member, Message, parse, serialize
from starwrs.grammar.catalogue_oe import MAX_LOGO_BYTES, brand_problem
from starwrs.grammar.codecs import list_group
from starwrs.grammar.errors import MessageError, describe
from starwrs.protocol import ProtocolError, Request, Response
from starwrs.proxies.oe.reference import APPLICATIONS
from starwrs.runtime.channel import PeerGone, ReadTimeout, open_tls_channel
from starwrs.runtime.config import Deployment
from starwrs.runtime.pki import load_pki

_KNOWN_APPS = frozenset(code for code, _ in APPLICATIONS)


def register(sub: Any) -> None:
    """Add the ``admin`` sub-command."""
    parser: argparse.ArgumentParser = sub.add_parser("admin", help="order entry administration")
    parser.add_argument("--state", type=Path, default=Path("state"), help="state directory")
    actions = parser.add_subparsers(dest="action", required=True)
    apps = actions.add_parser(
        "apps", help="replace (or with --add/--remove change) the applications a user may use"
    )
    apps.add_argument("user")
    apps.add_argument("apps", nargs="*", type=_application, help="targets, e.g. RM INBX RS")
    apps.add_argument("--add", nargs="+", type=_application, default=[], metavar="APP")
    apps.add_argument("--remove", nargs="+", type=_application, default=[], metavar="APP")
    for name in ("enable", "disable"):
        act = actions.add_parser(name, help=f"{name} a user")
        act.add_argument("user")
    brand = actions.add_parser("brand", help="set the brand an enterprise presents (resellers)")
    brand.add_argument("entp", metavar="ENTPID", help="the enterprise (8 characters)")
    brand.add_argument("--name", help="the brand's name, shown in the masthead")
    brand.add_argument("--logo", type=Path, metavar="FILE", help="PNG, JPEG, GIF or WebP")
    brand.add_argument("--color", help="masthead colour, #rrggbb")
    brand.add_argument("--accent", help="link and focus colour, #rrggbb")
    brand.add_argument("--legal", help="the short legal line at the foot of every page")
    brand.add_argument("--brand", dest="brand_id", metavar="ID", help="brand id (shared brands)")
    brand.add_argument("--reset", action="store_true", help="present the house brand again")
    admin_datamart.register(actions)
    admin_news.register(actions)
    admin_tariff.register(actions)
    admin_collector.register(actions)
    parser.set_defaults(func=run)


def _application(text: str) -> str:
    """An application a user can be given (order entry's reference list)."""
    value = text.strip().upper()
    if value not in _KNOWN_APPS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an application (known: {', '.join(sorted(_KNOWN_APPS))})"
        )
    return value


def build(args: argparse.Namespace, current: frozenset[str] = frozenset()) -> Message:
    """The admin request message for the parsed arguments.

    *current* is the user's applications now, for ``--add`` / ``--remove``.
    """
    if args.action == "brand":
        return _brand_message(args)
    if args.action == "apps":
        chosen = set(args.apps) if args.apps else set(current)
        chosen = (chosen | set(args.add)) - set(args.remove)
        apps = list_group(sorted(chosen))
        return Message("UAPP", (Member("USERID", args.user), Member("APPS", apps)))
    enabled = "1" if args.action == "enable" else "0"
    return Message("UENB", (Member("USERID", args.user), Member("ENABLED", enabled)))


def _brand_message(args: argparse.Namespace) -> Message:
    members = [Member("ENTPID", args.entp)]
    if args.reset:
        return Message("SBR", (*members, Member("RESET", "1")))
    for key, value in (
        ("BRANDID", args.brand_id),
        ("BRANDNAME", args.name),
        ("COLOR", args.color),
        ("ACCENT", args.accent),
        ("LEGAL", args.legal),
    ):
        if value is not None:
            members.append(Member(key, value))
    logo: bytes | None = getattr(args, "logo_bytes", None)
    if logo is not None:
        members.append(Member("LOGO", base64.b64encode(logo).decode("ascii")))
    return Message("SBR", tuple(members))


def _check_brand(args: argparse.Namespace) -> str | None:
    """One line saying what is wrong with the brand options, or None (reads the logo)."""
    values = (args.brand_id, args.name, args.color, args.accent, args.legal, args.logo)
    if args.reset:
        return None if all(v is None for v in values) else "--reset takes no other option"
    if all(v is None for v in values):
        return "give at least one of --name, --logo, --color, --accent, --legal, --brand"
    if len(args.entp) != 8:
        return f"an enterprise id has 8 characters: {args.entp!r}"
    logo = None
    if args.logo is not None:
        try:
            with args.logo.open("rb") as f:
                logo = f.read(MAX_LOGO_BYTES + 1)
        except OSError as err:
            return f"cannot read the logo {args.logo}: {err.strerror or err}"
        args.logo_bytes = logo
    return brand_problem(
        brand_id=args.brand_id,
        name=args.name,
        color=args.color,
        accent=args.accent,
        legal=args.legal,
        logo=logo,
    )


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


async def _current_apps(deployment: Deployment, user: str) -> frozenset[str]:
    """The user's applications now (GUA as the admin), for --add / --remove."""
    answer = await send(deployment, Message("GUA", (Member("USERID", user),)))
    reply = parse(answer.payload.decode("utf-8", "replace"))
    code = reply.get("ERROR")
    if code != "0":
        raise _Refused(int(code) if isinstance(code, str) and code.isdigit() else 1)
    value = reply.get("APPS")
    items = getattr(value, "items", ()) if value is not None else ()
    return frozenset(i for i in items if isinstance(i, str) and i)


class _Refused(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


async def _perform(deployment: Deployment, args: argparse.Namespace) -> Response:
    current: frozenset[str] = frozenset()
    if args.action == "apps" and (args.add or args.remove) and not args.apps:
        current = await _current_apps(deployment, args.user)
    return await send(deployment, build(args, current))


def _refusal(args: argparse.Namespace, code: int) -> str:
    """One line saying what an error answer means for this action."""
    if args.action == "brand":
        if code == 6115:
            return f"starwrs admin brand: no such enterprise {args.entp!r} (6115)"
        return f"starwrs admin brand {args.entp}: {describe(code) or 'refused'} ({code})"
    if code == 6115:
        return f"starwrs admin {args.action}: no such user {args.user!r} (6115)"
    meaning = describe(code) or "refused"
    return f"starwrs admin {args.action} {args.user}: {meaning} ({code})"


def run(args: argparse.Namespace) -> int:
    """Run one admin action."""
    if args.action == "apps" and args.apps and (args.add or args.remove):
        print("starwrs admin apps: give either a list or --add/--remove, not both", file=sys.stderr)
        return 2
    if args.action == "brand" and (problem := _check_brand(args)) is not None:
        print(f"starwrs admin brand: {problem}", file=sys.stderr)
        return 2
    try:
        deployment = Deployment.load(args.state.resolve())
    except (OSError, KeyError, ValueError, TypeError) as err:
        print(f"starwrs admin: cannot read the deployment in {args.state}: {err}", file=sys.stderr)
        return 2
    try:
        answer = trio.run(_perform, deployment, args)
    except _Refused as refused:
        print(_refusal(args, refused.code), file=sys.stderr)
        return 1
    except (OSError, KeyError, ValueError) as err:
        print(f"starwrs admin: cannot use the deployment in {args.state}: {err}", file=sys.stderr)
        return 2
    except (PeerGone, ReadTimeout, ProtocolError) as err:
        print(f"starwrs admin: order entry unreachable: {err}", file=sys.stderr)
        return 2
    text = answer.payload.decode("utf-8", "replace")
    try:
        code = parse(text).get("ERROR")
    except MessageError:
        code = None
    if code == "0" and answer.status == 0:
        print(text)
        return 0
    number = int(code) if isinstance(code, str) and code.isdigit() else answer.status
    print(_refusal(args, number), file=sys.stderr)
    return 1
