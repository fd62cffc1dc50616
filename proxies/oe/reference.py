"""Reference pick-list data every deployment of order entry starts with.

Theory of operation
-------------------
The seed (001, Appendix A "Get Pick List" and Appendix H) names the pick lists
StarOE serves -- ``PL_ACCESS``, ``PL_TIMEZONE``, ``PL_DURATION``, ``PL_RANGE``,
``PL_USAGE``, ``PL_LANG``, ``PL_CURR``, ``PL_GEO`` (and ``PL_HIER``, the
billing hierarchy, which is per customer and lives in the billing tables).
This module is data only; :meth:`OrderEntryStore.install_reference_data`
upserts it at every open, so a new release's values reach old databases.

Where the seed gives values they are used verbatim; where it does not, the
values here are ours and say so:

* access types: Appendix H ``Access_Type`` lists 14 codes (1-10, A-D) and 13
  values; codes are assigned to values in the order printed, ``D`` is left
  unassigned.  The four "800 ..." types are inbound-only (``In_out``).
* usage: Appendix H ``Usage`` -- 7 codes, 7 descriptions, verbatim.
* time zones: the seed shows ``TIMEZONE=45`` on an ARD whose report says
  ``Timezone=EST``; so 45 is Eastern, the other codes are ours.
* language 1234 and currency 2345 are the seed's own examples (``LANG=1234,
  CURR=2345``) and its stated defaults (American English, American Dollar);
  the other codes are ours.
* duration ranges follow Appendix H ``Duration_Range`` ("0.0 to 0.1", minutes);
  distance ranges follow ``Range`` (codes 1-9 inbound, as IDISTRANGE's example
  "2"; letters outbound, as ODISTRANGE's "A~F"); the band edges are ours.
* geography: country ``001`` = "USA/WORLDZONE1" and state ``CO`` are the
  seed's ``GEO`` example; the rest is a small sample.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["APPLICATIONS", "GEO", "PICK_LISTS", "RefGeo", "RefItem"]


class RefItem(NamedTuple):
    """One pick-list entry (see :class:`starwrs.proxies.oe.store.PickItem`)."""

    kind: str
    code: str
    description: str
    io: str | None = None
    value: str | None = None
    low: float | None = None
    high: float | None = None


class RefGeo(NamedTuple):
    """One node of the geographic hierarchy; ``key`` is its path, e.g. ``001/CO``."""

    key: str
    level: str
    code: str
    name: str


#: Services a user may be given, by frame target (PROTOCOL.md section 2).
APPLICATIONS: tuple[tuple[str, str], ...] = (
    ("OE", "Order Entry (StarOE)"),
    ("RM", "Report Manager / Report Requestor"),
    ("RS", "Report Scheduler"),
    ("INBX", "Inbox"),
    ("DSS", "Decision Support Server"),
    ("HARV", "Call record collector (sends the PBX's records over the network)"),
)

_ACCESS = [
    ("1", "SHARED", None),
    ("2", "DIAL-1", None),
    ("3", "CARD", None),
    ("4", "DEDICATED ACCESS", None),
    ("5", "800 REMOTE ACCESS", None),
    ("6", "DIRECT DIAL FAX CALLS", None),
    ("7", "STORE/FORWARD FAX CALL", None),
    ("8", "CELLULAR", None),
    ("9", "LOCAL", None),
    ("10", "800 BUSINESS LINE", "I"),
    ("A", "800 WATTS LINE", "I"),
    ("B", "800 DEDICATED LINE", "I"),
    ("C", "800 INTERSWITCH NETWORK CALL REDIRECT/DTO", "I"),
]

_USAGE = [
    ("1", "INTERSTATE"),
    ("2", "INTRASTATE"),
    ("3", "INTERNATIONAL"),
    ("4", "INTRASTATE-INTRALATA"),
    ("5", "INTRACITY-INTL"),
    ("6", "INTRALATA"),
    ("7", "800 INTL-INBOUND"),
]

# code, abbreviation, description, offset from GMT in minutes
_TIMEZONES = [
    ("40", "GMT", "Greenwich Mean Time", 0),
    ("41", "AST", "Atlantic", -240),
    ("45", "EST", "Eastern", -300),
    ("46", "CST", "Central", -360),
    ("47", "MST", "Mountain", -420),
    ("48", "PST", "Pacific", -480),
    ("49", "AKST", "Alaska", -540),
    ("50", "HST", "Hawaii", -600),
    ("51", "CET", "Central European", 60),
]

_DURATIONS = [(0.0, 0.1), (0.1, 1.0), (1.0, 5.0), (5.0, 10.0), (10.0, 30.0), (30.0, 60.0)]
_DURATIONS += [(60.0, 120.0), (120.0, 9999999.9)]

# mileage bands for distance-sensitive pricing
_MILES = [(0, 55), (56, 124), (125, 292), (293, 430), (431, 925), (926, 1910)]
_MILES += [(1911, 3000), (3001, 4250), (4251, 99999)]

_LANGUAGES = [
    ("1234", "American English"),
    ("1235", "British English"),
    ("1236", "Canadian French"),
    ("1237", "Latin American Spanish"),
    ("1238", "Brazilian Portuguese"),
    ("1239", "German"),
]

_CURRENCIES = [
    ("2345", "American Dollar", "USD"),
    ("2346", "Canadian Dollar", "CAD"),
    ("2347", "Pound Sterling", "GBP"),
    ("2348", "Mexican Peso", "MXN"),
    ("2349", "Euro", "EUR"),
]


def _pick_lists() -> tuple[RefItem, ...]:
    items: list[RefItem] = []
    items += [RefItem("ACCESS", code, desc, io=io) for code, desc, io in _ACCESS]
    items += [RefItem("USAGE", code, desc) for code, desc in _USAGE]
    for code, abbr, desc, offset in _TIMEZONES:
        sign = "-" if offset < 0 else "+"
        label = f"{abbr} {desc} (GMT{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d})"
        items.append(RefItem("TIMEZONE", code, label, value=abbr, low=float(offset)))
    for n, (low, high) in enumerate(_DURATIONS, start=1):
        items.append(RefItem("DURATION", str(n), f"{low:.1f} to {high:.1f}", low=low, high=high))
    for n, (low, high) in enumerate(_MILES):
        label = f"{low} to {high} MILES" if high < 99999 else f"{low}+ MILES"
        items.append(RefItem("RANGE", str(n + 1), label, io="I", low=low, high=high))
        items.append(RefItem("RANGE", "ABCDEFGHI"[n], label, io="O", low=low, high=high))
    items += [RefItem("LANG", code, desc) for code, desc in _LANGUAGES]
    items += [RefItem("CURR", code, desc, value=iso) for code, desc, iso in _CURRENCIES]
    return tuple(items)


#: Every static pick-list entry, in display order within each kind.
PICK_LISTS: tuple[RefItem, ...] = _pick_lists()

#: Country -> state/province -> city (city names as Appendix H's char(10)).
GEO: tuple[RefGeo, ...] = (
    RefGeo("001", "country", "001", "USA/WORLDZONE1"),
    RefGeo("001/CO", "state", "CO", "COLORADO"),
    RefGeo("001/CO/COLO SPGS", "city", "COLO SPGS", "COLORADO SPRINGS"),
    RefGeo("001/CO/DENVER", "city", "DENVER", "DENVER"),
    RefGeo("001/NY", "state", "NY", "NEW YORK"),
    RefGeo("001/NY/NEW YORK", "city", "NEW YORK", "NEW YORK"),
    RefGeo("001/NY/ALBANY", "city", "ALBANY", "ALBANY"),
    RefGeo("001/TX", "state", "TX", "TEXAS"),
    RefGeo("001/TX/DALLAS", "city", "DALLAS", "DALLAS"),
    RefGeo("001/VA", "state", "VA", "VIRGINIA"),
    RefGeo("001/VA/MCLEAN", "city", "MCLEAN", "MCLEAN"),
    RefGeo("001/ON", "state", "ON", "ONTARIO (CA)"),
    RefGeo("001/ON/TORONTO", "city", "TORONTO", "TORONTO"),
    RefGeo("044", "country", "044", "UNITED KINGDOM"),
    RefGeo("044/ENG", "state", "ENG", "ENGLAND"),
    RefGeo("044/ENG/LONDON", "city", "LONDON", "LONDON"),
    RefGeo("052", "country", "052", "MEXICO"),
    RefGeo("052/DF", "state", "DF", "DISTRITO FEDERAL"),
    RefGeo("052/DF/MEXICO CTY", "city", "MEXICO CTY", "MEXICO CITY"),
)
