"""The fast read of a single-part S/MIME entity (headers parsed, base64 body decoded
without the parser walking it) gives what the ``email`` parser gives, or leaves the
entity to the parser: for well-formed messages, odd line ends, junk in the base64,
wrong padding, other transfer encodings and multiparts."""

from __future__ import annotations

import base64

from hypothesis import given, settings
from hypothesis import strategies as st
from starwrs.collector import smime

from ..conftest import scaled


def parser_payload(raw: bytes) -> bytes:
    return smime._payload(smime._parse(raw))


@settings(max_examples=scaled(500))
@given(
    data=st.binary(max_size=400),
    eol=st.sampled_from([b"\r\n", b"\n"]),
    width=st.sampled_from([76, 64, 4, 1000, 77, 3]),
    junk=st.lists(
        st.tuples(
            st.integers(0, 10_000),
            st.sampled_from(
                [b" ", b"!", b"=", b"==", b"\r", b"\r\n", b"\x00", b"-", b"_", b"\xff", b"\n\n"]
            ),
        ),
        max_size=2,
    ),
    cte=st.sampled_from(["base64", "BASE64", "base64 ", "7bit", ""]),
    kind=st.sampled_from(["application/pkcs7-mime", "multipart/mixed; boundary=x", "text/plain"]),
)
def test_the_fast_payload_is_the_parsers(
    data: bytes,
    eol: bytes,
    width: int,
    junk: list[tuple[int, bytes]],
    cte: str,
    kind: str,
) -> None:
    text = base64.b64encode(data)
    body = b"".join(text[i : i + width] + eol for i in range(0, len(text), width))
    for where, extra in junk:
        at = where % (len(body) + 1)
        body = body[:at] + extra + body[at:]
    head = f"MIME-Version: 1.0{eol.decode()}Content-Type: {kind}{eol.decode()}"
    if cte:
        head += f"Content-Transfer-Encoding: {cte}{eol.decode()}"
    raw = head.encode() + eol + body
    message, fast = smime._entity_payload(raw)
    if fast is not None:
        assert fast == parser_payload(raw)
        assert message.get_content_type() == smime._parse(raw).get_content_type()
    if not junk and cte.lower() == "base64" and kind.startswith("application"):
        assert fast == data  # a clean message takes the fast read
    if cte.lower() != "base64" or not kind.startswith("application"):
        return
    at = raw.index(eol + eol) + 2 * len(eol)
    even = smime._even_lines(raw, at)
    if even is not None:  # the one-pass decode of even lines: only ever the parser's answer
        assert even == parser_payload(raw)
    if not junk and eol == b"\r\n" and text and width % 4 == 0:
        assert even == data  # and taken for every clean CRLF body in whole quads


def test_what_the_collector_sends_takes_the_fast_read() -> None:
    enveloped = b"\x30\x80" + bytes(range(256)) * 40
    raw = smime.mail(enveloped, [("From", "a@example.com"), ("To", "h@example.com")])
    message, fast = smime._entity_payload(raw)
    assert fast == enveloped == parser_payload(raw)
    assert smime._enveloped_part(message) is message
    inner = smime.signed_entity(b"\x30\x03\x02\x01\x00")
    assert smime._entity_payload(inner)[1] == b"\x30\x03\x02\x01\x00"
