"""S/MIME for call-record batches: sign, then envelope (collector); decrypt, then verify
(harvest).  RFC 8551 message formats, ``cryptography`` >= 50 for the cryptography.

Theory of operation
-------------------
Sending (:func:`seal`): the batch entity (:mod:`starwrs.collector.batch`) is signed
with the collector's key -- an *opaque* SignedData (``application/pkcs7-mime;
smime-type=signed-data``, the content inside, SHA-256, the signer's certificate
included, binary: no line-ending conversion) -- and that signed MIME entity is
enveloped for the provider's certificate (EnvelopedData, AES-256-CBC, RSA key
transport): ``application/pkcs7-mime; smime-type=enveloped-data``.  :func:`mail`
puts it into an RFC 5322 message.  ``openssl cms -decrypt`` then ``openssl cms
-verify`` read it back to the exact batch entity.

Receiving (:func:`open_message`): the message's enveloped part is decrypted with the
harvest's key (``pkcs7_decrypt_der``), the inner entity must be signed -- opaque
(as above, or bare DER) or ``multipart/signed`` with a detached signature (what
``openssl cms -sign`` writes by default) -- and the signature is verified against the
*trusted* certificates given (:func:`starwrs.collector.cms.verify`): the enrolled
collectors.  A single-part entity with a base64 body -- what the collector sends, at
both layers -- has only its headers parsed: the body is decoded in one pass (pybase64
when installed), exactly as the parser decodes a clean one -- for lines of one width
ended by CRLF, one lenient decode whose cleanliness is proved by counting
(:func:`_even_lines`); anything else the ``email`` parser reads whole.  Each refusal
is an :class:`SmimeError` whose ``reason`` is one line for the audit trail and ``kind``
one word (``not-encrypted``, ``wrong-recipient``,
``undecryptable``, ``unsigned``, ``bad-signature``, ``unknown-signer``).
"""

from __future__ import annotations

import base64
import binascii
import email.parser
import email.policy
import re
from dataclasses import dataclass
from email.message import Message as MailMessage

import numpy as np
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.serialization import pkcs7
from starwrs.collector import cms

try:  # SIMD base64 (the parser's binascii reads ~150 MB/s; a batch is tens of MB)
    from pybase64 import b64decode as _b64decode
except ImportError:  # pragma: no cover - the same result, slower
    _b64decode = base64.b64decode  # type: ignore[assignment]

__all__ = [
    "Opened",
    "SmimeError",
    "envelope",
    "mail",
    "open_message",
    "seal",
    "sign",
    "signed_entity",
]

SignerKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class SmimeError(Exception):
    """A message that is refused: ``kind`` (one word) and ``reason`` (one line)."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


# -- sending --------------------------------------------------------------------------


def sign(content: bytes, cert: x509.Certificate, key: SignerKey) -> bytes:
    """An opaque SignedData (DER) of *content*, SHA-256, the certificate included."""
    return (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(content)
        .add_signer(cert, key, hashes.SHA256())
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )


def _base64_lines(data: bytes) -> bytes:
    text = base64.b64encode(data)
    return b"".join(text[i : i + 76] + b"\r\n" for i in range(0, len(text), 76))


def signed_entity(signed_der: bytes) -> bytes:
    """The MIME entity ``application/pkcs7-mime; smime-type=signed-data`` of a SignedData."""
    return (
        b'Content-Type: application/pkcs7-mime; smime-type=signed-data; name="smime.p7m"\r\n'
        b"Content-Transfer-Encoding: base64\r\n"
        b'Content-Disposition: attachment; filename="smime.p7m"\r\n'
        b"\r\n" + _base64_lines(signed_der)
    )


def envelope(content: bytes, recipient: x509.Certificate) -> bytes:
    """An EnvelopedData (DER) of *content* for *recipient* (RSA), AES-256-CBC."""
    return (
        pkcs7.PKCS7EnvelopeBuilder()
        .set_data(content)
        .add_recipient(recipient)
        .set_content_encryption_algorithm(algorithms.AES256)
        .encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )


def seal(
    content: bytes, *, cert: x509.Certificate, key: SignerKey, recipient: x509.Certificate
) -> bytes:
    """Sign *content*, then envelope the signed entity: the EnvelopedData (DER)."""
    return envelope(signed_entity(sign(content, cert, key)), recipient)


def mail(enveloped: bytes, headers: list[tuple[str, str]]) -> bytes:
    """An RFC 5322 message whose body is the enveloped S/MIME entity.

    *headers* (From, To, Subject, Date, Message-ID, ...) come first, in order; values
    must be ASCII without line breaks.
    """
    lines = []
    for name, value in headers:
        if not value.isascii() or "\r" in value or "\n" in value:
            raise ValueError(f"header {name} must be one line of ASCII")
        lines.append(f"{name}: {value}\r\n".encode("ascii"))
    return (
        b"".join(lines)
        + b"MIME-Version: 1.0\r\n"
        + b'Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"\r\n'
        + b"Content-Transfer-Encoding: base64\r\n"
        + b'Content-Disposition: attachment; filename="smime.p7m"\r\n'
        + b"\r\n"
        + _base64_lines(enveloped)
    )


# -- receiving ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Opened:
    """A message that decrypted and verified: the signed content and its proof."""

    content: bytes
    verified: cms.Verified
    detached: bool


_PKCS7_TYPES = ("application/pkcs7-mime", "application/x-pkcs7-mime")


def _parse(raw: bytes) -> MailMessage:
    return email.parser.BytesParser(policy=email.policy.compat32).parsebytes(raw)


def _payload(part: MailMessage) -> bytes:
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _headers_and_body(raw: bytes) -> tuple[MailMessage, memoryview] | None:
    """A single-part entity's headers (parsed) and its body (not parsed: a batch is
    megabytes of base64 the parser would walk line by line); None when the entity is
    anything the full parse must read (multipart, a header block that is not plain)."""
    crlf = raw.find(b"\n\r\n")
    lf = raw.find(b"\n\n", 0, crlf + 2 if crlf >= 0 else len(raw))
    ends = [at for at in (crlf, lf) if at >= 0]
    if not ends:
        return None
    at = min(ends)
    head = raw[: at + 1]
    if head.count(b"\r") != head.count(b"\r\n"):
        return None  # a bare CR: leave the line ends to the parser
    message = _parse(head)
    if message.defects or message.get_payload():
        return None
    if message.get_content_maintype() in ("multipart", "message"):
        return None
    return message, memoryview(raw)[at + (3 if raw.startswith(b"\n\r\n", at) else 2) :]


def _base64_body(message: MailMessage, body: memoryview) -> bytes | None:
    """``message.get_payload(decode=True)`` of a base64 body that decodes cleanly (the
    parser's own first try), fast; None when the parser must decide."""
    if str(message.get("content-transfer-encoding", "")).lower() != "base64":
        return None
    whole = body.obj  # the entity: line ends dropped in one pass, the body a view of it
    if isinstance(whole, bytes):  # the body is its tail (_headers_and_body)
        skip = len(whole) - body.nbytes
        lines = _even_lines(whole, skip)
        if lines is not None:
            return lines
        head = whole[:skip]
        cut = skip - head.count(b"\r") - head.count(b"\n")
        encoded = memoryview(whole.translate(None, b"\r\n"))[cut:]
    else:
        encoded = memoryview(bytes(body).translate(None, b"\r\n"))
    # (what b"".join(body.splitlines()) gives)
    if len(encoded) % 4:
        return None
    try:
        return bytes(_b64decode(encoded, validate=True))
    except (binascii.Error, ValueError):
        return None


def _even_lines(whole: bytes, skip: int) -> bytes | None:
    """The decoded body ``whole[skip:]`` when it is base64 in lines of one width ended by
    CRLF (what the collector and ``openssl`` write), else None.

    One lenient decode (which skips the line ends) instead of dropping the line ends
    then decoding strictly: a third of the time for a batch.  That it is clean, so that
    the strict decode the parser tries first would give the same, is proved by
    counting: the line ends sit where the width puts them (a strided look, not a pass
    over the data), ``=`` appears only at the end, and the decode kept every other
    character -- any other byte, or a line end out of place, is skipped by the lenient
    decode and so makes the output shorter than the count says."""
    width = whole.find(b"\r\n", skip) - skip
    size = len(whole) - skip
    if width <= 0:
        return None
    full = size // (width + 2)
    grid = np.frombuffer(whole, dtype=np.uint8, count=full * (width + 2), offset=skip)
    grid = grid.reshape(full, width + 2)
    if not ((grid[:, width] == 13).all() and (grid[:, width + 1] == 10).all()):
        return None
    tail = whole[skip + full * (width + 2) :]
    rest = tail[:-2] if tail.endswith(b"\r\n") else tail
    if b"\r" in rest or b"\n" in rest:
        return None
    chars = full * width + len(rest)
    end = skip + full * (width + 2) + len(rest) if rest else skip + full * (width + 2) - 2
    last = whole[end - 2 : end]  # the data's last two characters
    pads = len(last) - len(last.rstrip(b"="))
    if chars % 4 or whole.find(b"=", skip, end - pads) >= 0:
        return None
    try:
        decoded = bytes(_b64decode(memoryview(whole)[skip:], validate=False))
    except (binascii.Error, ValueError):
        return None
    return decoded if len(decoded) == chars // 4 * 3 - pads else None


def _entity_payload(raw: bytes) -> tuple[MailMessage, bytes | None]:
    """(the entity, its decoded payload when the fast read gave it, else None)."""
    fast = _headers_and_body(raw)
    if fast is not None:
        data = _base64_body(*fast)
        if data is not None:
            return fast[0], data
    return _parse(raw), None


def _enveloped_part(message: MailMessage) -> MailMessage | None:
    for part in message.walk():
        kind = part.get_content_type()
        smime = (part.get_param("smime-type") or "").__str__().lower()
        if kind in _PKCS7_TYPES and smime in ("", "enveloped-data", "authenveloped-data"):
            return part
        if kind == "application/octet-stream" and str(part.get_filename() or "").endswith(".p7m"):
            return part
    return None


def decrypt(raw: bytes, cert: x509.Certificate, key: rsa.RSAPrivateKey) -> bytes:
    """The decrypted content of the message *raw* (the signed inner entity).

    Raises:
        SmimeError: not encrypted, not for *cert*, or it does not decrypt.
    """
    message, data = _entity_payload(raw)
    part = _enveloped_part(message)
    if part is None:
        raise SmimeError("not-encrypted", "not an encrypted S/MIME message")
    der = data if data is not None and part is message else _payload(part)
    if not der:
        raise SmimeError("not-encrypted", "the encrypted part is empty")
    try:
        return pkcs7.pkcs7_decrypt_der(der, cert, key, [])
    except ValueError as err:
        text = str(err).lower()
        if "recipient" in text:
            raise SmimeError(
                "wrong-recipient", "not encrypted to this harvest's certificate"
            ) from None
        raise SmimeError("undecryptable", f"the message does not decrypt ({err})") from None
    except Exception as err:  # the rust layer may raise its own types on garbage
        raise SmimeError("undecryptable", f"the message does not decrypt ({err})") from None


_BOUNDARY = re.compile(rb'boundary="?([^";\r\n]+)"?', re.IGNORECASE)


def _detached(raw: bytes, message: MailMessage) -> tuple[bytes, bytes]:
    """(the signed part's exact bytes, the signature's DER) of a multipart/signed."""
    boundary = message.get_boundary()
    if not boundary:
        raise SmimeError("unsigned", "multipart/signed without a boundary")
    delimiter = b"--" + boundary.encode("ascii", "replace")
    pieces = raw.split(delimiter)
    if len(pieces) < 4:
        raise SmimeError("unsigned", "multipart/signed needs a content and a signature part")
    # pieces[1] is the signed part, framed by the CRLF after the delimiter line and
    # the CRLF that belongs to the next delimiter (RFC 2046 section 5.1.1)
    first = pieces[1]
    first = first[2:] if first.startswith(b"\r\n") else first[1:] if first[:1] == b"\n" else first
    if first.endswith(b"\r\n"):
        first = first[:-2]
    elif first.endswith(b"\n"):
        first = first[:-1]
    signature: bytes | None = None
    for part in message.get_payload() if message.is_multipart() else []:
        if isinstance(part, MailMessage) and part.get_content_type() in (
            "application/pkcs7-signature",
            "application/x-pkcs7-signature",
        ):
            signature = _payload(part)
    if not signature:
        raise SmimeError("unsigned", "multipart/signed without a signature part")
    return first, signature


def _canonical(data: bytes) -> bytes:
    return re.sub(rb"\r?\n", b"\r\n", data)


def open_message(
    raw: bytes,
    *,
    cert: x509.Certificate,
    key: rsa.RSAPrivateKey,
    trusted: list[x509.Certificate],
) -> Opened:
    """Decrypt *raw* with the harvest's *cert*/*key* and verify it against *trusted*.

    Raises:
        SmimeError: refused (see the module docstring for the kinds).
    """
    inner = decrypt(raw, cert, key)
    return verify_inner(inner, trusted)


def verify_inner(inner: bytes, trusted: list[x509.Certificate]) -> Opened:
    """Verify a decrypted inner entity (opaque, bare DER, or multipart/signed).

    Raises:
        SmimeError: not signed, or the signature is refused.
    """
    detached_content: bytes | None = None
    if inner[:1] == b"\x30":
        der = inner
    else:
        message, data = _entity_payload(inner)
        kind = message.get_content_type()
        if kind == "multipart/signed":
            detached_content, der = _detached(inner, message)
        elif kind in _PKCS7_TYPES:
            smime = str(message.get_param("smime-type") or "signed-data").lower()
            if smime not in ("signed-data", ""):
                raise SmimeError("unsigned", f"the inner entity is {smime}, not signed-data")
            der = data if data is not None else _payload(message)
        else:
            raise SmimeError("unsigned", "the batch is not signed")
    try:
        signed = cms.parse_signed_data(der)
    except cms.CmsError as err:
        raise SmimeError("unsigned", f"the signature cannot be read: {err}") from None
    try:
        if detached_content is None:
            verified = cms.verify(signed, trusted)
            content = signed.content or b""
        else:
            content = detached_content
            try:
                verified = cms.verify(signed, trusted, content=content)
            except cms.CmsError:
                content = _canonical(detached_content)  # signed in canonical form
                verified = cms.verify(signed, trusted, content=content)
    except cms.CmsError as err:
        reason = str(err)
        kind = "unknown-signer" if reason == "unknown signer" else "bad-signature"
        raise SmimeError(kind, reason) from None
    return Opened(content, verified, detached_content is not None)


def signers_in(inner: bytes) -> list[x509.Certificate]:
    """The certificates a decrypted inner entity carries (for an audit of who it claims
    to be from); empty when there are none or it cannot be read."""
    try:
        if inner[:1] == b"\x30":
            der = inner
        else:
            message = _parse(inner)
            if message.get_content_type() == "multipart/signed":
                der = _detached(inner, message)[1]
            else:
                der = _payload(message)
        return cms.parse_signed_data(der).certificates
    except (cms.CmsError, SmimeError, ValueError):
        return []
