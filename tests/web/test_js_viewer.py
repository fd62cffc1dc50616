"""The viewer's JavaScript (web/client/js/viewer/) held to Python: expressions, msgpack, subtotals.

Theory of operation
-------------------
One ``node web/client/test/viewer_harness.mjs --stdio`` answers JSON lines (its header
comment lists them); each test asks it and Python the same question:

* ``CALCULATE_EXPRESSION``: equations drawn from the grammar of
  :mod:`starwrs.proxies.dss.expr` (and random strings beside them) give the same
  references, the same exact value (coefficient and exponent, after Python's 60-digit
  context), the same display rounding to 0-4 decimals, and for bad input the same
  message at the same offset -- the formatter and the viewer agree on every number;
* msgpack: the get payload is byte for byte Python's ``encode_get``, and the data
  frames ``encode_data`` writes (and arbitrary msgpack values) decode to the same
  values;
* the report rules: the viewer's arrangement of a real report file (sorted by random
  keys, subtotalled by its own break column or another one, random visible columns)
  exports the CSV a Python reading of the same rules writes (:func:`reference_csv`).
"""

from __future__ import annotations

import csv
import decimal
import io
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from starwrs.protocol.control import encode_data, encode_get
from starwrs.protocol.events import BulkData
from starwrs.proxies.dss import expr as ex

from ..conftest import scaled
from .test_js_protocol import Harness, _node

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "web" / "client"
HARNESS = CLIENT / "test" / "viewer_harness.mjs"


@pytest.fixture(scope="module")
def js() -> Iterator[Harness]:
    harness = Harness(_node(), HARNESS)
    yield harness
    harness.close()


# -- expressions ------------------------------------------------------------------------


def normalized(value: Decimal) -> str:
    """``c e`` with the coefficient's trailing zeros stripped; zero is ``0e0``."""
    if value.is_zero():
        return "0e0"
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    coefficient = int("".join(map(str, digits)))
    while coefficient % 10 == 0:
        coefficient //= 10
        exponent += 1
    return f"{'-' if sign else ''}{coefficient}e{exponent}"


def py_expr(text: str, cases: list[dict[str, Any]]) -> dict[str, Any]:
    try:
        tree = ex.parse_expression(text)
    except ex.ExpressionError as err:
        return {"error": {"message": err.message.rsplit(" at offset ", 1)[0], "offset": err.offset}}
    columns, totals = ex.references(tree)
    results = []
    for case in cases:

        def values(obj: dict[str, str | None]) -> dict[int, Decimal | None]:
            return {int(k): (Decimal(v) if v not in (None, "") else None) for k, v in obj.items()}

        value = ex.evaluate(tree, values(case["row"]), values(case["totals"]))
        if value is None:
            results.append({"value": None, "fixed": None})
            continue
        try:
            fixed: Any = format(ex.quantize(value, case["decimals"]), "f")
        except decimal.InvalidOperation:
            fixed = {"range_error": True}
        results.append({"value": normalized(value), "fixed": fixed})
    return {"refs": [sorted(columns), sorted(totals)], "results": results}


IDS = st.sampled_from(["1", "36", "58", "67", "7", "0012"]) | st.integers(0, 10**10 - 1).map(str)
DIGITS = st.text("0123456789", min_size=1, max_size=30)
NUMBERS = st.builds(
    lambda whole, frac: whole + ("." + frac if frac else ""),
    DIGITS,
    st.none() | DIGITS,
)
SPACE = st.sampled_from(["", "", " ", "  ", "\t"])


