"""proxies/inbox: A/D/L/F/U answered with Z, every Appendix G / E code, users kept apart.

Real TLS listeners on loopback with the deployment's certificates, real SQLite and
real files on disk (tests/proxies/inbox_rig.py).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from starwrs.grammar import Group, Message, Seq, serialize
from starwrs.grammar.errors import ErrorCode as E
from starwrs.proxies.framework import Caller
from starwrs.proxies.inbox.server import make_inbox_proxy

from .inbox_rig import LYNNE, T0, TFN, add_text, open_rig, sha

CSV = b"0,54,36\r\nD,Boston,12.50\r\nT,,12.50\r\n"
MTD = b"<METADATA=<CRITERIA=<Name=City Summary>>>"


def rows(answer: Message) -> list[list[str]]:
    """The ITEMS of a list answer as rows of text."""
    items = answer.get("ITEMS")
    assert isinstance(items, Group)
    out: list[list[str]] = []
    for member in items.members:
        groups = member.value.parts if isinstance(member.value, Seq) else (member.value,)
        for group in groups:
            assert isinstance(group, Group)
            out.append([str(cell.value) for cell in group.members])
    return out


def files(rig_state: Path, kind: str) -> list[Path]:
    return sorted((rig_state / "inbox" / kind).iterdir())


async def test_a_report_is_visible_once_both_halves_are_in(tmp_path: Path) -> None:
    async with open_rig(tmp_path) as rig:
        status, answer = await rig.put(add_text(size=len(CSV)), CSV)
        assert status == 0
        assert answer.get("INBOXID") is None  # the metadata is still missing
        assert (answer.get("PART"), answer.get("SIZE"), answer.get("SHA256")) == (
            "D",
            str(len(CSV)),
            sha(CSV),
        )
        status, listed = await rig.send("L<ENTPID=00022924,USERID=jeanvnet2,CATEGORY=R>")
        assert status == 0
        assert rows(listed) == []

        status, answer = await rig.put(
            add_text(loc="/inbox/files/rm/r1_city.mtd", part="M", size=len(CSV)), MTD, cert="rm"
        )
        assert status == 0, answer
        inbox_id = int(str(answer.get("INBOXID")))

        status, listed = await rig.send("L<ENTPID=00022924,USERID=jeanvnet2,CATEGORY=R>")
        assert (listed.get("REQ"), listed.get("ERROR"), listed.get("TTL")) == ("L", "0", "45")
        assert listed.get("INBOXID") == str(inbox_id)
        assert rows(listed) == [
            [
                str(inbox_id),
                "R",
                "priced",
                "City Summary, Outbound",
                "City Summary",
                "2025-02-28 15:18",
                str(len(CSV)),
                str(len(MTD)),
                "0",
                "2025-04-15 12:00",  # 45 days after T0
            ]
        ]
        # the Report Manager's synchronous A: done, then "already added"
        text = add_text(loc="r1_city.csv", part=None, size=len(CSV))
        assert (await rig.send(text, user=None, cert="rm"))[1].get("ERROR") == "0"
        status, again = await rig.send(text, user=None, cert="rm")
        assert (status, again.get("ERROR"), again.get("INBOXID")) == (5005, "5005", str(inbox_id))
        # data and metadata are kept apart, under names the inbox chose
        (data,) = files(tmp_path, "data")
        (meta,) = files(tmp_path, "meta")
        assert data.read_bytes() == CSV
        assert meta.read_bytes() == MTD
        assert "r1_city" not in data.name + meta.name


async def test_metadata_first_then_data_and_the_same_half_again_is_5005(tmp_path: Path) -> None:
    async with open_rig(tmp_path) as rig:
        meta = add_text(loc="r2.mtd", part="M", size=len(CSV))
        assert (await rig.put(meta, MTD, cert="rm"))[1].get("INBOXID") is None
        data = add_text(loc="r2.csv_zip", size=len(CSV))
        status, answer = await rig.put(data, CSV)
        assert status == 0
        inbox_id = answer.get("INBOXID")
        assert inbox_id is not None
        status, again = await rig.put(data, CSV)  # an outbox resending after a lost answer
        assert (status, again.get("REQ"), again.get("INBOXID")) == (5005, "A", inbox_id)
        assert (await rig.put(meta, MTD, cert="rm"))[0] == 5005
        assert len(files(tmp_path, "data")) == len(files(tmp_path, "meta")) == 1
        # deleted, the item still is not added again
        assert (await rig.send(f"D<INBOXID={inbox_id}>"))[0] == 0
        status, gone = await rig.put(data, CSV)
        assert (status, gone.get("INBOXID")) == (5005, None)
        assert files(tmp_path, "data") == []


async def test_news_and_failed_runs_need_no_metadata(tmp_path: Path) -> None:
    async with open_rig(tmp_path) as rig:
        news = add_text(category="F", loc="news-1.txt", size=5, title="Maintenance")
        status, _ = await rig.put(news, b"Sunday", cert="admin")
        assert status == 5160  # FSIZE says 5, the put 6
        status, answer = await rig.put(news.replace("FSIZE=5", "FSIZE=6"), b"Sunday", cert="admin")
        assert status == 0
        news_id = answer.get("INBOXID")
        failed = add_text(loc="r9.txt", size=6, extra="ERRFLAG=1")
        status, answer = await rig.put(failed, b"failed")
        failed_id = answer.get("INBOXID")
        assert status == 0
        assert failed_id is not None
        _, listed = await rig.send("L<ENTPID=00022924,USERID=jeanvnet2,CATEGORY=F>")
        assert [row[:4] for row in rows(listed)] == [[news_id, "F", "priced", "Maintenance"]]
        _, reports = await rig.send("L<ENTPID=00022924,USERID=jeanvnet2,CATEGORY=R>")
        assert [row[0] for row in rows(reports)] == [failed_id]
        for inbox_id in (news_id, failed_id):
            status, answer = await rig.send(f"F<INBOXID={inbox_id},PART=M>")
            assert (status, answer.get("REQ")) == (5166, "F")


async def test_synchronous_add_says_which_half_is_missing(tmp_path: Path) -> None:
    async with open_rig(tmp_path) as rig:
        text = add_text(loc="r3.csv", part=None, size=len(CSV))
        status, answer = await rig.send(text, user=None, cert="rm")
        assert (status, answer.get("REQ")) == (5163, "A")
        await rig.put(add_text(loc="r3.csv", size=len(CSV)), CSV)
        status, answer = await rig.send(text, user=None, cert="rm")
        assert status == 5166  # the data is there, the metadata is not
        assert (answer.get("PART"), answer.get("SIZE"), answer.get("SHA256")) == (
            "D",
            str(len(CSV)),
            sha(CSV),
        )
        # a synchronous A saying the fulfilling server failed adds the data alone
        status, answer = await rig.send(
            text.replace("MSIZE=10", "MSIZE=0,ERRFLAG=1"), user=None, cert="rm"
        )
        assert status == 0
        assert answer.get("INBOXID") is not None


async def test_a_put_whose_sha256_does_not_match_keeps_nothing(tmp_path: Path) -> None:
    async with open_rig(tmp_path) as rig:
        resource = add_text(loc="r4.csv", size=len(CSV))
        status, answer = await rig.put(resource, CSV, sha256=sha(b"something else"))
        assert (status, answer.get("ERROR")) == (E.CHECKSUM_MISMATCH, "7011")
        assert files(tmp_path, "data") == []
        assert list((tmp_path / "inbox" / "staging").iterdir()) == []
        # nothing was recorded either: the right file is taken afterwards
        assert (await rig.put(resource, CSV))[0] == 0
        assert len(files(tmp_path, "data")) == 1


@pytest.mark.parametrize(
    ("loc", "part"),
    [
        ("../r5.csv", "D"),
        ("a/../../r5.csv", "D"),
        ("/etc/r5.csv", "D"),
        ("/inbox/files/../r5.csv", "D"),
        ("a\\\\r5.csv", "D"),  # an escaped backslash: a literal one in the LOC
        ("r5.exe", "D"),
        ("r5", "D"),
        ("r5.csv", "M"),  # a data file put as metadata
        ("r5.mtd", "D"),
    ],
)
async def test_a_loc_outside_the_inbox_is_5158(tmp_path: Path, loc: str, part: str) -> None:
    async with open_rig(tmp_path) as rig:
        status, answer = await rig.put(add_text(loc=loc, part=part, size=len(CSV)), CSV)
        assert (status, answer.get("ERROR")) == (5158, "5158")
        assert files(tmp_path, "data") == files(tmp_path, "meta") == []


async def test_fetch_is_synchronous_or_bulk_resumable_and_checked(tmp_path: Path) -> None:
    data = bytes(range(256)) * 10_000  # 2.5 MB: three bulk frames
    async with open_rig(tmp_path) as rig:
        inbox_id = await rig.add(data, MTD)
        status, answer = await rig.send(f"F<INBOXID={inbox_id}>")
        assert status == 0
        assert serialize(answer) == (
            f"Z<REQ=F,ERROR=0,INBOXID={inbox_id},PART=D,SIZE={len(data)},SHA256={sha(data)}>"
        )
        out = tmp_path / "report.csv"
        assert await rig.get(f"F<INBOXID={inbox_id}>", out) == (len(data), sha(data))
        assert out.read_bytes() == data
        # a resume: a client that already holds the first 1.5 MB gets only the rest
        partial = tmp_path / "partial.csv"
        partial.write_bytes(data[:1_500_000])
        assert await rig.get(f"F<INBOXID={inbox_id},PART=D>", partial) == (len(data), sha(data))
        assert partial.read_bytes() == data
        meta = tmp_path / "report.mtd"
        assert await rig.get(f"F<INBOXID={inbox_id},PART=M>", meta) == (len(MTD), sha(MTD))
        assert meta.read_bytes() == MTD
        # a file that vanished behind the inbox's back
        for stored in [*files(tmp_path, "data"), *files(tmp_path, "meta")]:
            stored.unlink()
        assert (await rig.send(f"F<INBOXID={inbox_id}>"))[0] == E.INBOX_FETCH_OPEN
        assert (await rig.send(f"F<INBOXID={inbox_id},PART=M>"))[0] == E.INBOX_FETCH_FILENAME
        assert await rig.get_refused(f"F<INBOXID={inbox_id}>") == E.INBOX_FETCH_OPEN


async def test_another_users_item_answers_exactly_like_a_missing_one(tmp_path: Path) -> None:
    async with open_rig(tmp_path) as rig:
        mine = await rig.add(CSV, MTD)
        theirs = await rig.add(CSV, MTD, user=TFN, base="r1_tfn")
        missing = theirs + 100
        for text in ("F<INBOXID={}>", "F<INBOXID={},PART=M>", "D<INBOXID={}>"):
            assert await rig.send(text.format(theirs)) == await rig.send(text.format(missing))
        update = "U<ENTPID=00022924,USERID=jeanvnet2,INBOXID={},ACK=1>"
        assert await rig.send(update.format(theirs)) == await rig.send(update.format(missing))
        assert (await rig.send(update.format(theirs)))[0] == E.INBOX_NO_RECORDS
        assert (await rig.send(f"D<INBOXID={theirs}>"))[0] == E.INBOX_DELETE_NONE
        assert await rig.get_refused(f"F<INBOXID={theirs}>") == E.INBOX_NO_RECORDS
        # naming someone else in a message is refused outright
        status, answer = await rig.send("L<ENTPID=10324488,USERID=tfnadmin,CATEGORY=R>")
        assert (status, answer.get("REQ")) == (7003, "L")
        assert (await rig.send("D<USERID=tfnadmin,ENTPID=10324488>"))[0] == 7003
        # each sees their own only; the other user's item is still there
        _, listed = await rig.send("L<ENTPID=00022924,USERID=jeanvnet2,CATEGORY=R>")
        assert [row[0] for row in rows(listed)] == [str(mine)]
        _, listed = await rig.send("L<ENTPID=10324488,USERID=tfnadmin,CATEGORY=R>", user=TFN)
        assert [row[0] for row in rows(listed)] == [str(theirs)]
        _, listed = await rig.send("L<ENTPID=00022924,USERID=LynneLevy2,CATEGORY=R>", user=LYNNE)
        assert rows(listed) == []


async def test_list_is_newest_first_and_only_later_ones_after_an_inboxid(tmp_path: Path) -> None:
    async with open_rig(tmp_path) as rig:
        ids = [await rig.add(CSV, MTD, base=f"r{n}") for n in range(3)]
        _, listed = await rig.send("L<ENTPID=00022924,USERID=jeanvnet2,CATEGORY=R>")
        assert [int(row[0]) for row in rows(listed)] == ids[::-1]
        text = "L<ENTPID=00022924,USERID=jeanvnet2,CATEGORY=R,INBOXID={}>"
        _, later = await rig.send(text.format(ids[0]))
        assert [int(row[0]) for row in rows(later)] == ids[:0:-1]
        assert later.get("INBOXID") == str(ids[-1])
        _, none = await rig.send(text.format(ids[-1]))
        assert (none.get("INBOXID"), rows(none)) == (str(ids[-1]), [])
        _, detail = await rig.send("L<ENTPID=00022924,USERID=jeanvnet2,CATEGORY=D>")
        assert rows(detail) == []


async def test_update_acknowledges_and_changes_the_time_to_live(tmp_path: Path) -> None:
    async with open_rig(tmp_path) as rig:
        inbox_id = await rig.add(CSV, MTD)
        status, answer = await rig.send(f"U<ENTPID=00022924,USERID=jeanvnet2,INBOXID={inbox_id}>")
        assert (status, answer.get("REQ")) == (0, "U")
        text = f"U<ENTPID=00022924,USERID=jeanvnet2,INBOXID={inbox_id},TTL=2,ACK=0>"
        assert (await rig.send(text))[0] == 0
        _, listed = await rig.send("L<ENTPID=00022924,USERID=jeanvnet2,CATEGORY=R>")
        assert rows(listed)[0][8:] == ["0", "2025-03-03 12:00"]
        text = f"U<ENTPID=00022924,USERID=jeanvnet2,INBOXID={inbox_id},ACK=1>"
        assert (await rig.send(text))[0] == 0
        _, listed = await rig.send("L<ENTPID=00022924,USERID=jeanvnet2,CATEGORY=R>")
        assert rows(listed)[0][8] == "1"


async def test_delete_frees_the_files(tmp_path: Path) -> None:
    async with open_rig(tmp_path) as rig:
        first = await rig.add(CSV, MTD, base="a")
        await rig.add(CSV, MTD, base="b")
        await rig.add(CSV, MTD, base="c", user=TFN)
        assert len(files(tmp_path, "data")) == 3
        status, answer = await rig.send(f"D<INBOXID={first}>")
        assert (status, serialize(answer)) == (0, "Z<REQ=D,ERROR=0>")
        assert (await rig.send(f"D<INBOXID={first}>"))[0] == E.INBOX_DELETE_NONE
        assert len(files(tmp_path, "data")) == len(files(tmp_path, "meta")) == 2
        assert (await rig.send("D<USERID=jeanvnet2,ENTPID=00022924>"))[0] == 0
        assert (await rig.send("D<USERID=jeanvnet2,ENTPID=00022924>"))[0] == E.INBOX_DELETE_NONE
        assert len(files(tmp_path, "data")) == 1  # tfnadmin's


async def test_ttl_purge_frees_the_files_of_expired_items(tmp_path: Path) -> None:
    async with open_rig(tmp_path) as rig:
        kept = await rig.add(CSV, MTD, base="kept")
        short = await rig.add(CSV, MTD, base="short")
        await rig.put(add_text(loc="lonely.csv", size=len(CSV)), CSV)  # never gets its metadata
        await rig.send(f"U<ENTPID=00022924,USERID=jeanvnet2,INBOXID={kept},TTL=90>")
        await rig.send(f"U<ENTPID=00022924,USERID=jeanvnet2,INBOXID={short},TTL=1>")
        rig.clock[0] = T0 + 2 * 86400
        assert await rig.inbox.items.purge() == 1
        assert (await rig.send(f"F<INBOXID={short}>"))[0] == E.INBOX_NO_RECORDS
        assert len(files(tmp_path, "data")) == 2
        rig.clock[0] = T0 + 46 * 86400  # the default 45 days: the lonely half goes too
        assert await rig.inbox.items.purge() == 0
        assert len(files(tmp_path, "data")) == len(files(tmp_path, "meta")) == 1
        assert (await rig.send(f"F<INBOXID={kept}>"))[0] == 0


async def test_a_restart_removes_files_no_row_names(tmp_path: Path) -> None:
    async with open_rig(tmp_path) as rig:
        await rig.add(CSV, MTD)
        (tmp_path / "inbox" / "data" / "d-orphan").write_bytes(b"x")
        (tmp_path / "inbox" / "staging" / "half.part").write_bytes(b"x")
        assert await rig.inbox.items.sweep() == 2
        assert len(files(tmp_path, "data")) == 1


async def test_who_may_send_what(tmp_path: Path) -> None:
    async with open_rig(tmp_path) as rig:
        # a customer cannot add items, neither synchronously nor by a put
        status, _ = await rig.send(add_text(part=None, size=1))
        assert status == 7003
        status, _ = await rig.put(add_text(size=len(CSV)), CSV, cert="dispatcher")
        assert status == 7003
        # the DSS puts report files, and reads nothing
        assert (await rig.send("L<ENTPID=00022924,USERID=jeanvnet2,CATEGORY=R>", cert="dss"))[
            0
        ] == 7003
        # a routed request without an identity
        status, _ = await rig.send("L<ENTPID=00022924,USERID=jeanvnet2,CATEGORY=R>", user=None)
        assert status == 7003
        # the operator may look at any user's items
        inbox_id = await rig.add(CSV, MTD)
        status, _ = await rig.send(f"F<INBOXID={inbox_id}>", user=None, cert="admin")
        assert status == 0


A = "A<CATEGORY=R,TYPE=t,USERID=u,ENTPID=00022924,RPTID=1,COMPRESS=0,RPTCATEGORY=c,LOC=a.csv,RQSTDT=2025-01-01 10:00,FSIZE=3,RPTTITLE=T,MSIZE=4>"  # noqa: E501


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (A.replace("CATEGORY=R", "CATEGORY=X"), E.INBOX_ADD_CATEGORY),
        (A.replace("TYPE=t,", ""), E.INBOX_ADD_TYPE),
        (A.replace("ENTPID=00022924", "ENTPID=1"), E.INBOX_ADD_ENTP_USER),
        (A.replace("RPTID=1,", ""), E.INBOX_ADD_RPTID),
        (A.replace("COMPRESS=0,", ""), E.INBOX_ADD_COMPRESS),
        (A.replace("A<", "A<UNOTIFY=2,"), E.INBOX_ADD_SEV),
        (A.replace("RPTCATEGORY=c,", ""), E.INBOX_ADD_RPTCATEGORY),
        (A.replace("LOC=a.csv,", ""), E.INBOX_ADD_LOC),
        (A.replace("LOC=a.csv", "LOC=../a.csv"), E.INBOX_ADD_LOC),
        (A.replace("RQSTDT=2025-01-01 10:00,", ""), E.INBOX_ADD_RQSTDT),
        (A.replace("FSIZE=3,", ""), E.INBOX_ADD_FSIZE),
        (A.replace("RPTTITLE=T,", ""), E.INBOX_ADD_RPTTITLE),
        (A.replace(",MSIZE=4", ""), E.INBOX_ADD_MSIZE),
        (A.replace("A<", "A<UNOTIFY=2,SEV=1,").replace("ENTPID=00022924,", ""), 5164),
        (A.replace("COMPRESS=0", "COMPRESS=1"), E.INBOX_ADD_COMPRESS_LOC),
        (A.replace("A<", "A<MMADDR=nobody,"), E.INBOX_NOTIFY_EMAIL),
        (A.replace("FSIZE=3", "FSIZE=3,BOGUS=1"), E.INBOX_PARSER),
        (A, E.INBOX_ADD_NO_FILE),
    ],
)
async def test_add_codes(tmp_path: Path, text: str, code: int) -> None:
    async with open_rig(tmp_path) as rig:
        status, _ = await rig.send(text, user=None, cert="rm")
        assert status == code


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("F<>", E.INBOX_FETCH_ID_MISSING),
        ("F<INBOXID=1,PART=X>", E.INBOX_PARSER),
        ("F<INBOXID=1>", E.INBOX_NO_RECORDS),
        ("L<ENTPID=00022924,CATEGORY=R>", E.INBOX_LIST_USER_MISSING),
        ("L<ENTPID=00022924,USERID=jeanvnet2>", E.INBOX_LIST_CATEGORY_MISSING),
        ("L<USERID=jeanvnet2,CATEGORY=R>", E.INBOX_MISSING),
        ("D<ENTPID=00022924>", E.INBOX_DELETE_USER_MISSING),
        ("D<INBOXID=>", E.INBOX_MISSING),
        ("D<INBOXID=1>", E.INBOX_DELETE_NONE),
        ("U<ENTPID=00022924,USERID=jeanvnet2>", E.INBOX_UPDATE_ID_MISSING),
        ("U<ENTPID=00022924,USERID=jeanvnet2,INBOXID=1,TTL=0>", E.INBOX_UPDATE_TTL),
        ("U<ENTPID=00022924,USERID=jeanvnet2,INBOXID=1>", E.INBOX_NO_RECORDS),
        ("Z<REQ=L,ERROR=0>", E.NOT_ENTITLED),  # an answer is no request (peer row)
    ],
)
async def test_request_codes(tmp_path: Path, text: str, code: int) -> None:
    async with open_rig(tmp_path) as rig:
        status, answer = await rig.send(text)
        assert status == code
        assert answer.get("ERROR") == str(int(code))


async def test_an_unknown_request_is_5103(tmp_path: Path) -> None:
    # over the network the peer table answers first (7003); in process the catalogue
    async with open_rig(tmp_path) as rig:
        assert (await rig.send("Q<X=1>"))[0] == 7003
        proxy = make_inbox_proxy(rig.inbox)
        status, payload = await proxy.handle(Caller("jeanvnet2", "00022924"), b"Q<X=1>")
        assert (status, payload) == (E.INBOX_INVALID_REQUEST, b"Q<ERROR=5103>")


async def test_database_failures_are_answered_with_their_codes(tmp_path: Path) -> None:
    async with open_rig(tmp_path) as rig:
        inbox_id = await rig.add(CSV, MTD)
        with sqlite3.connect(tmp_path / "inbox" / "inbox.db") as raw:
            raw.execute("DROP INDEX items_owner")
            raw.execute("ALTER TABLE items RENAME TO items_gone")
        status, answer = await rig.send("L<ENTPID=00022924,USERID=jeanvnet2,CATEGORY=R>")
        assert (status, answer.get("REQ")) == (E.INBOX_OPEN_CURSOR, "L")
        text = f"U<ENTPID=00022924,USERID=jeanvnet2,INBOXID={inbox_id}>"
        assert (await rig.send(text))[0] == E.INBOX_STORED_PROCEDURE
        assert (await rig.send(f"D<INBOXID={inbox_id}>"))[0] == E.INBOX_STORED_PROCEDURE
        status, _ = await rig.put(add_text(loc="r7.csv", size=len(CSV)), CSV)
        assert status == E.INBOX_STORED_PROCEDURE
