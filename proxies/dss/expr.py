"""The derived-column expression language (seed 001, Appendix I ``equation``; Appendix F
``CALCULATE_EXPRESSION``), one evaluator for the formatter and the viewer.

Theory of operation
-------------------
A derived column of the column-id table carries an equation such as
``( C36 / CT36 ) * 100`` (the seed's "% Min") or ``C58 / C67`` ("Avg Amt/Call").  The
formatter evaluates it for every row of a report; the browser viewer evaluates the
same text when the metadata says ``CALCULATE=1``.  Both follow this definition, so
the JavaScript port must implement exactly what is written here -- never ``eval``.

Grammar (white space -- space, tab -- between tokens is ignored; nothing else is)::

    expression := term   { ("+" | "-") term }        left-associative
    term       := unary  { ("*" | "/") unary }       left-associative, binds tighter
    unary      := "-" unary | primary                 unary minus binds tightest
    primary    := NUMBER | COLUMN | TOTAL | "(" expression ")"
    NUMBER     := DIGIT+ [ "." DIGIT+ ]               e.g. 100, 0.5 (no sign, no exponent)
    COLUMN     := "C" DIGIT+                           the row's value of column n: C36
    TOTAL      := "CT" DIGIT+                          the report total of column n: CT36

Tokens are case-sensitive (``C36``, not ``c36``); a column id has at most 10 digits
and a number at most 30; an expression is at most :data:`MAX_LENGTH` characters and
nests at most :data:`MAX_DEPTH` parentheses / unary minuses deep.  Anything else is an
:class:`ExpressionError` carrying the 0-based offset of the offending character.

Semantics (the value of an expression is a decimal number or *empty*):

* ``Cn`` is the value of column n in the row being computed; ``CTn`` is column n's
  value in the report total (the ``T`` row).  A missing or empty value is *empty*.
* Numbers and values are exact decimals.  ``+``, ``-``, ``*`` and unary minus are
  exact (the context keeps :data:`PRECISION` significant digits, far more than any
  sum of DECIMAL(9,2) amounts needs); ``/`` is rounded to :data:`PRECISION`
  significant digits, half to even.
* Any operation with an *empty* operand is *empty*; division by zero is *empty*
  (never an error, never infinity).  The formatter writes *empty* as an empty cell.
* The result is rounded for display by the caller (the column's DECIMAL digits,
  half away from zero: :func:`quantize`).

Examples: ``( C36 / CT36 ) * 100`` with C36 = 12.5 and CT36 = 50 is 25; ``C58 / C67``
with C67 = 0 is empty; ``-C1 - -2`` is ``(-C1) - (-2)``; ``1 - 2 - 3`` is -4;
``8 / 4 / 2`` is 1.

Public API: :func:`parse_expression` (text -> AST, cached), :func:`evaluate`
(AST, row, totals -> ``Decimal | None``), :func:`compile_expression` (AST -> a
function of row and totals, for a loop over many rows), :func:`references` (the column
ids an expression reads), :func:`quantize`.
"""

from __future__ import annotations

import decimal
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeAlias

from starwrs.grammar.errors import ErrorCode, StarwrsError

__all__ = [
    "MAX_DEPTH",
    "MAX_LENGTH",
    "PRECISION",
    "BinOp",
    "Column",
    "Expr",
    "ExpressionError",
    "Neg",
    "Num",
    "Total",
    "compile_expression",
    "evaluate",
    "parse_expression",
    "quantize",
    "references",
]

#: significant digits kept by every operation (division rounds to this many)
PRECISION = 60
#: longest expression accepted (the seed's ``equation varchar(200)``)
MAX_LENGTH = 200
#: deepest nesting of parentheses and unary minuses accepted
MAX_DEPTH = 32

_CONTEXT = decimal.Context(
    prec=PRECISION,
    rounding=decimal.ROUND_HALF_EVEN,
    Emin=-999999,
    Emax=999999,
    traps=[decimal.InvalidOperation, decimal.Overflow, decimal.DivisionByZero],
)


