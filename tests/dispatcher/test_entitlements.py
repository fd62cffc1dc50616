"""dispatcher/entitlements.py: order entry's answers, the cache, one fetch per miss."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from starwrs.dispatcher.entitlements import (
    Applications,
    EntitlementCache,
    read_applications,
    read_validation,
    text_items,
)
from starwrs.grammar import parse
from starwrs.grammar.errors import StarwrsError

# -- order entry's answers ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "items"),
    [
        ("X<APPS=<RM~INBX~OE>>", ("RM", "INBX", "OE")),
        ("X<APPS=<RM>>", ("RM",)),
        ("X<APPS=<>>", ()),
        ("X<APPS=>", ()),
        ("X<APPS=RM~OE>", ("RM", "OE")),
        ("X<APPS=RM>", ("RM",)),
        ("X<APPS=A<B=1>>", ()),
    ],
)
def test_text_items(text: str, items: tuple[str, ...]) -> None:
    assert text_items(parse(text).get("APPS")) == items


def test_read_validation() -> None:
    ok = read_validation(b"VUA<ERROR=0,USERID=jean,ENTPID=00022924,TIMEZONE=EST,EXTRA=1>")
    assert (ok.error, ok.user_id, ok.entp_id, ok.timezone, ok.lang) == (
        0,
        "jean",
        "00022924",
        "EST",
        None,
    )
    assert read_validation(b"VUA<ERROR=6115>").error == 6115
    assert read_validation(b"VUA<ERROR=7012>").error == 7012


@pytest.mark.parametrize(
    "payload", [b"VUA<ERROR=0,USERID=jean>", b"VUA<USERID=jean>", b"VUA<ERROR=x>", b"\xff", b"VUA<"]
)
def test_a_broken_validation_answer_is_order_entrys_fault(payload: bytes) -> None:
    with pytest.raises(StarwrsError) as info:
        read_validation(payload)
    assert info.value.code == 7006


def test_read_applications() -> None:
    answer = read_applications(b"GUAA<ERROR=0,USERID=jean,APPS=<rm~INBX>,PRODUCTS=<V~S>,NEW=1>")
    assert answer == Applications(True, frozenset({"RM", "INBX"}), ("V", "S"), ())
    assert not read_applications(b"GUAA<ERROR=7003>").enabled
    assert not read_applications(b"GUAA<ERROR=6115>").enabled
    assert not read_applications(b"GUAA<ERROR=0,ENABLED=0,APPS=<RM>>").enabled
    with pytest.raises(StarwrsError):
        read_applications(b"nonsense")


# -- the cache -------------------------------------------------------------------------


def test_a_fetch_overtaken_by_a_drop_is_not_cached() -> None:
    cache = EntitlementCache()
    generation = cache.generation("jean")
    cache.drop("jean")  # ENTC while the fetch was on its way
    assert not cache.put("jean", frozenset({"RM"}), generation)
    assert cache.get("jean") is None
    assert cache.put("jean", frozenset({"RM"}), cache.generation("jean"))
    assert cache.get("jean") == frozenset({"RM"})


def test_the_least_recently_used_user_goes_first() -> None:
    cache = EntitlementCache(max_users=2)
    for user in ("a", "b"):
        cache.put(user, frozenset({user}), 0)
    cache.get("a")
    cache.put("c", frozenset(), 0)
    assert (cache.get("a"), cache.get("b"), len(cache)) == (frozenset({"a"}), None, 2)


async def test_one_fetch_serves_every_caller_that_misses() -> None:
    cache = EntitlementCache()
    calls = 0
    gate = trio.Event()

    async def fetch() -> Applications:
        nonlocal calls
        calls += 1
        await gate.wait()
        return Applications(True, frozenset({"RM"}))

    results: list[Applications] = []

    async def ask() -> None:
        results.append(await cache.lookup("jean", fetch))

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(ask)
        await trio.testing.wait_all_tasks_blocked()
        gate.set()
    assert calls == 1
    assert all(r.apps == frozenset({"RM"}) for r in results)


async def test_a_failed_fetch_fails_every_waiter_and_the_next_miss_tries_again() -> None:
    cache = EntitlementCache()
    gate = trio.Event()
    calls = 0

    async def failing() -> Applications:
        nonlocal calls
        calls += 1
        await gate.wait()
        raise StarwrsError(7006, "OE proxy unavailable")  # type: ignore[arg-type]

    codes: list[int] = []

    async def ask() -> None:
        try:
            await cache.lookup("jean", failing)
        except StarwrsError as err:
            codes.append(err.code)

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(ask)
        await trio.testing.wait_all_tasks_blocked()
        gate.set()
    assert (calls, codes) == (1, [7006, 7006, 7006])

    async def works() -> Applications:
        return Applications(True, frozenset({"INBX"}))

    assert (await cache.lookup("jean", works)).apps == frozenset({"INBX"})
