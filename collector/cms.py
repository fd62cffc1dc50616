"""CMS SignedData (RFC 5652 section 5) read and verified: what ``cryptography`` lacks.

Theory of operation
-------------------
``cryptography`` (>= 50) builds signed and enveloped S/MIME and decrypts enveloped
data, but has no API to *verify* a SignedData.  The harvest must verify every batch
against the certificates of the collectors it enrolled, so this module reads the
structure itself and leaves every piece of cryptography to ``cryptography``:

1. :func:`parse_signed_data` reads ``ContentInfo { id-signedData, [0] SignedData }``
   with a small BER reader (definite and indefinite lengths, constructed OCTET
   STRINGs: ``openssl cms -sign`` may stream) into the encapsulated content (absent
   for a detached signature), the certificates it carries and its SignerInfos;
2. :func:`verify` takes the content (the encapsulated one, or the detached part of a
   ``multipart/signed``) and the *trusted* certificates -- never the ones the message
   carries: a signer is identified by its ``sid`` (issuer and serial number, or
   subject key identifier) among the trusted ones.  With signed attributes, the
   ``message-digest`` attribute must equal the content's digest and
   ``content-type`` the encapsulated type, and the signature is over the DER of the
   attributes re-tagged as a SET (RFC 5652 section 5.4); without them, over the
   content.  RSA PKCS #1 v1.5 and ECDSA signatures, SHA-256/384/512 digests (SHA-1
   is refused).

Every problem is a :class:`CmsError` with a one-line reason; nothing here raises
anything else on hostile input (lengths are checked against the buffer; nesting is
bounded).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

__all__ = ["CmsError", "SignedData", "SignerInfo", "Verified", "parse_signed_data", "verify"]

OID_DATA = "1.2.840.113549.1.7.1"
OID_SIGNED_DATA = "1.2.840.113549.1.7.2"
OID_ENVELOPED_DATA = "1.2.840.113549.1.7.3"
_OID_CONTENT_TYPE = "1.2.840.113549.1.9.3"
_OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
_OID_SIGNING_TIME = "1.2.840.113549.1.9.5"

_DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {
    "2.16.840.1.101.3.4.2.1": hashes.SHA256,
    "2.16.840.1.101.3.4.2.2": hashes.SHA384,
    "2.16.840.1.101.3.4.2.3": hashes.SHA512,
}
_RSA_SIGNATURES = {
    "1.2.840.113549.1.1.1",  # rsaEncryption (the digest comes from digestAlgorithm)
    "1.2.840.113549.1.1.11",  # sha256WithRSAEncryption
    "1.2.840.113549.1.1.12",  # sha384WithRSAEncryption
    "1.2.840.113549.1.1.13",  # sha512WithRSAEncryption
}
_EC_SIGNATURES = {
    "1.2.840.10045.2.1",  # id-ecPublicKey (some signers put the key's OID here)
    "1.2.840.10045.4.3.2",  # ecdsa-with-SHA256
    "1.2.840.10045.4.3.3",  # ecdsa-with-SHA384
    "1.2.840.10045.4.3.4",  # ecdsa-with-SHA512
}
_MAX_DEPTH = 32


class CmsError(Exception):
    """The data is not a SignedData we accept, or it does not verify (one line)."""


# -- a small BER reader ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Node:
    tag: int  # the identifier octet (class, constructed bit, number < 31)
    start: int  # first octet of the identifier
    body: int  # first octet of the contents
    body_end: int  # end of the contents (before an end-of-contents marker)
    end: int  # end of the whole element
    indefinite: bool

    @property
    def constructed(self) -> bool:
        return bool(self.tag & 0x20)


def _node(buf: bytes, pos: int, limit: int) -> _Node:
    if pos + 2 > limit:
        raise CmsError("truncated ASN.1 element")
    tag = buf[pos]
    if tag & 0x1F == 0x1F:
        raise CmsError("high tag numbers are not used in CMS")
    first = buf[pos + 1]
    body = pos + 2
    if first < 0x80:
        length = first
    elif first == 0x80:
        if not tag & 0x20:
            raise CmsError("indefinite length on a primitive element")
        end = _indefinite_end(buf, body, limit, 0)
        return _Node(tag, pos, body, end - 2, end, True)
    else:
        count = first & 0x7F
        if count > 4 or body + count > limit:
            raise CmsError("bad ASN.1 length")
        length = int.from_bytes(buf[body : body + count], "big")
        body += count
    if body + length > limit:
        raise CmsError("ASN.1 element runs past its container")
    return _Node(tag, pos, body, body + length, body + length, False)


def _indefinite_end(buf: bytes, pos: int, limit: int, depth: int) -> int:
    """The end of an indefinite-length body starting at *pos* (after the 00 00)."""
    if depth > _MAX_DEPTH:
        raise CmsError("ASN.1 nested too deeply")
    while True:
        if pos + 2 > limit:
            raise CmsError("indefinite-length element without its end")
        if buf[pos] == 0 and buf[pos + 1] == 0:
            return pos + 2
        if buf[pos + 1] == 0x80:
            if not buf[pos] & 0x20:
                raise CmsError("indefinite length on a primitive element")
            pos = _indefinite_end(buf, pos + 2, limit, depth + 1)
        else:
            pos = _node(buf, pos, limit).end


def _children(buf: bytes, node: _Node) -> list[_Node]:
    if not node.constructed:
        raise CmsError("expected a constructed ASN.1 element")
    out: list[_Node] = []
    pos = node.body
    while pos < node.body_end:
        child = _node(buf, pos, node.body_end)
        out.append(child)
        pos = child.end
    return out


def _expect(node: _Node, tag: int, what: str) -> _Node:
    if node.tag != tag:
        raise CmsError(f"{what}: unexpected ASN.1 tag 0x{node.tag:02x}")
    return node


def _octets(buf: bytes, node: _Node, depth: int = 0) -> bytes:
    """An OCTET STRING's contents, primitive or (BER) constructed from pieces."""
    if depth > _MAX_DEPTH:
        raise CmsError("ASN.1 nested too deeply")
    if node.tag & 0x1F != 0x04 and node.tag not in (0x80, 0xA0):
        raise CmsError("expected an OCTET STRING")
    if not node.constructed:
        return buf[node.body : node.body_end]
    return b"".join(_octets(buf, child, depth + 1) for child in _children(buf, node))


