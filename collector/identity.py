"""Keys and certificates for S/MIME: the collector's signing identity, the harvest's
encryption identity, and reading / writing them as PEM.

Theory of operation
-------------------
* A **collector** (``starwrs collector init``) makes an ECDSA P-256 key, a
  self-signed certificate (two years; key usage digitalSignature + nonRepudiation,
  extended key usage emailProtection, subject ``CN=<name>, O=<ENTPID>``, the e-mail
  address it sends from) and a certificate request with the same subject.  The
  provider trusts the certificate itself, not an issuer: ``starwrs admin collector
  enroll ENTPID CERT`` pins it (its SHA-256 fingerprint) to the enterprise, ``revoke``
  takes it back.  So nothing outside the two parties vouches for a collector.
* The **harvest** has an RSA 3072 key (S/MIME key transport is RSA:
  ``cryptography``'s EnvelopedData takes RSA recipients only) and a certificate for
  its mailbox, issued by the deployment CA when one is given (else self-signed);
  a collector encrypts to that certificate (``--provider-cert``).
* Keys are written 0600 via a temporary file and a rename, like the deployment PKI.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from starwrs.runtime.pki import write_atomic, write_certificate, write_key

__all__ = [
    "fingerprint",
    "load_certificate",
    "load_certificates",
    "load_key",
    "make_collector_identity",
    "make_provider_identity",
    "write_atomic",
    "write_certificate",
    "write_key",
]

COLLECTOR_LIFETIME = dt.timedelta(days=730)
PROVIDER_LIFETIME = dt.timedelta(days=825)


def fingerprint(cert: x509.Certificate) -> str:
    """The certificate's SHA-256 fingerprint, lower-case hex (the enrollment key)."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def load_key(path: Path) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    """Read a PEM private key (RSA or EC).

    Raises:
        ValueError: not a key of those kinds.
        OSError: the file cannot be read.
    """
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path} is not an RSA or EC private key")  # noqa: TRY004
    return key


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate in PEM (or one DER) *data*.

    Raises:
        ValueError: none can be read.
    """
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificates(data)
    return [x509.load_der_x509_certificate(data)]


def load_certificate(path: Path) -> x509.Certificate:
    """The first certificate in a PEM or DER file.

    Raises:
        ValueError: the file holds no certificate.
        OSError: it cannot be read.
    """
    return load_certificates(path.read_bytes())[0]


def _name(common_name: str, organization: str | None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


def make_collector_identity(
    entp_id: str,
    name: str,
    address: str,
    *,
    now: dt.datetime | None = None,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, x509.CertificateSigningRequest]:
    """A collector's key, self-signed certificate and certificate request.

    Args:
        entp_id: the enterprise (the subject's O).
        name: the collector's name (the subject's CN).
        address: the e-mail address it sends from (subjectAltName rfc822Name).
    """
    now = now or dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(name, entp_id)
    san = x509.SubjectAlternativeName([x509.RFC822Name(address)])
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=True,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + COLLECTOR_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .add_extension(san, critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject)
        .add_extension(san, critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert, csr


def make_provider_identity(
    address: str,
    *,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey] | None = None,
    now: dt.datetime | None = None,
    key_size: int = 3072,
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """The harvest's RSA key and its certificate for mailbox *address*.

    Issued by *issuer* (the deployment CA's certificate and key) when given, else
    self-signed.
    """
    now = now or dt.datetime.now(dt.UTC)
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    subject = _name(f"starwrs harvest {address}", "starwrs")
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=True,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    sign_with: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = key
    issuer_name = subject
    builder = x509.CertificateBuilder()
    if issuer is not None:
        issuer_name = issuer[0].subject
        sign_with = issuer[1]
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer[1].public_key()), False
        )
    cert = (
        builder.subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + PROVIDER_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(address)]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(sign_with, hashes.SHA256())
    )
    return key, cert
