"""The batch format and the CMS reader: round trips, and hostile input that ends only in
the module's own one-line errors (never another exception)."""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starwrs.collector import batch as batches
from starwrs.collector import cms, identity, smime

ids = st.text(alphabet="0123456789abcdefABCDEF._-", min_size=8, max_size=64)
enterprises = st.text(alphabet="0123456789ABCDEFXYZ", min_size=1, max_size=12)
bodies = st.binary(max_size=2000)


@given(
    batch_id=ids,
    enterprise=enterprises,
    fmt=st.sampled_from(["asterisk", "cucm", "avaya", "mitel"]),
    body=bodies,
    records=st.integers(0, 10**6),
    first_line=st.integers(1, 10**9),
    header_lines=st.integers(0, 5),
    offset=st.none() | st.tuples(st.integers(0, 10**12), st.integers(0, 10**12)),
    source=st.text(max_size=300),
    file_date=st.none() | st.dates(dt.date(2000, 1, 1), dt.date(2099, 12, 31)),
    compress=st.booleans(),
)
def test_a_batch_reads_back_as_it_was_built(
    batch_id: str,
    enterprise: str,
    fmt: str,
    body: bytes,
    records: int,
    first_line: int,
    header_lines: int,
    offset: tuple[int, int] | None,
    source: str,
    file_date: dt.date | None,
    compress: bool,
) -> None:
    created = dt.datetime(2026, 12, 1, 23, 30, 49, tzinfo=dt.UTC)
    built = batches.Batch(
        batch_id=batch_id, enterprise=enterprise, format=fmt, records=records, body=body,
        source=source or "-", first_line=first_line, offset=offset,
        timezone="America/New_York", header_lines=header_lines, file_date=file_date,
        created=created, collector="pbx1",
    )  # fmt: skip
    entity = batches.build(built, compress=compress)
    assert entity == batches.build(built, compress=compress)  # the same records, the same bytes
    assert (b"Content-Type: application/vnd.starwrs.cdr-batch+gzip\r\n" in entity) == compress
    back = batches.parse(entity)
    assert back.body == body
    assert (back.batch_id, back.enterprise, back.format, back.records) == (
        batch_id,
        enterprise,
        fmt,
        records,
    )
    assert (back.first_line, back.header_lines, back.offset, back.file_date) == (
        first_line,
        header_lines,
        offset,
        file_date,
    )
    assert back.created == created
    assert back.timezone == "America/New_York"
    printable = "".join(c if " " <= c <= "~" else "?" for c in source)
    assert back.source == (printable[:255].strip() or "-")


@given(st.binary(max_size=3000))
def test_any_bytes_are_a_batch_or_one_batch_error(data: bytes) -> None:
    try:
        batches.parse(data)
    except batches.BatchError as err:
        problem = str(err)
    else:
        problem = ""
    assert "\n" not in problem


@pytest.mark.parametrize(
    ("entity", "words"),
    [
        (b"X-Starwrs-Batch: abcdefgh\r\n", "no blank line"),
        (b"X-Starwrs-Enterprise: 1\r\n\r\n", "X-Starwrs-Batch is missing"),
        (b"X-Starwrs-Batch: short\r\n\r\n", "8-64"),
        (
            b"X-Starwrs-Batch: abcdefgh\r\nX-Starwrs-Enterprise: 1\r\n"
            b"X-Starwrs-Format: nortel\r\n\r\n",
            "is not one of",
        ),
        (
            b"X-Starwrs-Batch: abcdefgh\r\nX-Starwrs-Enterprise: 1\r\nX-Starwrs-Format: avaya\r\n"
            b"X-Starwrs-Records: 1\r\n\r\n",
            "X-Starwrs-Timezone is missing",
        ),
        (
            b"X-Starwrs-Batch: abcdefgh\r\nX-Starwrs-Enterprise: 1\r\n"
            b"X-Starwrs-Format: cucm\r\n\r\n",
            "X-Starwrs-Records is missing",
        ),
        (b"X-Starwrs-Batch: abcdefgh\r\nX-Starwrs-Batch: abcdefgi\r\n\r\n", "appears twice"),
        (b"Content-Type: text/plain\r\n\r\n", "not a call-record batch"),
    ],
)
def test_what_a_batch_must_have(entity: bytes, words: str) -> None:
    with pytest.raises(batches.BatchError, match=words):
        batches.parse(entity)


GZ = batches.GZIP_CONTENT_TYPE


def _gzip_entity(body: bytes, kind: str = GZ) -> bytes:
    return (
        b"Content-Type: " + kind.encode() + b"\r\nX-Starwrs-Batch: abcdefgh\r\n"
        b"X-Starwrs-Enterprise: 1\r\nX-Starwrs-Format: cucm\r\nX-Starwrs-Records: 1\r\n\r\n" + body
    )


def test_a_gzip_body_is_what_gunzip_reads() -> None:
    records = b"1,2,3\n" * 1000
    entity = batches.build(batches.Batch("abcdefgh", "1", "cucm", 1000, records), compress=True)
    body = entity.split(b"\r\n\r\n", 1)[1]
    assert gzip.decompress(body) == records
    assert len(body) < len(records) / 20
    # and what gzip itself writes (a name, a time, another level) reads back too
    named = gzip.compress(records, compresslevel=1, mtime=1_700_000_000)
    assert batches.parse(_gzip_entity(named)).body == records