def _oid(buf: bytes, node: _Node) -> str:
    _expect(node, 0x06, "OBJECT IDENTIFIER")
    data = buf[node.body : node.body_end]
    if not data or data[-1] & 0x80:
        raise CmsError("bad OBJECT IDENTIFIER")
    arcs: list[int] = []
    value = 0
    for byte in data:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(str(a) for a in head + arcs[1:])


def _integer(buf: bytes, node: _Node) -> int:
    _expect(node, 0x02, "INTEGER")
    return int.from_bytes(buf[node.body : node.body_end], "big", signed=True)


def _der(buf: bytes, node: _Node) -> bytes:
    if node.indefinite:
        raise CmsError("a signed part must be DER (definite lengths)")
    return buf[node.start : node.end]


# -- SignedData -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignerInfo:
    """One signer of a SignedData, as read (nothing verified yet)."""

    issuer: bytes | None  # DER of the issuer Name (issuerAndSerialNumber)
    serial: int | None
    key_id: bytes | None  # subjectKeyIdentifier
    digest_oid: str
    signature_oid: str
    signed_attrs: bytes | None  # DER, re-tagged as a SET (what the signature covers)
    attrs: dict[str, list[bytes]]  # attribute OID -> values (each the DER of one value)
    signature: bytes


@dataclass(frozen=True, slots=True)
class SignedData:
    """A parsed SignedData."""

    content_type: str
    content: bytes | None  # None: a detached signature
    certificates: list[x509.Certificate] = field(default_factory=list)
    signers: list[SignerInfo] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Verified:
    """A signature that verified: who signed, what digest, and what proves it."""

    signer: x509.Certificate
    digest_name: str  # e.g. "sha256"
    digest: bytes  # of the content
    signed_attrs: bytes | None  # DER SET the signature covers (None: it covers the content)
    signature: bytes
    signing_time: dt.datetime | None


