"""The network path (seed 003 claims 1, 5): a sealed batch as a bulk put through the
provider's public web tier, logged on with the collector's own credential.

Theory of operation
-------------------
One batch, one short session, on one keep-alive HTTPS connection
(:class:`starwrs.runtime.https.HttpsClient`, the server verified against the
collector's ``web-ca.pem`` or the system's trust store):

1. ``POST /logon`` as the collector's user -- a user of its enterprise entitled to
   the ``HARV`` application (``starwrs admin apps USER --add HARV``); the password
   comes from ``$STARWRS_COLLECTOR_PASSWORD``, never from a file of ours;
2. ``POST /dispatch`` with ``x-starwrs-mech: bulk``, whose body is the put frame
   ``CDRB<BATCH=id>`` (target ``HARV``, PROTOCOL.md section 3) and the data frames
   of the sealed message -- the very e-mail the SMTP path would send, so one intake
   serves both and a batch sent both ways is a replay the second time;
3. ``POST /logoff``.

The answer becomes a :class:`~starwrs.collector.mailer.Reply` with SMTP's codes, so the
spool treats both paths alike: ``CDRA<ERROR=0>`` is 250 and names the batch
(acknowledged), ``ERROR=6103`` is 554 (refused for good: kept with its reason); any
other answer -- 6101 (try later), 7003 (the user lacks ``HARV``), 7006/7007, an HTTP
error, a refused logon -- is 451: the batch waits and is tried again after a back-off
while an operator fixes what the line says; nothing is lost.  No connection, a TLS or
certificate failure, a connection cut short: :class:`~starwrs.collector.mailer.Unreachable`.
"""

from __future__ import annotations

import contextlib
import json
import ssl
from pathlib import Path

import trio
from starwrs.collector.config import WEB_PASSWORD_ENV
from starwrs.collector.mailer import Reply, Unreachable
from starwrs.grammar import MessageError, parse
from starwrs.grammar.errors import ErrorCode, describe
from starwrs.protocol import (
    NEED_DATA,
    Connection,
    ProtocolError,
    Response,
    Role,
    decode_frame,
)
from starwrs.protocol.bulk import data_frames, put_request
from starwrs.runtime.https import ClientError, HttpResponse, HttpsClient
from starwrs.runtime.pki import client_context_for_ca

__all__ = ["TARGET", "send_batch"]

#: the harvest's frame target
TARGET = "HARV"
FRAME_TYPE = "application/x-starwrs-frame"
TIMEOUT = 120.0
_LOGOFF_TIMEOUT = 10.0


def _line(text: str) -> str:
    return " ".join(text.split())[:400]


def _http_reply(what: str, response: HttpResponse) -> Reply:
    """A refused HTTP exchange: 451 with the server's JSON error when it gave one."""
    obj = response.json()
    if isinstance(obj, dict) and "error" in obj:
        detail = f"{obj.get('error')} {obj.get('message', '')}"
    else:
        detail = f"HTTP {response.status}"
    return Reply(451, _line(f"4.7.0 {what} refused: {detail}"))


def _answer_reply(frame_status: int, payload: bytes, batch_id: str) -> Reply:
    """The harvest's (or the dispatcher's) answer frame, as an SMTP-style reply."""
    text = payload.decode("utf-8", "replace")
    fields: dict[str, str] = {}
    acronym = None
    with contextlib.suppress(MessageError, RecursionError):
        message = parse(text)
        acronym = message.acronym
        for key in ("ERROR", "BATCH", "RESULT", "TEXT"):
            value = message.get(key)
            if isinstance(value, str):
                fields[key] = value
    error = fields.get("ERROR", "0")
    code = frame_status or (int(error) if error.isdigit() else int(ErrorCode.RM_GENERAL_FAILURE))
    said = fields.get("TEXT") or describe(code) or text
    if code == 0 and (acronym != "CDRA" or fields.get("BATCH") != batch_id):
        # only the harvest's own answer for this very batch takes it off the spool
        return Reply(451, _line(f"4.5.0 not the harvest's answer for batch {batch_id}: {text}"))
    if code == 0:
        if batch_id not in said:  # the harvest's text names the batch; else say it
            said = f"2.0.0 batch {batch_id} {fields.get('RESULT', 'accepted')}: {said}"
        return Reply(250, _line(said))
    if code == ErrorCode.RM_PARAMETER_ERROR:
        return Reply(554, _line(f"5.7.0 {code} {said}"))
    return Reply(451, _line(f"4.3.0 {code} {said}"))


async def _put(client: HttpsClient, message: bytes, batch_id: str) -> Reply:
    conn = Connection(Role.CLIENT)
    put = put_request(f"CDRB<BATCH={batch_id}>", message, target=TARGET)
    body = bytearray(conn.send(put))
    for data in data_frames(1, message, sha256=put.sha256):
        body += conn.send(data)
    response = await client.request(
        "POST",
        "/dispatch",
        body=bytes(body),
        headers=[("content-type", FRAME_TYPE), ("x-starwrs-mech", "bulk")],
    )
    if response.status != 200:
        return _http_reply("the batch was", response)
    try:
        frame = decode_frame(response.body)
        conn.receive_data(response.body)
        answer = conn.next_event()
    except ProtocolError as err:
        return Reply(451, _line(f"4.5.0 a bad answer from the provider: {err.message}"))
    if answer is NEED_DATA or not isinstance(answer, Response):
        return Reply(451, "4.5.0 the provider's answer is not a response frame")
    return _answer_reply(frame.header.status, answer.payload, batch_id)


async def send_batch(
    url: str,
    *,
    user: str,
    password: str | None,
    message: bytes,
    batch_id: str,
    ca: Path | None = None,
) -> Reply:
    """Put one sealed *message* to the harvest through the web tier at *url*.

    Raises:
        Unreachable: no connection, no TLS, or the connection broke.
    """
    if not password:
        return Reply(451, f"4.7.0 no password: set ${WEB_PASSWORD_ENV} for user {user}")
    try:
        context = client_context_for_ca(ca)
    except (OSError, ssl.SSLError) as err:
        raise Unreachable(f"cannot read the web tier's CA {ca}: {err}") from None
    try:
        async with HttpsClient(url, context, timeout=TIMEOUT) as client:
            body = json.dumps({"user": user, "password": password}).encode()
            logon = await client.request(
                "POST", "/logon", body=body, headers=[("content-type", "application/json")]
            )
            if logon.status != 200:
                return _http_reply(f"logon of {user}", logon)
            try:
                return await _put(client, message, batch_id)
            finally:
                with trio.move_on_after(_LOGOFF_TIMEOUT) as scope:
                    scope.shield = True
                    with contextlib.suppress(ClientError):
                        await client.request("POST", "/logoff")
    except ClientError as err:
        raise Unreachable(f"{url}: {err}"[:300]) from None