def expressions() -> st.SearchStrategy[str]:
    atoms = NUMBERS | IDS.map(lambda i: f"C{i}") | IDS.map(lambda i: f"CT{i}")

    def grow(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        binary = st.tuples(inner, SPACE, st.sampled_from("+-*/"), SPACE, inner).map("".join)
        return (
            binary
            | inner.map(lambda e: f"-{e}")
            | st.tuples(SPACE, inner, SPACE).map(lambda p: f"({p[0]}{p[1]}{p[2]})")
        )

    return st.recursive(atoms, grow, max_leaves=8)


CELL = (
    st.none()
    | st.builds(
        lambda neg, whole, frac: ("-" if neg else "") + whole + ("." + frac if frac else ""),
        st.booleans(),
        st.text("0123456789", min_size=1, max_size=12),
        st.none() | st.text("0123456789", min_size=1, max_size=6),
    )
    | st.sampled_from(["0", "0.00", "1", "100", "-0.5"])
)


def cases() -> st.SearchStrategy[list[dict[str, Any]]]:
    keys = st.sampled_from(["1", "36", "58", "67", "7", "12"])
    values = st.dictionaries(keys, CELL, max_size=6)
    return st.lists(
        st.fixed_dictionaries({"row": values, "totals": values, "decimals": st.integers(0, 4)}),
        min_size=1,
        max_size=4,
    )


@settings(max_examples=scaled(1500), deadline=None)
@given(expressions(), cases())
@example("( C36 / CT36 ) * 100", [{"row": {"36": "12.5"}, "totals": {"36": "50"}, "decimals": 1}])
@example("C58 / C67", [{"row": {"58": "3", "67": "0"}, "totals": {}, "decimals": 2}])
@example("1 / 3 * 3", [{"row": {}, "totals": {}, "decimals": 4}])
@example("2 / 3", [{"row": {}, "totals": {}, "decimals": 0}])
@example("9" * 30 + "." + "9" * 30, [{"row": {}, "totals": {}, "decimals": 2}])
@example("-" + "9" * 30 + "." + "9" * 30, [{"row": {}, "totals": {}, "decimals": 0}])
@example(
    "C1 * C1 * C1 * C1 * C1 * C1",
    [{"row": {"1": "999999999999.999999"}, "totals": {}, "decimals": 3}],
)
@example("0.5 - 1", [{"row": {}, "totals": {}, "decimals": 0}])
def test_expressions_evaluate_alike(js: Harness, text: str, rows: list[dict[str, Any]]) -> None:
    assert js.ask({"op": "expr", "text": text, "cases": rows}) == py_expr(text, rows)


@settings(max_examples=scaled(1500), deadline=None)
@given(st.text("CT0123456789.+-*/() \tcx,é", max_size=40) | expressions().map(lambda e: e[:-1]))
@example("")
@example("1.")
@example("1.2.3")
@example("C" + "1" * 11)
@example("1" * 31)
@example("0." + "1" * 31)
@example("C12x")
@example("CT")
@example("(" * 33 + "1" + ")" * 33)
@example("-" * 33 + "1")
@example("1" * 201)
@example("(1")
@example("1)")
@example("'")
def test_bad_and_odd_equations_fail_alike(js: Harness, text: str) -> None:
    ours = py_expr(text, [])
    theirs = js.ask({"op": "expr", "text": text, "cases": []})
    if "error" in ours and not text.isascii():
        ours["error"].pop("message")
        theirs.get("error", {}).pop("message", None)
    assert theirs == ours


# -- msgpack ---------------------------------------------------------------------------------


@settings(max_examples=scaled(300), deadline=None)
@given(st.text(min_size=1, max_size=200), st.integers(0, 2**53 - 1))
def test_the_get_payload_is_pythons(js: Harness, resource: str, offset: int) -> None:
    ours = encode_get(resource, offset).hex()
    theirs = js.ask(
        {"op": "msgpack_encode", "value": {"op": "get", "resource": resource, "offset": offset}}
    )
    assert theirs["hex"] == ours


@settings(max_examples=scaled(300), deadline=None)
@given(st.binary(max_size=70_000), st.integers(0, 2**40), st.booleans())
def test_data_frames_decode_as_written(js: Harness, data: bytes, offset: int, done: bool) -> None:
    total = offset + len(data)
    if not data and not done:
        data, total = b"x", offset + 1
    sha = "ab" * 32 if done else None
    payload = b"".join(encode_data(BulkData(1, offset, total, data, done=done, sha256=sha)))
    answer = js.ask({"op": "msgpack_decode", "hex": payload.hex()})
    want: dict[str, Any] = {
        "transfer": 1,
        "offset": offset,
        "total": total,
        "data": {"$bin": data.hex()},
    }
    if done:
        want |= {"done": True, "sha256": sha}
    assert answer == {"value": want}


MSGPACK_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.text(max_size=40)
    | st.binary(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=12,
)


def as_json(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"$bin": value.hex()}
    if isinstance(value, list | tuple):
        return [as_json(v) for v in value]
    if isinstance(value, dict):
        return {k: as_json(v) for k, v in value.items()}
    return value


@settings(max_examples=scaled(500), deadline=None)
@given(MSGPACK_VALUES)
def test_msgpack_values_decode_alike(js: Harness, value: Any) -> None:
    packed = msgpack.packb(value, use_bin_type=True)
    assert js.ask({"op": "msgpack_decode", "hex": packed.hex()}) == {"value": as_json(value)}
    for cut in (1, len(packed) // 2):
        if cut < len(packed):
            assert "error" in js.ask({"op": "msgpack_decode", "hex": packed[:cut].hex()})


# -- the report rules --------------------------------------------------------------------------

#: a City Summary (TOTALMODE=3, SUBTOTCOL=<55>) as the DSS and RM wrote it in a demo run
BROAD_CSV = """0,54,55,67,62,36,61,58,63,64,66,65
D,WINDOW ROCK,AZ,1,4.2,2.1,1.7,0.26,1.2,2.10,0.26,0.12
S,,AZ,1,4.2,2.1,1.7,0.26,1.2,2.10,0.26,0.12
D,WINDSOR,CA,1,4.2,0.9,0.7,0.11,0.5,0.90,0.11,0.12
D,WHITTIER,CA,1,4.2,14.9,12.2,2.22,9.9,14.90,2.22,0.15
S,,CA,2,8.3,15.8,12.9,2.33,10.4,7.90,1.17,0.15
D,WILMINGTON,DE,1,4.2,0.6,0.5,0.05,0.2,0.60,0.05,0.08
S,,DE,1,4.2,0.6,0.5,0.05,0.2,0.60,0.05,0.08
D,WINONA,MN,1,4.2,0.6,0.5,0.05,0.2,0.60,0.05,0.08
D,WINNEBAGO,MN,1,4.2,0.6,0.5,0.08,0.4,0.60,0.08,0.13
S,,MN,2,8.3,1.2,1.0,0.13,0.6,0.60,0.07,0.11
D,YORK,NE,1,4.2,0.6,0.5,0.04,0.2,0.60,0.04,0.07
D,WISNER,NE,3,12.5,14.2,11.6,0.87,3.9,4.73,0.29,0.06
S,,NE,4,16.7,14.8,12.1,0.91,4.0,3.70,0.23,0.06
D,WINNSBORO,TX,1,4.2,9.9,8.1,0.68,3.0,9.90,0.68,0.07
D,WHARTON,TX,1,4.2,13.7,11.2,1.68,7.5,13.70,1.68,0.12
D,"SPRINGFIELD, EAST",TX,2,8.3,1.3,1.1,0.10,0.4,0.65,0.05,0.08
S,,TX,4,16.7,24.9,20.4,2.46,10.9,6.23,0.62,0.10
D,YOKOHAMA,,3,12.5,17.8,14.6,8.86,39.4,5.93,2.95,0.50
D,WINONA,,1,4.2,44.9,36.8,6.56,29.2,44.90,6.56,0.15
S,,,4,16.7,62.7,51.4,15.42,68.6,15.68,3.86,0.25
T,,,24,100.0,122.1,100.0,22.49,100.0,5.09,0.94,0.18
""".replace("\n", "\r\n")

_COLUMNS = [
    (54, "City", "S", 0, ""),
    (55, "State", "S", 0, ""),
    (67, "Calls", "I", 0, ""),
    (62, "% Calls", "N", 1, "( C67 / CT67 ) * 100"),
    (36, "Minutes", "N", 1, ""),
    (61, "% Min", "N", 1, "( C36 / CT36 ) * 100"),
    (58, "Amount", "C", 2, ""),
    (63, "% Amt", "N", 1, "( C58 / CT58 ) * 100"),
    (64, "Avg Min/Call", "N", 2, "C36 / C67"),
    (66, "Avg Amt/Call", "N", 2, "C58 / C67"),
    (65, "Avg Amt/Min", "N", 2, "C58 / C36"),
]
BROAD_MTD = (
    "<METADATA=<CRITERIA=<Name=Broad,Description=d,Dates=<06/02/1998 00:00 - 07/15/1998 12:00>>,"
    "DEFAULT_GRAPH_MODE=1,DEFAULT_GRAPH_TYPE=1,DEFINE_X_AXIS=1,X_AXIS_COLUMN=54,"
    "DEFAULT_Y_COLUMNS=<67>,COLUMN_DISPLAY_ORDER=<54~55~67~62~36~61~58~63~64~66~65>,"
    "SORT_ALLOWED=1,PRESORTED=1,PRESUBTOTALED=1,TOTALMODE=3,SORT_COLUMNS=<54D>,SUBTOTCOL=<55>,"
    "SELECTED_SECTION=0,"
    + ",".join(
        f"METACOLUMN=<META_COLUMN_ID={i},COLUMN_LABEL={label.replace('/', '/')},DATATYPE={t},"
        f"DECIMAL={d},HIDEABLE=1,GRAPHABLE={int(t != 'S')},WIDTH=8,CALCULATE=0,"
        f"CALCULATE_EXPRESSION={e}>"
        for i, label, t, d, e in _COLUMNS
    )
    + ">>"
)
META = {i: (label, t, d, e) for i, label, t, d, e in _COLUMNS}
DIMS = [i for i, _, t, _, _ in _COLUMNS if t == "S"]


def _value(line: dict[int, str], colid: int) -> Decimal | str | None:
    text = line.get(colid, "")
    if text == "":
        return None
    return Decimal(text) if META[colid][1] != "S" else text


def _sorted(lines: list[dict[int, str]], keys: list[tuple[int, str]]) -> list[dict[int, str]]:
    for colid, way in reversed(keys):  # successive stable sorts, last key first
        full = [line for line in lines if _value(line, colid) is not None]
        empty = [line for line in lines if _value(line, colid) is None]
        lines = sorted(full, key=lambda line: _value(line, colid), reverse=way == "desc") + empty  # type: ignore[arg-type, return-value]
    return lines


def _numbers(line: dict[int, str]) -> dict[int, Decimal | None]:
    return {k: Decimal(v) if v else None for k, v in line.items() if k and META[k][1] != "S"}


def _subtotal(group: list[dict[int, str]], brk: int, totals: dict[int, str]) -> dict[int, str]:
    line: dict[int, str] = {0: "S"}
    for colid, (_, kind, places, equation) in META.items():
        if kind == "S":
            line[colid] = group[0][colid] if colid == brk else ""
        elif not equation:
            cells = [Decimal(x[colid]) for x in group if x[colid] != ""]
            line[colid] = format(ex.quantize(sum(cells, Decimal(0)), places), "f") if cells else ""
    for colid, (_, kind, places, equation) in META.items():
        if kind != "S" and equation:
            value = ex.evaluate(ex.parse_expression(equation), _numbers(line), _numbers(totals))
            line[colid] = "" if value is None else format(ex.quantize(value, places), "f")
    return line


def reference_csv(
    keys: list[tuple[int, str]],
    brk: int | None,
    shown: list[int],
    text: str = BROAD_CSV,
    file_break: int = 55,
) -> str:
    """The viewer's rules (web/client/js/viewer/report.js), read independently, for a
    City Summary file *text* (the columns of :data:`META`) whose S lines break by
    *file_break*: the CSV the viewer exports for that sort, break and columns."""
    table = list(csv.reader(io.StringIO(text, newline="")))
    ids = [int(c) for c in table[0]]
    lines = [{ids[i]: cell for i, cell in enumerate(row)} for row in table[1:]]
    details = [line for line in lines if line[0] == "D"]
    total = next(line for line in lines if line[0] == "T")
    out: list[dict[int, str]] = []
    if brk is None:
        out = _sorted(details, keys)
    else:
        way = dict(keys).get(brk, "asc")
        groups: dict[str | None, list[dict[int, str]]] = {}
        for line in details:
            groups.setdefault(line[brk] or None, []).append(line)
        named = sorted((k for k in groups if k is not None), reverse=way == "desc")
        file_s = {line[brk] or None: line for line in lines if line[0] == "S"}
        for key in [*named, *([None] if None in groups else [])]:
            out += _sorted(groups[key], [k for k in keys if k[0] != brk])
            out.append(file_s[key] if brk == file_break else _subtotal(groups[key], brk, total))
    out.append(total)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["Row", *(META[c][0] for c in shown)])
    labels = {"D": "", "S": "Subtotal", "T": "Total"}
    for line in out:
        writer.writerow([labels[line[0]], *(line.get(c, "") for c in shown)])
    return buffer.getvalue()


SORT_KEYS = st.lists(
    st.tuples(st.sampled_from(list(META)), st.sampled_from(["asc", "desc"])),
    max_size=4,
    unique_by=lambda k: k[0],
)


@settings(max_examples=scaled(300), deadline=None)
@given(
    SORT_KEYS,
    st.sampled_from([None, 55, 54]),
    st.lists(st.sampled_from(list(META)), min_size=1, max_size=11, unique=True),
)
@example([(54, "desc")], 55, list(META))
@example([(67, "desc"), (36, "asc")], 54, [55, 54, 67, 64])
def test_subtotals_sorting_and_export_follow_the_rules(
    js: Harness, keys: list[tuple[int, str]], brk: int | None, shown: list[int]
) -> None:
    answer = js.ask(
        {
            "op": "report",
            "csv": BROAD_CSV,
            "mtd": BROAD_MTD,
            "sort": [list(k) for k in keys],
            "breaks": [] if brk is None else [brk],
            "columns": shown,
        }
    )
    assert answer["csv"] == reference_csv(keys, brk, shown)
    assert answer["from_file"] is (brk == 55)
