"""The inbox through a real ``starwrs serve --demo``: news from ``starwrs admin news``,
listed and fetched with ``starwrs client`` (web -> dispatcher -> inbox), its e-mail in
the demo's Maildir.
"""

from __future__ import annotations

import json
import mailbox
import subprocess
import sys
from pathlib import Path

import pytest
from starwrs.grammar import Group, Seq, parse

from .system import System, start

pytestmark = pytest.mark.slow

NEWS = "The reporting system is down for maintenance on Sunday, 02:00-04:00 GMT.\n"


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    running = start(tmp_path_factory.mktemp("inbox") / "s")
    yield running
    running.stop()


def cli(*argv: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
    env = None
    if password is not None:
        import os

        env = dict(os.environ, STARWRS_PASSWORD=password)
    return subprocess.run(
        [sys.executable, "-m", "starwrs.cli", *argv],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip


def client(system: System, user: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return cli(
        "client", "--state", str(system.state), "--user", user, *argv,
        password=system.passwords()[user],
    )  # fmt: skip


def items(text: str) -> list[list[str]]:
    value = parse(text).get("ITEMS")
    assert isinstance(value, Group)
    out: list[list[str]] = []
    for member in value.members:
        groups = member.value.parts if isinstance(member.value, Seq) else (member.value,)
        out += [[str(cell.value) for cell in group.members] for group in groups]  # type: ignore[union-attr]
    return out


def test_news_is_listed_fetched_and_mailed(system: System, tmp_path: Path) -> None:
    state = str(system.state)
    sent = cli(
        "admin", "--state", state, "news", "--user", "jeanvnet2",
        "--title", "Maintenance, Sunday", "--text", NEWS, "--notify", "email",
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    answer = parse(sent.stdout.split(": ", 1)[1])
    inbox_id = str(answer.get("INBOXID"))
    assert answer.get("ERROR") == "0"
    # the same news again adds nothing
    again = cli(
        "admin", "--state", state, "news", "--user", "jeanvnet2",
        "--title", "Maintenance, Sunday", "--text", NEWS, "--notify", "email",
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "already there" in again.stdout

    listed = client(
        system, "jeanvnet2", "send", "L<ENTPID=00022924,USERID=jeanvnet2,CATEGORY=F>"
    )
    assert listed.returncode == 0, listed.stderr
    (row,) = items(listed.stdout.strip())
    assert row[:4] == [inbox_id, "F", "news", "Maintenance, Sunday"]
    assert row[6] == str(len(NEWS.encode()))

    out = tmp_path / "news.txt"
    fetched = client(
        system, "jeanvnet2", "send", f"F<INBOXID={inbox_id}>", "--mech", "bulk",
        "--out", str(out),
    )  # fmt: skip
    assert fetched.returncode == 0, fetched.stderr
    assert json.loads(fetched.stdout)["bytes"] == len(NEWS.encode())
    assert out.read_text() == NEWS

    # another enterprise's user sees none of it
    other = client(system, "tfnadmin", "send", "L<ENTPID=10324488,USERID=tfnadmin,CATEGORY=F>")
    assert other.returncode == 0, other.stderr
    assert items(other.stdout.strip()) == []
    refused = client(system, "tfnadmin", "send", f"F<INBOXID={inbox_id}>")
    assert refused.returncode == 1
    assert json.loads(refused.stderr)["error"] == 5100

    # the demo has no mail relay: the e-mail is in STATE/mail
    box = mailbox.Maildir(system.state / "mail", create=False)
    (mail,) = list(box)
    assert mail["To"] == "jeanvnet2@demo.invalid"
    assert mail["Subject"] == "News: Maintenance, Sunday"


def test_news_to_an_enterprise(system: System) -> None:
    sent = cli(
        "admin", "--state", str(system.state), "news", "--enterprise", "10324488",
        "--title", "New toll free rates", "--text", "From July 1.",
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    assert sorted(line.split("@")[0] for line in sent.stdout.splitlines()) == [
        "tfnadmin",
        "tfnviewer",
    ]
    listed = client(
        system, "tfnviewer", "send", "L<ENTPID=10324488,USERID=tfnviewer,CATEGORY=F>"
    )
    assert [row[3] for row in items(listed.stdout.strip())] == ["New toll free rates"]
    unknown = cli(
        "admin", "--state", str(system.state), "news", "--user", "nobody",
        "--title", "x", "--text", "y",
    )  # fmt: skip
    assert unknown.returncode == 1
    assert unknown.stderr.count("\n") == 1