@pytest.mark.parametrize(
    ("body", "kind", "words"),
    [
        (b"not gzip at all", GZ, "does not inflate"),
        (gzip.compress(b"1,2,3\n" * 100)[:-12], GZ, "cut short"),
        (gzip.compress(b"1,2,3\n") + b"more", GZ, "data after its end"),
        (gzip.compress(b"1,2,3\n") * 2, GZ, "data after its end"),
        (b"", GZ, "cut short"),
        (b"1,2,3\n", "application/vnd.starwrs.cdr-batch+zstd", "not a call-record batch"),
    ],
    ids=["garbage", "cut", "trailing", "two-members", "empty", "unknown"],
)
def test_a_bad_gzip_body_is_one_batch_error(body: bytes, kind: str, words: str) -> None:
    with pytest.raises(batches.BatchError, match=words):
        batches.parse(_gzip_entity(body, kind))


def test_a_body_that_inflates_past_the_limit_is_refused() -> None:
    # 65 MiB of zeros compress to ~65 KB: the limit, not the message size, stops it
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1 << 20)
    bomb = b"".join(
        packer.compress(zeros) for _ in range(batches.MAX_BODY >> 20)
    ) + packer.compress(b"\0")
    bomb += packer.flush()
    assert len(bomb) < 200_000
    with pytest.raises(batches.BatchError, match="inflates past 65 MiB"):
        batches.parse(_gzip_entity(bomb))


@given(st.binary(max_size=600))
def test_any_gzip_body_is_records_or_one_batch_error(data: bytes) -> None:
    for body in (data, gzip.compress(data)[: len(data) % 40 + 10]):
        problem = ""
        try:
            batches.parse(_gzip_entity(body))
        except batches.BatchError as err:
            problem = str(err)
        assert "\n" not in problem


def test_build_refuses_what_parse_would() -> None:
    good = batches.Batch("abcdefgh", "00022924", "asterisk", 1, b"x\n", timezone="UTC")
    batches.build(good)
    for bad in (
        good.__class__("a b", "00022924", "asterisk", 1, b""),
        good.__class__("abcdefgh", "0002 2924", "asterisk", 1, b""),
        good.__class__("abcdefgh", "00022924", "asterisk", 1, b""),  # no time zone
    ):
        with pytest.raises(ValueError):
            batches.build(bad)


# -- the CMS reader ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def signed() -> tuple[bytes, object]:
    key, cert, _csr = identity.make_collector_identity("00022924", "pbx1", "p@x.example")
    return smime.sign(b"the content\r\n", cert, key), cert


def test_a_signature_verifies_and_names_its_digest(signed: tuple[bytes, object]) -> None:
    der, cert = signed
    parsed = cms.parse_signed_data(der)
    assert parsed.content == b"the content\r\n"
    verified = cms.verify(parsed, [cert])  # type: ignore[list-item]
    assert verified.digest_name == "sha256"
    assert verified.signing_time is not None


@given(st.data())
def test_a_truncated_or_altered_signature_is_one_cms_error(
    signed: tuple[bytes, object], data: st.DataObject
) -> None:
    der, cert = signed
    cut = data.draw(st.integers(0, len(der) - 1))
    flip = data.draw(st.integers(0, len(der) - 1))
    for hostile in (der[:cut], der[:flip] + bytes([der[flip] ^ 0x41]) + der[flip + 1 :]):
        try:
            cms.verify(cms.parse_signed_data(hostile), [cert])  # type: ignore[list-item]
        except cms.CmsError as err:
            problem = str(err)
        else:
            problem = ""
        assert "\n" not in problem


@given(st.binary(max_size=500))
def test_any_bytes_are_signed_data_or_one_cms_error(data: bytes) -> None:
    with contextlib.suppress(cms.CmsError):
        cms.parse_signed_data(data)


def test_deep_indefinite_nesting_is_refused() -> None:
    hostile = b"\x30\x80" * 10_000 + b"\x00\x00" * 10_000
    with pytest.raises(cms.CmsError, match="nested too deeply"):
        cms.parse_signed_data(hostile)


@given(st.binary(max_size=3000), st.integers(0, 60))
def test_isal_inflates_as_zlib_does(data: bytes, cut: int) -> None:
    """The harvest's inflate (ISA-L) takes what zlib's would, to the same bytes, and
    refuses what it refuses."""
    packed = gzip.compress(data)
    for body in (packed, packed[: max(0, len(packed) - cut)], packed + data[:cut], data):
        answers: list[bytes | None] = []
        for backend in (batches._inflate, zlib):
            saved, batches._inflate = batches._inflate, backend
            try:
                answers.append(batches._gunzip(body))
            except batches.BatchError:  # (the words may differ: 2 bytes of garbage are
                answers.append(None)  # "cut short" to one, "does not inflate" to the other)
            finally:
                batches._inflate = saved
        assert answers[0] == answers[1]
