"""``starwrs admin news``: put a news item into a user's inbox, or every user's of an enterprise.

::

    starwrs admin --state DIR news --user jeanvnet2 --title "Maintenance" --text "Sunday 2-4 GMT"
    starwrs admin --state DIR news --enterprise 00022924 --title T --file notice.txt \
        [--notify none|email|page|both] [--priority 1-5]

The recipients come from order entry (``GUN`` for a user, ``GEU`` for an enterprise's
enabled users) and the item goes to the inbox as a bulk put, category F (news), with
the deployment's ``admin`` certificate (docs/runtime.md "The inbox").  The item's LOC
is derived from the title, the text and the recipient, so running the same command
again adds nothing twice (the inbox answers 5005: "already there").  Prints one line
per recipient; exit 0 when every recipient has the item, 1 when the inbox or order
entry refused one, 2 for a usage mistake or when a server cannot be reached.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path
from typing import Any

import trio
from starwrs.grammar import Member, Message, MessageError, parse, serialize
from starwrs.grammar.errors import StarwrsError, describe
from starwrs.grammar.values import text_items
from starwrs.protocol import ProtocolError, Request
from starwrs.runtime.channel import PeerGone, ReadTimeout
from starwrs.runtime.config import Deployment
from starwrs.runtime.pki import load_pki
from starwrs.runtime.pool import ProxyPool
from starwrs.runtime.transfer import upload

_NOTIFY = {"none": "0", "page": "1", "email": "2", "both": "3"}


def register(actions: Any) -> None:
    """Add ``news`` to ``starwrs admin``."""
    news = actions.add_parser("news", help="send news to a user's or an enterprise's inbox")
    whom = news.add_mutually_exclusive_group(required=True)
    whom.add_argument("--user", help="one user")
    whom.add_argument("--enterprise", metavar="ENTPID", help="every enabled user of it")
    news.add_argument("--title", required=True, type=_title, help="the short text in the list")
    body = news.add_mutually_exclusive_group(required=True)
    body.add_argument("--text", help="the news itself")
    body.add_argument("--file", type=Path, help="a UTF-8 text file with the news (- for stdin)")
    news.add_argument("--notify", choices=sorted(_NOTIFY), default="none", help="also tell them")
    news.add_argument("--priority", type=int, choices=range(1, 6), default=4, metavar="1-5")
    news.set_defaults(func=run)


def _title(text: str) -> str:
    if not text.strip() or len(text) > 255:
        raise argparse.ArgumentTypeError("a title is 1-255 characters")
    return text


class _Refused(Exception):
    def __init__(self, what: str, code: int) -> None:
        super().__init__(what)
        self.what = what
        self.code = code


async def _ask_oe(pool: ProxyPool, message: Message, what: str) -> Message:
    answer = await pool.request("OE", Request("OE", serialize(message).encode()))
    try:
        reply = parse(answer.payload.decode("utf-8"))
    except (UnicodeDecodeError, MessageError):
        raise _Refused(what, answer.status or 1) from None
    code = reply.get("ERROR")
    if code != "0":
        raise _Refused(what, int(code) if isinstance(code, str) and code.isdigit() else 1)
    return reply


async def recipients(pool: ProxyPool, user: str | None, entp: str | None) -> list[tuple[str, str]]:
    """``(USERID, ENTPID)`` of every recipient, from order entry."""
    if user is not None:
        reply = await _ask_oe(pool, Message("GUN", (Member("USERID", user),)), f"user {user!r}")
        return [(user, str(reply.get("ENTPID")))]
    assert entp is not None
    reply = await _ask_oe(pool, Message("GEU", (Member("ENTPID", entp),)), f"enterprise {entp!r}")
    users = reply.get("USERS")
    return [(u, entp) for u in (text_items(users) if users is not None else ()) if u]


def news_add(
    user: str, entp: str, title: str, text: bytes, *, notify: str = "0", priority: int = 4
) -> str:
    """The ``A`` of one news item (PART=D, the only half news has)."""
    digest = hashlib.sha256(b"\0".join([title.encode(), text, user.encode(), entp.encode()]))
    members = [
        Member("CATEGORY", "F"),
        Member("TYPE", "news"),
        Member("USERID", user),
        Member("ENTPID", entp),
        Member("PRIORITY", str(priority)),
        Member("COMPRESS", "0"),
        Member("UNOTIFY", notify),
        Member("LOC", f"news-{digest.hexdigest()[:24]}.txt"),
        Member("FSIZE", str(len(text))),
        Member("RPTTITLE", title),
        Member("PART", "D"),
    ]
    if notify != "0":
        members.insert(0, Member("SEV", "3"))
    return serialize(Message("A", tuple(members)))


async def send_news(deployment: Deployment, args: argparse.Namespace, text: bytes) -> int:
    pki = load_pki(deployment.state_dir)
    routes = {t: a for t, a in deployment.proxies.items() if t in ("OE", "INBX")}
    pool = ProxyPool(routes, pki.internal_client_context("admin"), deployment.limits)
    status = 0
    try:
        people = await recipients(pool, args.user, args.enterprise)
        if not people:
            print(f"starwrs admin news: enterprise {args.enterprise} has no users", file=sys.stderr)
            return 1
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "news.txt"
            path.write_bytes(text)
            for user, entp in people:
                resource = news_add(
                    user, entp, args.title, text, notify=_NOTIFY[args.notify],
                    priority=args.priority,
                )  # fmt: skip
                channel = await pool.connect("INBX")
                async with channel:
                    answer = await upload(channel, resource, path, target="INBX")
                reply = answer.payload.decode("utf-8", "replace")
                code = answer.status
                if code == 0:
                    print(f"{user}@{entp}: {reply}")
                elif code == 5005:
                    print(f"{user}@{entp}: already there ({reply})")
                else:
                    print(f"{user}@{entp}: {describe(code) or 'refused'} ({code})", file=sys.stderr)
                    status = 1
    finally:
        await pool.aclose()
    return status


def run(args: argparse.Namespace) -> int:
    """Send one news item to each recipient."""
    try:
        if args.file is not None:
            text = sys.stdin.buffer.read() if str(args.file) == "-" else args.file.read_bytes()
        else:
            text = args.text.encode("utf-8")
        text.decode("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        print(f"starwrs admin news: cannot read the news text: {err}", file=sys.stderr)
        return 2
    if not text.strip():
        print("starwrs admin news: the news text is empty", file=sys.stderr)
        return 2
    try:
        deployment = Deployment.load(args.state.resolve())
    except (OSError, KeyError, ValueError, TypeError) as err:
        print(f"starwrs admin: cannot read the deployment in {args.state}: {err}", file=sys.stderr)
        return 2
    try:
        return trio.run(send_news, deployment, args, text)
    except _Refused as refused:
        meaning = describe(refused.code) or "refused"
        print(f"starwrs admin news: {refused.what}: {meaning} ({refused.code})", file=sys.stderr)
        return 1
    except StarwrsError as err:
        print(f"starwrs admin news: {err.message} ({int(err.code)})", file=sys.stderr)
        return 2
    except (OSError, PeerGone, ReadTimeout, ProtocolError) as err:
        print(f"starwrs admin news: inbox or order entry unreachable: {err}", file=sys.stderr)
        return 2
