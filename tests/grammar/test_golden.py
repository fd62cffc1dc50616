"""Every seed example against its golden parse result (fixtures/seed/*.golden.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from starwrs.grammar import MessageError, parse, serialize
from starwrs.grammar.catalogue import validate
from starwrs.grammar.jsonform import to_json
from starwrs.grammar.parser import parse_lark
from starwrs.grammar.seed import seed_index

SEED = Path(__file__).resolve().parents[2] / "fixtures" / "seed"
FIXTURES = seed_index()["fixtures"]


@pytest.mark.parametrize("entry", FIXTURES, ids=[f["file"] for f in FIXTURES])
def test_fixture_matches_its_golden_parse(entry: dict[str, object]) -> None:
    path = SEED / str(entry["file"])
    text = path.read_text(encoding="utf-8")
    golden = json.loads(path.with_name(path.name.removesuffix(".txt") + ".golden.json").read_text())
    if "error" in golden:
        for parser in (parse, parse_lark):
            with pytest.raises(MessageError) as info:
                parser(text)
            assert info.value.to_json() == golden["error"]
        assert golden["error"]["error"] == entry["expect"] == 6612
        return
    message = parse(text)
    assert message == parse_lark(text)
    assert to_json(message) == golden["tree"]
    assert serialize(message) == golden["canonical"]
    if entry["expect"] == "ok":
        assert type(validate(message, str(entry["service"]))).__name__ == entry["class"]
    else:
        with pytest.raises(MessageError) as info:
            validate(message, str(entry["service"]))
        assert info.value.code == entry["expect"]


def test_the_appendix_i_ard_is_rejected_where_its_body_closes_early() -> None:
    text = (SEED / "12_ard_request_table.as_printed.txt").read_text(encoding="utf-8")
    with pytest.raises(MessageError) as info:
        parse(text)
    assert info.value.code == 6612
    # FILTERS=<BILLING=<99920046,,>,>,> : the third '>' closes ARD<...> too soon
    assert text[: info.value.offset + 1].endswith("FILTERS=<BILLING=<99920046,,>,>,>")
