"""The derived-column expression evaluator: grammar, semantics, and Fraction as the oracle."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from starwrs.grammar.errors import ErrorCode
from starwrs.proxies.dss import expr as ex
from starwrs.proxies.dss.columns import COLUMNS

D = Decimal


# -- examples -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "row", "totals", "expected"),
    [
        ("( C36 / CT36 ) * 100", {36: D("12.5")}, {36: D("50")}, D("25")),
        ("C58 / C67", {58: D("1.00"), 67: 4}, {}, D("0.25")),
        ("C58 / C67", {58: D("1.00"), 67: 0}, {}, None),  # division by zero: empty
        ("C58 / C67", {58: D("1.00")}, {}, None),  # a missing value: empty
        ("C1 + 1", {1: None}, {}, None),
        ("-C1 - -2", {1: D(5)}, {}, D(-3)),
        ("1 - 2 - 3", {}, {}, D(-4)),  # left-associative
        ("8 / 4 / 2", {}, {}, D(1)),
        ("2 + 3 * 4", {}, {}, D(14)),  # * binds tighter
        ("(2 + 3) * 4", {}, {}, D(20)),
        ("-2 * -3", {}, {}, D(6)),
        ("\t0.5*CT7 ", {}, {7: 3}, D("1.5")),
        ("1 / 3", {}, {}, D("0." + "3" * ex.PRECISION)),  # 60 significant digits
    ],
)
def test_examples(
    text: str,
    row: dict[int, Decimal | int | None],
    totals: dict[int, Decimal | int | None],
    expected: Decimal | None,
) -> None:
    value = ex.evaluate(ex.parse_expression(text), row, totals)
    if expected is None:
        assert value is None
    else:
        assert value is not None
        assert value == expected


def test_the_tree() -> None:
    assert ex.parse_expression("( C36 / CT36 ) * 100") == ex.BinOp(
        "*", ex.BinOp("/", ex.Column(36), ex.Total(36)), ex.Num(D(100))
    )
    assert ex.parse_expression("--C1") == ex.Neg(ex.Neg(ex.Column(1)))
    assert ex.references(ex.parse_expression("(C36 / CT36) * C67 + CT58")) == (
        frozenset({36, 67}),
        frozenset({36, 58}),
    )


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("", 0),
        ("1 +", 3),
        ("(1", 2),
        ("1)", 1),
        ("c36", 0),  # case-sensitive
        ("C36 C37", 4),
        ("100C36", 3),
        ("1.", 0),
        (".5", 0),
        ("1e5", 1),
        ("C", 0),
        ("CT", 0),
        ("2 ** 3", 3),
        ("+1", 0),  # no unary plus
        ("__import__('os')", 0),
        ("C36 % 2", 4),
        ("C12345678901", 0),  # ids have at most 10 digits
        ("(" * 33 + "1" + ")" * 33, 32),
        ("-" * 33 + "1", 32),
        ("1+" * 100 + "1", 200),  # longer than MAX_LENGTH
    ],
)
def test_rejects(text: str, offset: int) -> None:
    with pytest.raises(ex.ExpressionError) as caught:
        ex.parse_expression(text)
    assert caught.value.offset == offset
    assert caught.value.code is ErrorCode.RM_PARAMETER_ERROR


def test_nesting_up_to_the_limit() -> None:
    deep = "(" * ex.MAX_DEPTH + "C1" + ")" * ex.MAX_DEPTH
    assert ex.evaluate(ex.parse_expression(deep), {1: D(2)}) == D(2)


@pytest.mark.parametrize(
    ("value", "decimals", "text"),
    [
        ("2.25", 1, "2.3"),
        ("2.35", 1, "2.4"),
        ("-2.25", 1, "-2.3"),  # half away from zero
        ("-0.04", 1, "0.0"),  # never -0.0
        ("0.005", 2, "0.01"),
        ("12", 2, "12.00"),
        ("99.95", 1, "100.0"),
    ],
)
def test_quantize(value: str, decimals: int, text: str) -> None:
    assert format(ex.quantize(D(value), decimals), "f") == text


def test_every_equation_of_the_column_table_parses() -> None:
    for column in COLUMNS.values():
        if column.derived:
            refs, totals = ex.references(ex.parse_expression(column.equation))
            assert refs | totals <= {c for c, col in COLUMNS.items() if col.additive}


# -- properties: generated expressions against exact Fraction arithmetic ----------------------

IDS = (1, 2, 3)
numbers = st.builds(
    lambda n, places: D(n).scaleb(-places), st.integers(0, 10**6), st.integers(0, 2)
)
values = st.one_of(st.none(), numbers, st.builds(D, st.integers(-1000, 1000)))
leaves = st.one_of(
    numbers.map(ex.Num),
    st.sampled_from(IDS).map(ex.Column),
    st.sampled_from(IDS).map(ex.Total),
)


def _extend(children: st.SearchStrategy[ex.Expr]) -> st.SearchStrategy[ex.Expr]:
    return st.one_of(
        children.map(ex.Neg),
        st.builds(ex.BinOp, st.sampled_from("+-*/"), children, children),
    )


trees = st.recursive(leaves, _extend, max_leaves=12)
spaces = st.sampled_from(["", " ", "  ", "\t"])


@st.composite
def rendered(draw: st.DrawFn, node: ex.Expr) -> str:
    """*node* as text, with random white space and (redundant) parentheses."""
    pad = draw(spaces)
    if isinstance(node, ex.Num):
        text = format(node.value, "f")
    elif isinstance(node, ex.Column):
        text = f"C{node.colid}"
    elif isinstance(node, ex.Total):
        text = f"CT{node.colid}"
    elif isinstance(node, ex.Neg):
        text = f"-({draw(rendered(node.operand))})"
    else:
        text = f"({draw(rendered(node.left))}{pad}{node.op}{pad}({draw(rendered(node.right))}))"
    return f"{pad}({text}){pad}" if draw(st.booleans()) else text


_UNIT = Fraction(1, 2 * 10**59)  # half an ulp of 60 significant digits, relative


class Undetermined(Exception):
    """A divisor that is zero exactly but may not be zero to 60 digits."""


def oracle(
    node: ex.Expr, row: dict[int, Decimal | None], totals: dict[int, Decimal | None]
) -> tuple[Fraction, Fraction] | None:
    """Exact value and a bound on the evaluator's rounding error, or None (empty)."""
    if isinstance(node, ex.Num):
        return Fraction(node.value), Fraction(0)
    if isinstance(node, ex.Column | ex.Total):
        value = (row if isinstance(node, ex.Column) else totals).get(node.colid)
        return None if value is None else (Fraction(value), Fraction(0))
    if isinstance(node, ex.Neg):
        inner = oracle(node.operand, row, totals)
        return None if inner is None else (-inner[0], inner[1])
    left = oracle(node.left, row, totals)
    right = oracle(node.right, row, totals)
    if left is None or right is None:
        return None
    (a, ea), (b, eb) = left, right
    if node.op == "+":
        value, err = a + b, ea + eb
    elif node.op == "-":
        value, err = a - b, ea + eb
    elif node.op == "*":
        value, err = a * b, abs(a) * eb + abs(b) * ea + ea * eb
    else:
        if eb >= abs(b):
            raise Undetermined
        if b == 0:
            return None
        value = a / b
        err = (ea + abs(value) * eb) / (abs(b) - eb)
    return value, err + abs(value) * _UNIT * 4


