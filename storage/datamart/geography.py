"""Where a telephone number is, for the datamart's geography: the ``phonenumbers`` data.

Theory of operation
-------------------
Data and lookups only, shared by the demo generator (:mod:`starwrs.fixtures.datamart_geo`)
and the harvest's rating (:mod:`starwrs.proxies.harvest.rating`), so the calls the
generator draws and the calls a customer's PBX sends land on the same geography rows.

* :data:`STATE_CENTRES`, :data:`CANADA`, :data:`TERRITORY_SUBUSAGE` and
  :func:`distance_miles`: the state / province centres (approximate, ours) the
  distance bands (``reference.DISTANCE_BANDS``) are measured between, which states are
  Canadian (usage ``3`` + sub-usage CANADIAN) and which US areas have a sub-usage code
  of their own (Appendix H ``Usage``).
* :func:`nanp_exchanges`: every North American NPA-NXX the ``phonenumbers`` geocoder
  knows to the city (its 7-digit prefixes ``1NPANXX`` described "City, ST"), with the
  city and state (upper case) and the IANA time zone of the prefix; read once per
  process (about 0.5 s), as an Arrow table.
* :func:`npa_states`: the state (and, where the geocoder describes a whole NPA such as
  212, the city) of each NPA, for an exchange the geocoder does not know.
* :func:`country_codes`: every country calling code (``phonenumbers``' 215, 1-3
  digits, prefix-free) with its English name, upper case.
* :func:`foreign_cities`: the cities abroad by routing code: each geocoder prefix of a
  country code plus 1-3 digits, with the city's name -- the generator's
  ``international()`` takes its destinations from the same prefixes.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

__all__ = [
    "CANADA",
    "STATE_CENTRES",
    "TERRITORY_SUBUSAGE",
    "country_codes",
    "country_name",
    "distance_miles",
    "foreign_cities",
    "nanp_exchanges",
    "npa_states",
]

#: state / province -> (latitude, longitude) of its centre, approximately.
STATE_CENTRES: dict[str, tuple[float, float]] = {
    "AL": (32.8, -86.8), "AK": (61.4, -152.3), "AZ": (34.2, -111.7), "AR": (34.9, -92.4),
    "CA": (36.8, -119.4), "CO": (39.0, -105.5), "CT": (41.6, -72.7), "DE": (39.0, -75.5),
    "DC": (38.9, -77.0), "FL": (28.6, -82.4), "GA": (32.7, -83.4), "HI": (20.8, -156.3),
    "ID": (44.4, -114.6), "IL": (40.0, -89.2), "IN": (39.9, -86.3), "IA": (42.1, -93.5),
    "KS": (38.5, -98.4), "KY": (37.5, -85.3), "LA": (31.1, -92.0), "ME": (45.4, -69.2),
    "MD": (39.0, -76.8), "MA": (42.3, -71.8), "MI": (44.3, -85.4), "MN": (46.3, -94.3),
    "MS": (32.7, -89.7), "MO": (38.4, -92.5), "MT": (47.0, -109.6), "NE": (41.5, -99.8),
    "NV": (39.3, -116.6), "NH": (43.7, -71.6), "NJ": (40.2, -74.7), "NM": (34.4, -106.1),
    "NY": (42.9, -75.5), "NC": (35.6, -79.4), "ND": (47.5, -100.5), "OH": (40.3, -82.8),
    "OK": (35.6, -97.5), "OR": (43.9, -120.6), "PA": (40.9, -77.8), "RI": (41.7, -71.5),
    "SC": (33.9, -80.9), "SD": (44.4, -100.2), "TN": (35.9, -86.4), "TX": (31.5, -99.3),
    "UT": (39.3, -111.7), "VT": (44.1, -72.7), "VA": (37.5, -78.9), "WA": (47.4, -120.5),
    "WV": (38.6, -80.6), "WI": (44.6, -89.9), "WY": (43.0, -107.6), "PR": (18.2, -66.5),
    "VI": (18.3, -64.9), "GU": (13.4, 144.8), "AB": (53.9, -116.6), "BC": (53.7, -127.6),
    "MB": (53.8, -98.8), "NB": (46.5, -66.2), "NL": (53.1, -57.7), "NS": (45.0, -63.0),
    "NT": (64.8, -124.8), "NU": (70.3, -83.1), "ON": (50.0, -85.3), "PE": (46.5, -63.4),
    "QC": (52.9, -73.5), "SK": (52.9, -106.5), "YT": (64.3, -135.0),
}  # fmt: skip

#: Canadian provinces and territories (sub-usage CANADIAN).
CANADA = frozenset({"AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT"})
#: US areas with their own sub-usage code (Appendix H ``Usage``).
TERRITORY_SUBUSAGE = {"AK": "A", "HI": "B", "PR": "C", "VI": "V", "GU": "G"}

FloatArray = npt.NDArray[Any]


def distance_miles(
    lat1: FloatArray, lon1: FloatArray, lat2: FloatArray, lon2: FloatArray
) -> FloatArray:
    """Great-circle distance in miles (haversine), element-wise."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(lon2 - lon1)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return np.asarray(2 * 3958.8 * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0))))


