"""The datamart's reference rows: the seed's codes and descriptions (Appendix H).

Theory of operation
-------------------
Data only.  Every code dimension of the star schema (see
:mod:`starwrs.storage.datamart.schema`) is filled from these tuples by migration 1, and
the generator (:mod:`starwrs.fixtures.datamart`) draws its codes from them, so the two
can never disagree.  Where Appendix H prints codes and descriptions they are used
verbatim, in the order printed; where it is silent or garbled the values are ours, and
each place says so:

* **blank codes** are the empty string ``''`` and have a row of their own (the seed's
  "blank" / "Payphone or blanks"), so every fact column joins to its dimension.
* **access types** (``Access_Type``): 14 codes (1-10, A-D), 13 values, assigned in the
  order printed -- as order entry's pick list (``proxies/oe/reference.py``) does, which
  is where a user picks IACCESS/OACCESS values.  ``D`` has no value (NULL).  Codes 1-9 and
  D exist for both directions (outbound access, inbound egress), the four "800 ..."
  types for inbound only.  ``unique_access_value`` is value + in_out, which yields the
  seed's own example ``DIAL-10`` (DIAL-1, outbound).
* **usage** (``Usage``): 7 codes, 7 descriptions, verbatim.  **Sub-usage**: the seed
  prints 13 codes and 14 descriptions.  The eight digits take the first eight
  descriptions in order; ``G`` and ``L`` take GUAM and LOCALNET (their initials);
  ``A``, ``B``, ``C`` take ALASKA, HAWAII, PUERTO RICO; VIRGIN ISLANDS gets ``V`` (ours).
* **ranges** (``Range``): codes 1-9 for inbound calls (IDISTRANGE's example "2") and
  A-I for outbound (ODISTRANGE's "A~F"), with the mileage bands of order entry's
  ``PL_RANGE`` (the band edges are ours).
* **duration and amount ranges**: order entry's ``PL_DURATION`` bands (code ``1``-``8``),
  amount bands ours; a value ``v`` is in a band when ``low_end < v <= high_end``.
* **rate periods** (``GMT & LST`` ``rate``, "1, 2, 3, 4, 7, 8 or 9"): the meaning is
  ours, see :data:`RATE_PERIODS`; 8 and 9 are reserved and never produced.
* EVS products 30-41, VOS details, conference call and cross-corp codes, line speeds,
  currencies other than ``USA`` and products other than the four printed: ours.
"""

from __future__ import annotations

__all__ = [
    "ACCESS_TERMS",
    "ACCESS_TYPES",
    "AMOUNT_RANGES",
    "CELL_PHONE",
    "CONF_CALL",
    "CROSS_CORP",
    "CURRENCIES",
    "DIRECTORY_ASSIST",
    "DISTANCE_BANDS",
    "DURATION_RANGES",
    "EVS_PRODUCTS",
    "HOLIDAYS",
    "LINE_SPEEDS",
    "NANP_COUNTRY_CD",
    "NANP_COUNTRY_NAME",
    "NCR",
    "NCT",
    "NCT_CALL_LOGS",
    "PAY_PHONE",
    "PRICING_METHODS",
    "PRODUCTS",
    "RATE_PERIODS",
    "SUBUSAGE",
    "USAGE",
    "VOS_CODES",
    "VOS_DETAILS",
    "access_type_key",
    "range_code",
    "usage_key",
]

#: country_cd of every North American (World Zone 1) number and its name (the seed's
#: ``GEO`` example ``001 USA/WORLDZONE1``); the state_cd tells the US from Canada etc.
NANP_COUNTRY_CD = "001"
NANP_COUNTRY_NAME = "USA/WORLDZONE1"

#: (access_code, access_value, inbound only) in the order Appendix H prints them.
ACCESS_TYPES: tuple[tuple[str, str | None, bool], ...] = (
    ("1", "SHARED", False),
    ("2", "DIAL-1", False),
    ("3", "CARD", False),
    ("4", "DEDICATED ACCESS", False),
    ("5", "800 REMOTE ACCESS", False),
    ("6", "DIRECT DIAL FAX CALLS", False),
    ("7", "STORE/FORWARD FAX CALL", False),
    ("8", "CELLULAR", False),
    ("9", "LOCAL", False),
    ("10", "800 BUSINESS LINE", True),
    ("A", "800 WATTS LINE", True),
    ("B", "800 DEDICATED LINE", True),
    ("C", "800 INTERSWITCH NETWORK CALL REDIRECT/DTO", True),
    ("D", None, False),
)


def access_type_key(access_code: str, in_out: str) -> int:
    """The ``access_type_key`` of a code and direction: ordinal (1-14) + 100 if inbound.

    Raises:
        ValueError: an unknown code, or an inbound-only code with ``in_out='0'``.
    """
    for n, (code, _value, inbound_only) in enumerate(ACCESS_TYPES, start=1):
        if code == access_code:
            if inbound_only and in_out != "1":
                raise ValueError(f"access type {access_code} is inbound only")
            return n + (100 if in_out == "1" else 0)
    raise ValueError(f"unknown access type {access_code!r}")