rows = st.dictionaries(st.sampled_from(IDS), values)


@given(trees, rows, rows)
def test_evaluation_matches_exact_arithmetic(
    tree: ex.Expr, row: dict[int, Decimal | None], totals: dict[int, Decimal | None]
) -> None:
    try:
        expected = oracle(tree, row, totals)
    except Undetermined:
        assume(False)
        return
    got = ex.evaluate(tree, row, totals)
    if expected is None:
        assert got is None
    else:
        assert got is not None
        value, err = expected
        assert abs(Fraction(got) - value) <= err


@given(st.data(), trees)
def test_text_round_trips_to_the_tree(data: st.DataObject, tree: ex.Expr) -> None:
    text = data.draw(rendered(tree))
    assume(len(text) <= ex.MAX_LENGTH)
    try:
        parsed: ex.Expr | str = ex.parse_expression(text)
    except ex.ExpressionError as err:
        parsed = err.message
    if isinstance(parsed, str):
        assert "nested more than" in parsed  # deep redundant parentheses only
    else:
        assert parsed == tree


@given(st.text(max_size=40))
def test_any_text_parses_or_names_an_offset(text: str) -> None:
    offset = 0
    try:
        ex.parse_expression(text)
    except ex.ExpressionError as err:
        offset = err.offset
    assert 0 <= offset <= max(len(text), ex.MAX_LENGTH)
