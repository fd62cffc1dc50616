"""The harvest's own DATA reader (:func:`~starwrs.proxies.harvest.smtp.read_data`) against
aiosmtpd's line-at-a-time rules, and the collector's DATA (:func:`~starwrs.collector.\
mailer._transparent`) against smtplib's: what one side sends the other reads back."""

from __future__ import annotations

import asyncio
import smtplib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starwrs.collector.mailer import _transparent
from starwrs.proxies.harvest.smtp import DATA_BUFFER, read_data, unstuff

#: bytes that make line ends, dots and the end mark likely
ALPHABET = st.sampled_from([b".", b"\r", b"\n", b"\r\n", b"a", b"\r\n.", b"\r\n.\r\n", b".."])
TEXT = st.lists(ALPHABET, max_size=60).map(b"".join)
#: a message with CRLF line ends only (bare CR and LF are not SMTP line ends, and
#: smtplib sends bytes as they are)
MESSAGE = st.lists(st.sampled_from([b".", b"a", b"\r\n", b"\r\n.", b".."]), max_size=60).map(
    b"".join
)


def aiosmtpd_data(stream: bytes) -> tuple[bytes, bytes]:
    """aiosmtpd's DATA, line by line: (the content up to the line ``.``, the rest)."""
    lines, at = [], 0
    while True:
        end = stream.index(b"\r\n", at) + 2
        line, at = stream[at:end], end
        if line == b".\r\n":
            break
        lines.append(line[1:] if line.startswith(b".") else line)
    return b"".join(lines), stream[at:]


def read(stream: bytes, *, limit: int | None = None, chunk: int = 7) -> tuple[bytes | None, bytes]:
    """read_data over *stream* fed *chunk* bytes at a time: (its answer, what is left)."""

    async def go() -> tuple[bytes | None, bytes]:
        reader = asyncio.StreamReader(limit=1001)  # aiosmtpd's: one SMTP line
        task = asyncio.ensure_future(read_data(reader, size_limit=limit))
        for at in range(0, len(stream), chunk):
            reader.feed_data(stream[at : at + chunk])
            await asyncio.sleep(0)
        reader.feed_eof()
        answer = await task
        assert reader._limit == 1001  # put back
        return answer, await reader.read()

    return asyncio.run(go())


def smtplib_data(message: bytes) -> bytes:
    """What ``smtplib.SMTP.data`` sends for the bytes *message*."""
    quoted = smtplib._quote_periods(message)  # type: ignore[attr-defined]
    if quoted[-2:] != b"\r\n":
        quoted += b"\r\n"
    return quoted + b".\r\n"


@settings(max_examples=300, deadline=None)
@given(TEXT, st.integers(1, 40))
def test_the_content_is_what_aiosmtpd_reads_and_the_rest_stays(text: bytes, chunk: int) -> None:
    stream = text + b"\r\n.\r\nQUIT\r\n"
    if b"\r\n.\r\n" not in b"\r\n" + stream:  # pragma: no cover - always there
        return
    content, rest = aiosmtpd_data(stream)
    assert read(stream, chunk=chunk) == (content, rest)


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_the_collector_sends_what_smtplib_sends(message: bytes) -> None:
    assert _transparent(message) == smtplib_data(message)


@settings(max_examples=300, deadline=None)
@given(MESSAGE)
def test_what_the_collector_sends_the_harvest_reads_back(message: bytes) -> None:
    sent = _transparent(message)
    content, rest = read(sent + b"RSET\r\n")
    assert content == (message if message.endswith(b"\r\n") else message + b"\r\n")
    assert rest == b"RSET\r\n"


@given(TEXT)
def test_unstuff_removes_the_leading_dot_of_every_line(text: bytes) -> None:
    body = text + b"\r\n"
    lines = body.split(b"\r\n")
    assert unstuff(body) == b"\r\n".join(line[1:] if line[:1] == b"." else line for line in lines)


def test_many_dots_take_the_one_search() -> None:
    body = b"a." * 100 + b"\r\n.b\r\n"
    assert unstuff(body) == b"a." * 100 + b"\r\nb\r\n"
    assert _transparent(b"a." * 100 + b"\r\n.b") == smtplib_data(b"a." * 100 + b"\r\n.b")
    assert unstuff(b"a." * 100 + b"\r\n") == b"a." * 100 + b"\r\n"


def test_a_message_bigger_than_the_reader_buffer_arrives_whole() -> None:
    message = b"".join(b"%07d" % i + b"x" * 69 + b"\r\n" for i in range(3 * DATA_BUFFER // 78))
    assert read(message + b".\r\n", chunk=65536) == (message, b"")


def test_over_the_size_limit_nothing_is_kept_and_the_end_mark_is_read() -> None:
    message = b"line\r\n" * 100
    assert read(message + b".\r\nQUIT\r\n", limit=len(message) - 1) == (None, b"QUIT\r\n")
    assert read(message + b".\r\n", limit=len(message)) == (message, b"")


def test_the_empty_message() -> None:
    assert read(b".\r\nQUIT\r\n") == (b"", b"QUIT\r\n")


def test_a_stream_that_ends_before_the_end_mark() -> None:
    with pytest.raises(asyncio.IncompleteReadError):
        read(b"line\r\nline")
    with pytest.raises(asyncio.IncompleteReadError):
        read(b"x" * (2 * DATA_BUFFER), chunk=65536)