#: Access_Term: acc_term_cd -> access_term_value (S = shared, D = dedicated).
ACCESS_TERMS: tuple[tuple[str, str], ...] = (
    ("11", "S->S"),
    ("12", "S->D"),
    ("21", "D->S"),
    ("22", "D->D"),
)

#: Usage: use_cd -> use_desc, verbatim.
USAGE: tuple[tuple[str, str], ...] = (
    ("1", "INTERSTATE"),
    ("2", "INTRASTATE"),
    ("3", "INTERNATIONAL"),
    ("4", "INTRASTATE-INTRALATA"),
    ("5", "INTRACITY-INTL"),
    ("6", "INTRALATA"),
    ("7", "800 INTL-INBOUND"),
)

#: Sub-usage: subusage -> subusage_desc ('' = none); see the module docstring.
SUBUSAGE: tuple[tuple[str, str], ...] = (
    ("", ""),
    ("1", "CANADIAN"),
    ("2", "TERRITORIAL"),
    ("3", "MEXICO-DOM"),
    ("4", "OMNET-OMNICAL"),
    ("5", "OFFNET-OMNICAL"),
    ("6", "MEXICO-BOURDER"),
    ("7", "CARRIBEAN"),
    ("9", "PROMO"),
    ("A", "ALASKA"),
    ("B", "HAWAII"),
    ("C", "PUERTO RICO"),
    ("V", "VIRGIN ISLANDS"),
    ("G", "GUAM"),
    ("L", "LOCALNET"),
)


def usage_key(use_cd: str, subusage: str) -> int:
    """``usage_key`` = use code * 100 + the sub-usage's position in :data:`SUBUSAGE`."""
    subs = [code for code, _ in SUBUSAGE]
    if use_cd not in {code for code, _ in USAGE} or subusage not in subs:
        raise ValueError(f"unknown usage {use_cd!r}/{subusage!r}")
    return int(use_cd) * 100 + subs.index(subusage)


#: Distance bands in miles, (low, high) inclusive; band n is range code str(n) inbound,
#: "ABCDEFGHI"[n-1] outbound (order entry's PL_RANGE).
DISTANCE_BANDS: tuple[tuple[int, int], ...] = (
    (0, 55),
    (56, 124),
    (125, 292),
    (293, 430),
    (431, 925),
    (926, 1910),
    (1911, 3000),
    (3001, 4250),
    (4251, 99999),
)


def range_code(band: int, in_out: str) -> str:
    """The range code of distance band *band* (1-9) for a direction."""
    return str(band) if in_out == "1" else "ABCDEFGHI"[band - 1]


#: Duration_Range (minutes): code, low_end, high_end (order entry's PL_DURATION).
DURATION_RANGES: tuple[tuple[str, float, float], ...] = (
    ("1", 0.0, 0.1),
    ("2", 0.1, 1.0),
    ("3", 1.0, 5.0),
    ("4", 5.0, 10.0),
    ("5", 10.0, 30.0),
    ("6", 30.0, 60.0),
    ("7", 60.0, 120.0),
    ("8", 120.0, 999999.9),  # DECIMAL(7,1) max (order entry says 9999999.9)
)

#: Amount_Range (dollars): code, low_end, high_end (ours; the seed's first is 0.00-0.10).
AMOUNT_RANGES: tuple[tuple[str, float, float], ...] = (
    ("1", 0.00, 0.10),
    ("2", 0.10, 1.00),
    ("3", 1.00, 5.00),
    ("4", 5.00, 10.00),
    ("5", 10.00, 25.00),
    ("6", 25.00, 50.00),
    ("7", 50.00, 100.00),
    ("8", 100.00, 9999999.99),
)

#: Rate periods of the week (ours).  Computed from the wall clock of the row's own
#: table (``lst``: the switch's local time, which is what the tariff uses; ``gmt``: GMT).
#: Holidays take precedence, then weekends, then the hour of a weekday.
RATE_PERIODS: tuple[tuple[str, str], ...] = (
    ("1", "DAY (MON-FRI 08:00-16:59)"),
    ("2", "EVENING (MON-FRI 17:00-22:59)"),
    ("3", "NIGHT (MON-FRI 23:00-07:59)"),
    ("4", "WEEKEND (SAT-SUN)"),
    ("7", "HOLIDAY (JAN 1, JUL 4, DEC 25)"),
    ("8", "RESERVED"),
    ("9", "RESERVED"),
)
#: (month, day) of the holidays of rate period 7.
HOLIDAYS: tuple[tuple[int, int], ...] = ((1, 1), (7, 4), (12, 25))

#: Product: product_key, product_name, product_abv (the ARD's PRODUCT= letter).
PRODUCTS: tuple[tuple[str, str, str], ...] = (
    ("0010", "Vnet", "V"),
    ("0011", "Vision", "S"),
    ("0012", "CVNS", "C"),  # ours
    ("0015", "Toll Free", "T"),
    ("0016", "Broadband", "H"),  # ours
)

#: Pay_phone: code, description.
PAY_PHONE: tuple[tuple[str, str], ...] = (("", ""), ("P", "Payphone"))