def parse_signed_data(data: bytes) -> SignedData:
    """Read a ContentInfo holding a SignedData (BER or DER).

    Raises:
        CmsError: it is not one.
    """
    buf = bytes(data)
    top = _expect(_node(buf, 0, len(buf)), 0x30, "ContentInfo")
    parts = _children(buf, top)
    if len(parts) < 2:
        raise CmsError("ContentInfo without content")
    kind = _oid(buf, parts[0])
    if kind != OID_SIGNED_DATA:
        raise CmsError(f"not a signed message (content type {kind})")
    explicit = _children(buf, _expect(parts[1], 0xA0, "ContentInfo content"))
    if len(explicit) != 1:
        raise CmsError("bad ContentInfo content")
    fields_ = _children(buf, _expect(explicit[0], 0x30, "SignedData"))
    if len(fields_) < 4:
        raise CmsError("SignedData is missing fields")
    _integer(buf, fields_[0])
    encap = _children(buf, _expect(fields_[2], 0x30, "EncapsulatedContentInfo"))
    if not encap:
        raise CmsError("empty EncapsulatedContentInfo")
    content_type = _oid(buf, encap[0])
    content: bytes | None = None
    if len(encap) > 1:
        inner = _children(buf, _expect(encap[1], 0xA0, "eContent"))
        if len(inner) != 1:
            raise CmsError("bad eContent")
        content = _octets(buf, inner[0])
    certificates: list[x509.Certificate] = []
    signers_node: _Node | None = None
    for node in fields_[3:]:
        if node.tag == 0xA0:
            for cert in _children(buf, node):
                if cert.tag != 0x30:
                    continue  # other certificate formats are not used
                try:
                    certificates.append(x509.load_der_x509_certificate(_der(buf, cert)))
                except Exception:  # ValueError, x509.InvalidVersion, ...: hostile bytes
                    raise CmsError("a certificate in the message cannot be read") from None
        elif node.tag == 0xA1:
            continue  # CRLs: not used
        elif node.tag == 0x31:
            signers_node = node
        else:
            raise CmsError(f"SignedData: unexpected ASN.1 tag 0x{node.tag:02x}")
    if signers_node is None:
        raise CmsError("SignedData has no SignerInfos")
    signers = [_signer(buf, node) for node in _children(buf, signers_node)]
    return SignedData(content_type, content, certificates, signers)


def _algorithm(buf: bytes, node: _Node) -> str:
    parts = _children(buf, _expect(node, 0x30, "AlgorithmIdentifier"))
    if not parts:
        raise CmsError("empty AlgorithmIdentifier")
    return _oid(buf, parts[0])


def _signer(buf: bytes, node: _Node) -> SignerInfo:
    parts = _children(buf, _expect(node, 0x30, "SignerInfo"))
    if len(parts) < 5:
        raise CmsError("SignerInfo is missing fields")
    _integer(buf, parts[0])
    issuer: bytes | None = None
    serial: int | None = None
    key_id: bytes | None = None
    sid = parts[1]
    if sid.tag == 0x30:
        issuer_serial = _children(buf, sid)
        if len(issuer_serial) != 2:
            raise CmsError("bad IssuerAndSerialNumber")
        issuer = _der(buf, _expect(issuer_serial[0], 0x30, "issuer"))
        serial = _integer(buf, issuer_serial[1])
    elif sid.tag == 0x80:
        key_id = buf[sid.body : sid.body_end]
    else:
        raise CmsError("unknown signer identifier")
    digest_oid = _algorithm(buf, parts[2])
    rest = parts[3:]
    signed_attrs: bytes | None = None
    attrs: dict[str, list[bytes]] = {}
    if rest and rest[0].tag == 0xA0:
        raw = _der(buf, rest[0])
        signed_attrs = b"\x31" + raw[1:]
        for attr in _children(buf, rest[0]):
            pair = _children(buf, _expect(attr, 0x30, "Attribute"))
            if len(pair) != 2:
                raise CmsError("bad Attribute")
            values = _children(buf, _expect(pair[1], 0x31, "Attribute values"))
            attrs.setdefault(_oid(buf, pair[0]), []).extend(_der(buf, v) for v in values)
        rest = rest[1:]
    if len(rest) < 2:
        raise CmsError("SignerInfo is missing its signature")
    signature_oid = _algorithm(buf, rest[0])
    signature = _octets(buf, _expect(rest[1], 0x04, "signature"))
    return SignerInfo(
        issuer, serial, key_id, digest_oid, signature_oid, signed_attrs, attrs, signature
    )