class ExpressionError(StarwrsError):
    """An equation that does not follow the grammar.

    Attributes:
        offset: 0-based offset of the character where it went wrong.
    """

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(ErrorCode.RM_PARAMETER_ERROR, f"{message} at offset {offset}")
        self.offset = offset


# -- the AST ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Num:
    """A number literal."""

    value: Decimal


@dataclass(frozen=True, slots=True)
class Column:
    """``Cn``: the row's value of column *colid*."""

    colid: int


@dataclass(frozen=True, slots=True)
class Total:
    """``CTn``: the report total of column *colid*."""

    colid: int


@dataclass(frozen=True, slots=True)
class Neg:
    """Unary minus."""

    operand: Expr


@dataclass(frozen=True, slots=True)
class BinOp:
    """``left op right`` with op one of ``+ - * /``."""

    op: str
    left: Expr
    right: Expr


Expr: TypeAlias = "Num | Column | Total | Neg | BinOp"


# -- tokenizer --------------------------------------------------------------------------

_TOKEN = re.compile(
    r"(?P<ws>[ \t]+)"
    r"|(?P<num>[0-9]{1,30}(?:\.[0-9]{1,30})?)(?![0-9.])"
    r"|(?P<ref>CT?)(?P<id>[0-9]{1,10})(?![0-9A-Za-z])"
    r"|(?P<op>[-+*/()])",
    re.ASCII,
)

_Token: TypeAlias = tuple[str, str, int]  # kind, text, offset


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ExpressionError(f"unexpected character {text[pos]!r}", pos)
        kind = match.lastgroup
        if kind == "id":
            out.append((match.group("ref"), match.group("id"), pos))
        elif kind != "ws":
            assert kind is not None
            out.append((kind, match.group(kind), pos))
        pos = match.end()
    out.append(("end", "", len(text)))
    return out