#: Data_Stream line speeds ('' = a voice call; the others ours).
LINE_SPEEDS: tuple[str, ...] = ("", "9600", "19200", "56K", "64K", "128K", "384K", "1536K")

#: EVS_Product: code, description ('' = no EVS product; descriptions ours).
EVS_PRODUCTS: tuple[tuple[str, str], ...] = (
    ("", "NOT EVS"),
    ("30", "MESSAGING"),
    ("31", "INTERACTIVE VOICE"),
    ("32", "CALL PROMPTER"),
    ("33", "CALL INTERACT"),
    ("34", "AUDIO TEXT"),
    ("35", "FAX ON DEMAND"),
    ("36", "VOICE MAIL"),
    ("37", "MENU ROUTING"),
    ("38", "CALLER INFO"),
    ("39", "TIME OF DAY ROUTE"),
    ("40", "PERCENT ALLOCATION"),
    ("41", "REMOTE ACCESS"),
)

#: Directory_assist: code, description (verbatim).
DIRECTORY_ASSIST: tuple[tuple[str, str], ...] = (
    ("Y", "DIRECTORY ASSIST"),
    ("N", "NOT DIR ASSIST"),
)

#: NCR: ncr_ind, ncr_ind_desc (verbatim).
NCR: tuple[tuple[str, str], ...] = (
    ("", "NON NCR/DTO"),
    ("1", "HOP1"),
    ("2", "HOP2"),
    ("3", "HOP3"),
    ("4", "HOP4"),
    ("5", "HOP5"),
    ("A", "INTERSWITCH DTO"),
    ("B", "INTRASWITCH DTO"),
)

#: Cell_phone: code, description (verbatim; '' ours).
CELL_PHONE: tuple[tuple[str, str], ...] = (
    ("", "NOT CELLULAR"),
    ("H", "HOME"),
    ("R", "ROAMED CALL"),
    ("F", "FORWARDED CALL"),
    ("1", "AIRTIME"),
    ("2", "TOLL"),
    ("3", "ROAMERAIR"),
    ("4", "ROAMER TOLL"),
    ("5", "ROAMERDAILY SURCHARGE"),
    ("6", "LANDLINE TERMINATION"),
)

#: VOS vos_cd: code, description (verbatim).
VOS_CODES: tuple[tuple[str, str], ...] = (
    ("", "NOT OPSVC"),
    ("P", "PER TO PER"),
    ("S", "STN TO STN"),
    ("E", "ECR 2000F"),
)
#: VOS vos_detail: code, description (codes verbatim, the repeated D once; descriptions ours).
VOS_DETAILS: tuple[tuple[str, str], ...] = (
    ("", ""),
    ("A", "AUTOMATED"),
    ("B", "BILL TO THIRD"),
    ("S", "SENT PAID"),
    ("D", "DIRECTORY ASSIST"),
    ("H", "HOTEL"),
    ("O", "OPERATOR DIALED"),
    ("C", "COLLECT"),
    ("P", "PAYPHONE"),
    ("Q", "QUOTE"),
    ("E", "EMERGENCY"),
)

#: Conf_call: conf_call_id, description (the fact column's example codes; descriptions ours).
CONF_CALL: tuple[tuple[str, str], ...] = (
    ("", "NOT CONF CALL"),
    ("A", "ATTENDED"),
    ("R", "RESERVATIONLESS"),
    ("S", "SCHEDULED"),
    ("B", "BRIDGE"),
    ("N", "NET CONFERENCE"),
    ("O", "OPERATOR DIAL-OUT"),
    ("C", "CHAIRPERSON"),
    ("D", "DIAL-IN"),
    ("P", "PARTICIPANT"),
    ("Q", "Q AND A SESSION"),
    ("E", "EVENT CALL"),
)

#: Cross_corp: cross_corp_id, description (the fact's cross_corp_ind codes; descriptions ours).
CROSS_CORP: tuple[tuple[str, str], ...] = (
    ("", "NOT CROSS CORP"),
    ("O", "ORIGINATING CORP"),
    ("T", "TERMINATING CORP"),
    ("L", "LOCAL CORP"),
)

#: Currency: currency_cd, description (``USA`` is the seed's; the rest ours).
CURRENCIES: tuple[tuple[str, str], ...] = (
    ("USA", "AMERICAN DOLLAR"),
    ("CAN", "CANADIAN DOLLAR"),
    ("GBR", "POUND STERLING"),
    ("MEX", "MEXICAN PESO"),
    ("EUR", "EURO"),
)

#: NCT: nct_id, description ('' = not a network call transfer; one row per transfer
#: group is added by the load when calls carry other ids).
NCT: tuple[tuple[str, str], ...] = (("", "NOT NCT"),)

#: perspective_base.pricing_method codes (EVS pricing method, verbatim: Y, D, C, B).
PRICING_METHODS: tuple[str, ...] = ("Y", "D", "C", "B")
#: perspective_base.nct_call_log: the leg of a network call transfer (verbatim).
NCT_CALL_LOGS: tuple[str, ...] = ("1", "2", "3")