def _find(signer: SignerInfo, trusted: list[x509.Certificate]) -> x509.Certificate | None:
    for cert in trusted:
        if signer.issuer is not None:
            if cert.serial_number == signer.serial and cert.issuer.public_bytes() == signer.issuer:
                return cert
        elif signer.key_id is not None:
            try:
                ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
            except x509.ExtensionNotFound:
                continue
            if ski.value.digest == signer.key_id:
                return cert
    return None


def _single(values: list[bytes] | None, what: str) -> bytes:
    if not values or len(values) != 1:
        raise CmsError(f"the signed attributes need exactly one {what}")
    return values[0]


def _signing_time(values: list[bytes] | None) -> dt.datetime | None:
    if not values:
        return None
    raw = values[0]
    node = _node(raw, 0, len(raw))
    text = raw[node.body : node.body_end].decode("ascii", "replace")
    try:
        if node.tag == 0x17:  # UTCTime YYMMDDHHMMSSZ
            when = dt.datetime.strptime(text, "%y%m%d%H%M%SZ")
        elif node.tag == 0x18:  # GeneralizedTime
            when = dt.datetime.strptime(text, "%Y%m%d%H%M%SZ")
        else:
            return None
    except ValueError:
        return None
    return when.replace(tzinfo=dt.UTC)


def verify(
    signed: SignedData, trusted: list[x509.Certificate], *, content: bytes | None = None
) -> Verified:
    """Verify *signed* against *trusted* certificates.

    Args:
        signed: from :func:`parse_signed_data`.
        trusted: the certificates a signer may have; the message's own are not trusted.
        content: the detached content (``multipart/signed``); default the
            encapsulated content.

    Returns:
        The first signer that verifies.

    Raises:
        CmsError: no signer is trusted, or none verifies (the reason of the first).
    """
    data = content if content is not None else signed.content
    if data is None:
        raise CmsError("a detached signature without its content")
    if not signed.signers:
        raise CmsError("the message has no signer")
    problem = ""
    for signer in signed.signers:
        cert = _find(signer, trusted)
        if cert is None:
            problem = problem or "unknown signer"
            continue
        try:
            return _verify_one(signed, signer, cert, data)
        except CmsError as err:
            problem = str(err)
    raise CmsError(problem)


def _verify_one(
    signed: SignedData, signer: SignerInfo, cert: x509.Certificate, data: bytes
) -> Verified:
    algorithm = _DIGESTS.get(signer.digest_oid)
    if algorithm is None:
        raise CmsError(f"digest algorithm {signer.digest_oid} is not accepted")
    hasher = algorithm()
    digester = hashes.Hash(hasher)
    digester.update(data)
    digest = digester.finalize()
    covered = data
    if signer.signed_attrs is not None:
        declared = _single(signer.attrs.get(_OID_MESSAGE_DIGEST), "message-digest")
        node = _node(declared, 0, len(declared))
        if node.tag != 0x04 or declared[node.body : node.body_end] != digest:
            raise CmsError("the content does not match its signed digest (altered)")
        kind = _single(signer.attrs.get(_OID_CONTENT_TYPE), "content-type")
        if _oid(kind, _node(kind, 0, len(kind))) != signed.content_type:
            raise CmsError("the signed content type does not match")
        covered = signer.signed_attrs
    key = cert.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            if signer.signature_oid not in _RSA_SIGNATURES:
                raise CmsError(f"signature algorithm {signer.signature_oid} is not accepted")
            key.verify(signer.signature, covered, padding.PKCS1v15(), algorithm())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            if signer.signature_oid not in _EC_SIGNATURES:
                raise CmsError(f"signature algorithm {signer.signature_oid} is not accepted")
            key.verify(signer.signature, covered, ec.ECDSA(algorithm()))
        else:
            raise CmsError("the signer's key type is not accepted")
    except InvalidSignature:
        raise CmsError("the signature does not verify (altered or not the signer's)") from None
    return Verified(
        cert,
        hasher.name,
        digest,
        signer.signed_attrs,
        signer.signature,
        _signing_time(signer.attrs.get(_OID_SIGNING_TIME)),
    )
