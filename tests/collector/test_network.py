"""The network path's answers in SMTP's codes, which the spool already acts on: taken
(250, naming the batch: acknowledged), refused for good (554: kept with its reason), and
everything else -- try later, not entitled, the proxy down -- 451, tried again."""

from __future__ import annotations

import pytest
from starwrs.collector.network import _answer_reply
from starwrs.grammar import serialize
from starwrs.grammar.catalogue_harvest import CallBatchAck

BATCH = "0123456789abcdef0123456789abcdef"


def answer(error: int, result: str, text: str) -> bytes:
    message = CallBatchAck(error=error, batch=BATCH, result=result, text=text).to_message()
    return serialize(message).encode()


def test_a_taken_batch_is_250_and_names_the_batch() -> None:
    reply = _answer_reply(0, answer(0, "accepted", "2.0.0 batch taken"), BATCH)
    assert reply.ok
    assert BATCH in reply.text
    assert "accepted" in reply.text


def test_a_refused_batch_is_554_with_its_reason() -> None:
    reply = _answer_reply(6103, answer(6103, "refused", "5.7.0 unknown signer"), BATCH)
    assert reply.code == 554
    assert "unknown signer" in reply.text


@pytest.mark.parametrize(
    ("status", "payload"),
    [
        (6101, answer(6101, "later", "4.3.0 cannot be rated now")),
        (7003, b"<ERROR=7003>"),  # the user lacks HARV: an operator fixes it, nothing is lost
        (7006, b""),
        (0, b"not a message"),  # status 0 but no CDRA: not taken
        (0, b"CDRA<ERROR=0,BATCH=another0123456789>"),  # another batch's answer
    ],
)
def test_anything_else_is_451_and_tried_again(status: int, payload: bytes) -> None:
    assert _answer_reply(status, payload, BATCH).transient