# -- parser (precedence climbing over the grammar above) -----------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0
        self.depth = 0

    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def take(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def near(self, offset: int) -> str:
        """The source text of the token at *offset* (for messages)."""
        match = _TOKEN.match(self.text, offset)
        return match.group(0) if match else self.text[offset : offset + 1]

    def expression(self) -> Expr:
        node = self.term()
        while self.peek()[0] == "op" and self.peek()[1] in "+-":
            op = self.take()[1]
            node = BinOp(op, node, self.term())
        return node

    def term(self) -> Expr:
        node = self.unary()
        while self.peek()[0] == "op" and self.peek()[1] in "*/":
            op = self.take()[1]
            node = BinOp(op, node, self.unary())
        return node

    def nest(self, offset: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(f"nested more than {MAX_DEPTH} deep", offset)

    def unary(self) -> Expr:
        kind, text, offset = self.peek()
        if kind == "op" and text == "-":
            self.take()
            self.nest(offset)
            node: Expr = Neg(self.unary())
            self.depth -= 1
            return node
        return self.primary()

    def primary(self) -> Expr:
        kind, text, offset = self.take()
        if kind == "num":
            return Num(Decimal(text))
        if kind == "C":
            return Column(int(text))
        if kind == "CT":
            return Total(int(text))
        if kind == "op" and text == "(":
            self.nest(offset)
            node = self.expression()
            self.depth -= 1
            closing = self.take()
            if closing[:2] != ("op", ")"):
                raise ExpressionError("expected ')'", closing[2])
            return node
        what = "end of expression" if kind == "end" else repr(self.near(offset))
        raise ExpressionError(f"expected a number, Cn, CTn or '(', found {what}", offset)


@functools.lru_cache(maxsize=1024)
def parse_expression(text: str) -> Expr:
    """Parse an equation into its AST.

    Args:
        text: e.g. ``( C36 / CT36 ) * 100``.

    Returns:
        The expression tree (frozen dataclasses; equal texts give equal trees).

    Raises:
        ExpressionError: the text is empty, too long, or breaks the grammar.
    """
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"longer than {MAX_LENGTH} characters", MAX_LENGTH)
    parser = _Parser(text)
    node = parser.expression()
    kind, _, offset = parser.peek()
    if kind != "end":
        raise ExpressionError(f"unexpected {parser.near(offset)!r}", offset)
    return node


# -- evaluation -------------------------------------------------------------------------

Number: TypeAlias = "Decimal | None"

_OPS: dict[str, Callable[[Decimal, Decimal], Decimal]] = {
    "+": _CONTEXT.add,
    "-": _CONTEXT.subtract,
    "*": _CONTEXT.multiply,
}


Values: TypeAlias = "Mapping[int, Decimal | int | None]"
Evaluator: TypeAlias = "Callable[[Values, Values], Number]"


def evaluate(expr: Expr, row: Values, totals: Values | None = None) -> Number:
    """Evaluate *expr* for one row.

    Args:
        expr: an AST from :func:`parse_expression`.
        row: column id -> the row's value (``None`` or absent = empty; an ``int``
            counts as the exact decimal).
        totals: column id -> the report total (likewise).

    Returns:
        The exact (division: :data:`PRECISION`-digit) decimal value, or ``None`` when
        an operand is empty or a divisor is zero.
    """
    return compile_expression(expr)(row, totals or {})


@functools.lru_cache(maxsize=1024)
def compile_expression(expr: Expr) -> Evaluator:
    """*expr* as a function ``(row, totals) -> value`` (what :func:`evaluate` runs).

    The tree is walked once; a formatter calls the result for every line.
    """
    if isinstance(expr, Num):
        constant = expr.value
        return lambda row, totals: constant
    if isinstance(expr, Column | Total):
        colid = expr.colid
        if isinstance(expr, Column):
            return lambda row, totals: _number(row.get(colid))
        return lambda row, totals: _number(totals.get(colid))
    if isinstance(expr, Neg):
        inner = compile_expression(expr.operand)

        def negate(row: Values, totals: Values) -> Number:
            value = inner(row, totals)
            return None if value is None else _CONTEXT.minus(value)

        return negate
    left, right = compile_expression(expr.left), compile_expression(expr.right)
    if expr.op == "/":

        def divide(row: Values, totals: Values) -> Number:
            a, b = left(row, totals), right(row, totals)
            if a is None or b is None or b.is_zero():
                return None
            return _CONTEXT.divide(a, b)

        return divide
    op = _OPS[expr.op]

    def arithmetic(row: Values, totals: Values) -> Number:
        a, b = left(row, totals), right(row, totals)
        return None if a is None or b is None else op(a, b)

    return arithmetic


def _number(value: Decimal | int | None) -> Number:
    if value is None or type(value) is Decimal:
        return value
    return Decimal(value)  # an integer count


def references(expr: Expr) -> tuple[frozenset[int], frozenset[int]]:
    """The column ids *expr* reads: (row columns ``Cn``, totals ``CTn``)."""
    columns: set[int] = set()
    totals: set[int] = set()

    def walk(node: Expr) -> None:
        if isinstance(node, Column):
            columns.add(node.colid)
        elif isinstance(node, Total):
            totals.add(node.colid)
        elif isinstance(node, Neg):
            walk(node.operand)
        elif isinstance(node, BinOp):
            walk(node.left)
            walk(node.right)

    walk(expr)
    return frozenset(columns), frozenset(totals)


def quantize(value: Decimal, decimals: int) -> Decimal:
    """Round *value* to *decimals* digits after the point, half away from zero.

    ``-0`` comes out as ``0`` so that a file never shows ``-0.0``.
    """
    out = value.quantize(_exponent(decimals), rounding=decimal.ROUND_HALF_UP, context=_CONTEXT)
    return out.copy_abs() if out.is_zero() else out


@functools.lru_cache(maxsize=64)
def _exponent(decimals: int) -> Decimal:
    return Decimal(1).scaleb(-decimals)
