"""Sending one built batch message through SMTP (``smtplib``, on a worker thread).

Theory of operation
-------------------
:func:`send_message` opens a connection to the relay (or the provider's harvest
listener), upgrades it with STARTTLS -- refusing to go on in the clear when the server
does not offer it -- or starts in TLS (``tls``), authenticates when a user is
configured, and sends one message with MAIL / RCPT / DATA, returning the server's
*final* answer as a :class:`Reply` (``smtplib.sendmail`` hides the DATA reply, and the
collector needs it: the harvest names the batch in its 250).  A connection, TLS or
protocol failure is :class:`Unreachable` (the caller retries with back-off); an answer
the server gave -- 2xx, 4xx or 5xx, at whichever command -- is a :class:`Reply`.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Reply", "Unreachable", "dot_starts_a_line", "send_message", "tls_context"]

TIMEOUT = 120.0


@dataclass(frozen=True, slots=True)
class Reply:
    """The server's answer: the SMTP code and its text (one line)."""

    code: int
    text: str

    @property
    def transient(self) -> bool:
        return 400 <= self.code < 500

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300


class Unreachable(Exception):
    """The message did not get to the server (the reason, one line)."""


def tls_context(ca: Path | None) -> ssl.SSLContext:
    """Client TLS: the server's certificate must chain to *ca* (else system trust)."""
    context = ssl.create_default_context(cafile=str(ca) if ca is not None else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _text(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return " ".join(text.split())[:400]


def dot_starts_a_line(data: bytes, eol: bytes) -> bool:
    """Whether a line of *data* (lines end with *eol*) starts with a dot: SMTP's
    transparency (RFC 5321 4.5.2) has something to do.  A batch has a few dots, all in
    its headers, so finding each (``memchr``) answers a 26 MB batch in ~3 ms; with many
    dots, one search for *eol* and a dot."""
    at = data.find(b".")
    for _ in range(64):
        if at < 0:
            return False
        if at == 0 or data[at - len(eol) : at] == eol:
            return True
        at = data.find(b".", at + 1)
    return data.startswith(b".") or eol + b"." in data


def _transparent(message: bytes) -> bytes:
    """What ``smtplib.SMTP.data`` sends for the bytes *message*: a dot doubled at the
    start of every line (after LF, as smtplib's ``^`` is), a CRLF at the end, then the
    end line ``.``.  smtplib doubles the dots with a regular expression over the whole
    message (~100 ms for a 26 MB batch of 50,000 records), here only when a line starts
    with one (:func:`dot_starts_a_line`)."""
    if dot_starts_a_line(message, b"\n"):
        message = smtplib._quote_periods(message)  # type: ignore[attr-defined]
    if message[-2:] != b"\r\n":
        message += b"\r\n"
    return message + b".\r\n"


def _data(client: smtplib.SMTP, message: bytes) -> tuple[int, bytes]:
    """``client.data(message)`` (the final reply), with :func:`_transparent`."""
    client.putcmd("data")
    code, text = client.getreply()
    if code != 354:
        raise smtplib.SMTPDataError(code, text)
    client.send(_transparent(message))
    return client.getreply()


def send_message(
    host: str,
    port: int,
    *,
    sender: str,
    to: str,
    message: bytes,
    tls: str = "starttls",
    ca: Path | None = None,
    user: str | None = None,
    password: str | None = None,
    timeout: float = TIMEOUT,
    local_hostname: str | None = None,
) -> Reply:
    """Send *message* from *sender* to *to*; the server's final answer.

    Raises:
        Unreachable: no connection, no TLS, or the connection broke.
    """
    context = tls_context(ca)
    client: smtplib.SMTP
    try:
        if tls == "tls":
            client = smtplib.SMTP_SSL(
                host, port, timeout=timeout, context=context, local_hostname=local_hostname
            )
        else:
            client = smtplib.SMTP(host, port, timeout=timeout, local_hostname=local_hostname)
        with client:
            code, text = client.ehlo()
            if code != 250:
                return Reply(code, _text(text))
            if tls == "starttls":
                if not client.has_extn("starttls"):
                    raise Unreachable(f"{host}:{port} does not offer STARTTLS")
                code, text = client.starttls(context=context)
                if code != 220:
                    return Reply(code, _text(text))
                client.ehlo()
            if user:
                try:
                    client.login(user, password or "")
                except smtplib.SMTPAuthenticationError as err:
                    return Reply(err.smtp_code, _text(err.smtp_error))
            code, text = client.mail(
                sender, ["BODY=8BITMIME"] if client.has_extn("8bitmime") else []
            )
            if code != 250:
                return Reply(code, _text(text))
            code, text = client.rcpt(to)
            if code not in (250, 251):
                return Reply(code, _text(text))
            code, text = _data(client, message)
            return Reply(code, _text(text))
    except smtplib.SMTPResponseException as err:
        return Reply(err.smtp_code, _text(err.smtp_error))
    except ssl.SSLError as err:
        raise Unreachable(f"TLS with {host}:{port} failed: {err.reason or err}") from None
    except (TimeoutError, smtplib.SMTPException, OSError) as err:
        raise Unreachable(f"{host}:{port}: {err.__class__.__name__}: {err}"[:300]) from None