@functools.cache
def nanp_exchanges() -> pa.Table:
    """``npa`` (int16), ``nxx`` (int16), ``city``, ``state``, ``zone`` of every NPA-NXX
    the geocoder knows to the city, sorted by (npa, nxx)."""
    from phonenumbers.geodata import GEOCODE_DATA
    from phonenumbers.tzdata import TIMEZONE_DATA

    rows: list[tuple[int, int, str, str, str]] = []
    for prefix, names in GEOCODE_DATA.items():
        if len(prefix) != 7 or not prefix.startswith("1"):
            continue
        city, sep, state = names.get("en", "").rpartition(", ")
        if not sep or state not in STATE_CENTRES or not city:
            continue
        zones = TIMEZONE_DATA.get(prefix) or TIMEZONE_DATA.get(prefix[:4]) or ("America/New_York",)
        rows.append((int(prefix[1:4]), int(prefix[4:7]), city.upper(), state, zones[0]))
    rows.sort()
    return pa.table(
        {
            "npa": pa.array([r[0] for r in rows], pa.int16()),
            "nxx": pa.array([r[1] for r in rows], pa.int16()),
            "city": pa.array([r[2] for r in rows], pa.string()),
            "state": pa.array([r[3] for r in rows], pa.string()),
            "zone": pa.array([r[4] for r in rows], pa.string()),
        }
    )


@functools.cache
def npa_states() -> pa.Table:
    """``npa`` (int16), ``state``, ``city``: the geocoder's whole-NPA entry (``1NPA``,
    e.g. 212 "New York, NY"), else the state most of the NPA's exchanges are in (no city)."""
    from phonenumbers.geodata import GEOCODE_DATA

    table = nanp_exchanges()
    counts: dict[int, dict[str, int]] = {}
    for npa, state in zip(
        table.column("npa").to_pylist(), table.column("state").to_pylist(), strict=True
    ):
        per = counts.setdefault(npa, {})
        per[state] = per.get(state, 0) + 1
    whole: dict[int, tuple[str, str | None]] = {
        n: (max(sorted(per), key=per.__getitem__), None) for n, per in counts.items()
    }
    for prefix, names in GEOCODE_DATA.items():
        if len(prefix) == 4 and prefix.startswith("1"):
            city, sep, state = names.get("en", "").rpartition(", ")
            if sep and state in STATE_CENTRES:
                whole[int(prefix[1:])] = (state, city.upper() or None)
    npas = sorted(whole)
    return pa.table(
        {
            "npa": pa.array(npas, pa.int16()),
            "state": pa.array([whole[n][0] for n in npas], pa.string()),
            "city": pa.array([whole[n][1] for n in npas], pa.string()),
        }
    )


def country_name(cc: str) -> str:
    """The English name (upper case) of calling code *cc*'s main region."""
    import phonenumbers
    from phonenumbers.geodata.locale import LOCALE_DATA

    region = phonenumbers.region_code_for_country_code(int(cc))
    names = LOCALE_DATA.get(region, {})
    name = names.get("en", region)
    while name.startswith("*"):  # a reference to another language's entry
        name = names.get(name[1:], region)
    return str(name).upper()


@functools.cache
def country_codes() -> pa.Table:
    """``cc`` (digits, 1-3) and ``name`` of every country calling code."""
    from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

    codes = sorted(str(c) for c in COUNTRY_CODE_TO_REGION_CODE)
    return pa.table({"cc": pa.array(codes), "name": pa.array([country_name(c) for c in codes])})


@functools.cache
def foreign_cities() -> pa.Table:
    """``prefix`` (country code + routing code, digits), ``cc``, ``routing_cd`` (int16),
    ``city``: the geocoder's cities abroad with a routing code of 1-3 digits."""
    from phonenumbers.geodata import GEOCODE_DATA

    codes = set(country_codes().column("cc").to_pylist())
    prefixes: list[str] = []
    ccs: list[str] = []
    routing: list[int] = []
    cities: list[str] = []
    for prefix, names in GEOCODE_DATA.items():
        if prefix.startswith("1") or len(prefix) > 6 or "en" not in names:
            continue
        for cc in (prefix[:1], prefix[:2], prefix[:3]):
            rest = prefix[len(cc) :]
            if cc in codes and 1 <= len(rest) <= 3:
                prefixes.append(prefix)
                ccs.append(cc)
                routing.append(int(rest))
                cities.append(names["en"].split(",")[0].upper())
                break
    return pa.table(
        {
            "prefix": pa.array(prefixes),
            "cc": pa.array(ccs),
            "routing_cd": pa.array(routing, pa.int16()),
            "city": pa.array(cities),
        }
    )
