"""The seed's acceptable-value vocabularies, as enums.

Theory of operation
-------------------
Every "Acceptable Value" column of seed 001's Appendices A-G that lists a closed
set of codes becomes one enum here, shared by the catalogue modules.  Single-letter
codes are :class:`~enum.StrEnum` (the member's value is its wire text); numeric
codes are :class:`~enum.IntEnum` (the wire text is ``str(value)``).  A parameter
that accepts only part of a set (``IO=`` in a pick-list request takes ``I`` or
``O`` but not ``B``) says so where it is declared, with ``Choice(..., only=...)``.
No codes are assigned here; see :mod:`starwrs.grammar.typed`.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum

__all__ = [
    "ColumnDataType",
    "DataCategory",
    "DataType",
    "Direction",
    "GraphMode",
    "GraphType",
    "InboxRequest",
    "ItemCategory",
    "Notify",
    "PickList",
    "Priority",
    "Product",
    "RangeType",
    "SchedType",
    "ScheduleKind",
    "TotalMode",
]


class Product(StrEnum):
    """``PRODUCT=`` -- Appendix A: V, C, S, T, H."""

    VNET = "V"
    CVNS = "C"
    VISION = "S"
    TOLL_FREE = "T"
    BROADBAND = "H"


class DataType(StrEnum):
    """``DATATYPE=`` of GRTL -- R = Reports, D = Call Detail, A = All data types."""

    REPORTS = "R"
    CALL_DETAIL = "D"
    ALL = "A"


class DataCategory(StrEnum):
    """``DATACAT=`` -- P = Priced, U = Unpriced, B = Both (pick lists only)."""

    PRICED = "P"
    UNPRICED = "U"
    BOTH = "B"


class Direction(StrEnum):
    """``IO=`` -- I = Inbound, O = Outbound, B = Both (GRTL only)."""

    INBOUND = "I"
    OUTBOUND = "O"
    BOTH = "B"


class ScheduleKind(StrEnum):
    """The tag of ``SCHEDULE=``: A = Adhoc, H = Hourly, D = Daily, W = Weekly, M = Monthly."""

    ADHOC = "A"
    HOURLY = "H"
    DAILY = "D"
    WEEKLY = "W"
    MONTHLY = "M"


class SchedType(StrEnum):
    """``SCHEDTYPE=`` -- A = Adhoc only, R = Recurring only."""

    ADHOC = "A"
    RECURRING = "R"


class RangeType(IntEnum):
    """``RANGETYPE=`` -- 1 = range, 0 = discrete ("discreet" in the seed)."""

    DISCRETE = 0
    RANGE = 1


class TotalMode(IntEnum):
    """``TOTALMODE=`` -- 0 = None, 1 = Subtotal, 2 = Total, 3 = Both."""

    NONE = 0
    SUBTOTAL = 1
    TOTAL = 2
    BOTH = 3

    @property
    def needs_subtotals(self) -> bool:
        """True when the mode asks for subtotals (1 or 3): SUBTOTCOL is then required."""
        return self in (TotalMode.SUBTOTAL, TotalMode.BOTH)


class ItemCategory(StrEnum):
    """``CATEGORY=`` of an inbox item / NRL -- R = Report, D = Call Detail, F = News."""

    REPORT = "R"
    CALL_DETAIL = "D"
    NEWS = "F"


class Priority(IntEnum):
    """``PRIORITY=`` -- standardized network management priority levels."""

    FATAL = 1
    MAJOR = 2
    MINOR = 3
    INFO = 4
    NO_ALERT = 5


class Notify(IntEnum):
    """``UNOTIFY=`` -- 0 = None (default), 1 = Page, 2 = Email, 3 = Email and page."""

    NONE = 0
    PAGE = 1
    EMAIL = 2
    EMAIL_AND_PAGE = 3


class InboxRequest(StrEnum):
    """``REQ=`` of the ``Z`` acknowledgement: the request being acknowledged."""

    ADD = "A"
    DELETE = "D"
    LIST = "L"
    FETCH = "F"
    UPDATE = "U"


class GraphMode(IntEnum):
    """``DEFAULT_GRAPH_MODE=`` -- 0 = None, 1 = Graph, 2 = Plot."""

    NONE = 0
    GRAPH = 1
    PLOT = 2


class GraphType(IntEnum):
    """``DEFAULT_GRAPH_TYPE=`` -- 0 = None, 1 = Bar, 2 = Line, 3 = Pie, 4 = Point."""

    NONE = 0
    BAR = 1
    LINE = 2
    PIE = 3
    POINT = 4


class ColumnDataType(StrEnum):
    """``DATATYPE=`` of a METACOLUMN: how the fulfilling server sends the data."""

    STRING = "S"
    CHARACTER = "C"
    INTEGER = "I"
    NUMBER = "N"
    DOUBLE = "D"
    LONG = "L"


class PickList(StrEnum):
    """The pick-list type token of GPL / GPLA (Appendix A)."""

    ACCESS = "PL_ACCESS"
    FIELDS = "PL_FIELDS"
    DURATION = "PL_DURATION"
    TIMEZONE = "PL_TIMEZONE"
    HIER = "PL_HIER"
    GEO = "PL_GEO"
    RANGE = "PL_RANGE"
    USAGE = "PL_USAGE"
    LANG = "PL_LANG"
    CURR = "PL_CURR"
