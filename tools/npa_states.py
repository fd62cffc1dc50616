"""Generate the report viewer's geographic data, ``web/client/js/viewer/geo-data.js``.

Theory of operation
-------------------
The viewer's geographic view (``web/client/js/viewer/geo.js``) needs, in the browser
and with no request to make: which three-digit numbers are real North American area
codes (NPAs), the state or province of each, and the names of the countries.  All of
it comes from the ``phonenumbers`` package -- the same data the datamart generator
(:mod:`starwrs.fixtures.datamart_geo`) draws its calls from, so every area code in a
demo report has its state:

* **NPA -> state.**  The geocoder describes the prefixes ``1NPA…`` ("Boston, MA" for a
  7-digit ``1NPANXX``, "Texas" for a 4-digit ``1NPA``).  An NPA's state is the one most
  of its descriptions name (three NPAs mix: 201 has one New York exchange among 98 in
  New Jersey; 867 and 902 serve several provinces).  The US territories and the other
  NANP countries are not in the geocoder but in the number metadata: each region's
  ``leading_digits`` lists its NPAs (787|939 Puerto Rico, 242 the Bahamas, ...).
  Territories count as states (us-atlas draws them); the other countries' NPAs are
  kept apart (``NPA_OTHER``: real area codes, no state).  Toll-free and other
  non-geographic NPAs (800, 5XX, 600, ...) are in neither.
* **Countries**: ISO 3166 alpha-2 code -> English name (the geocoder's locale data,
  the names the datamart writes in upper case), and calling code -> main region
  (the "Country Code" column holds calling codes: 52, 44).
* **States**: postal code, FIPS code (us-atlas's feature id) and name of the 50
  states, DC, the five territories and the 13 Canadian provinces and territories --
  ours, the one table of it in the client.

Usage: ``python3 tools/npa_states.py`` writes the module; ``--check`` exits 1 when
the file is not what this script would write (a test runs the check).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "web" / "client" / "js" / "viewer" / "geo-data.js"

#: postal code, FIPS code ("" outside the US), name
STATES: tuple[tuple[str, str, str], ...] = (
    ("AL", "01", "Alabama"), ("AK", "02", "Alaska"), ("AZ", "04", "Arizona"),
    ("AR", "05", "Arkansas"), ("CA", "06", "California"), ("CO", "08", "Colorado"),
    ("CT", "09", "Connecticut"), ("DE", "10", "Delaware"),
    ("DC", "11", "District of Columbia"), ("FL", "12", "Florida"), ("GA", "13", "Georgia"),
    ("HI", "15", "Hawaii"), ("ID", "16", "Idaho"), ("IL", "17", "Illinois"),
    ("IN", "18", "Indiana"), ("IA", "19", "Iowa"), ("KS", "20", "Kansas"),
    ("KY", "21", "Kentucky"), ("LA", "22", "Louisiana"), ("ME", "23", "Maine"),
    ("MD", "24", "Maryland"), ("MA", "25", "Massachusetts"), ("MI", "26", "Michigan"),
    ("MN", "27", "Minnesota"), ("MS", "28", "Mississippi"), ("MO", "29", "Missouri"),
    ("MT", "30", "Montana"), ("NE", "31", "Nebraska"), ("NV", "32", "Nevada"),
    ("NH", "33", "New Hampshire"), ("NJ", "34", "New Jersey"), ("NM", "35", "New Mexico"),
    ("NY", "36", "New York"), ("NC", "37", "North Carolina"), ("ND", "38", "North Dakota"),
    ("OH", "39", "Ohio"), ("OK", "40", "Oklahoma"), ("OR", "41", "Oregon"),
    ("PA", "42", "Pennsylvania"), ("RI", "44", "Rhode Island"),
    ("SC", "45", "South Carolina"), ("SD", "46", "South Dakota"), ("TN", "47", "Tennessee"),
    ("TX", "48", "Texas"), ("UT", "49", "Utah"), ("VT", "50", "Vermont"),
    ("VA", "51", "Virginia"), ("WA", "53", "Washington"), ("WV", "54", "West Virginia"),
    ("WI", "55", "Wisconsin"), ("WY", "56", "Wyoming"),
    ("AS", "60", "American Samoa"), ("GU", "66", "Guam"),
    ("MP", "69", "Northern Mariana Islands"), ("PR", "72", "Puerto Rico"),
    ("VI", "78", "U.S. Virgin Islands"),
    ("AB", "", "Alberta"), ("BC", "", "British Columbia"), ("MB", "", "Manitoba"),
    ("NB", "", "New Brunswick"), ("NL", "", "Newfoundland and Labrador"),
    ("NS", "", "Nova Scotia"), ("NT", "", "Northwest Territories"), ("NU", "", "Nunavut"),
    ("ON", "", "Ontario"), ("PE", "", "Prince Edward Island"), ("QC", "", "Quebec"),
    ("SK", "", "Saskatchewan"), ("YT", "", "Yukon"),
)  # fmt: skip

#: the geocoder's spellings that are not a name of :data:`STATES`
#: the US territories that are NANP regions of their own (and states on the map)
TERRITORIES = frozenset({"AS", "GU", "MP", "PR", "VI"})

NAME_VARIANTS = {
    "Washington State": "WA",
    "Washington D.C.": "DC",
    "British Colombia": "BC",
}


def _state_of_description(text: str, by_name: dict[str, str]) -> str | None:
    """The state a geocoder description names: "City, ST", "Texas", "A/B" (the first)."""
    _city, sep, code = text.rpartition(", ")
    if sep:
        return code if code in {s[0] for s in STATES} else None
    name = text.split("/")[0]
    return NAME_VARIANTS.get(text) or by_name.get(name)


def npa_states() -> tuple[dict[str, str], dict[str, str]]:
    """(NPA -> state or province, NPA -> region code of the other NANP countries)."""
    import phonenumbers
    from phonenumbers.geodata import GEOCODE_DATA

    by_name = {name: code for code, _fips, name in STATES}
    seen: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for prefix, names in GEOCODE_DATA.items():
        if len(prefix) < 4 or not prefix.startswith("1"):
            continue
        state = _state_of_description(names.get("en", ""), by_name)
        if state is not None:
            seen[prefix[1:4]][state] += 1
    states = {npa: counts.most_common(1)[0][0] for npa, counts in seen.items()}
    other: dict[str, str] = {}
    for region in phonenumbers.region_codes_for_country_code(1):
        meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
        pattern = meta.leading_digits if meta is not None else None
        if not pattern:  # the US and Canada: every NPA not another region's
            continue
        for number in range(200, 1000):
            npa = str(number)
            if re.fullmatch(f"(?:{pattern})", npa) is None:
                continue
            if region in TERRITORIES:  # not by postal code: KY is Kentucky and Cayman
                states.setdefault(npa, region)
            elif npa not in states:
                other[npa] = region
    return dict(sorted(states.items())), dict(sorted(other.items()))


def countries() -> dict[str, str]:
    """ISO 3166 alpha-2 code -> English name."""
    from phonenumbers.geodata.locale import LOCALE_DATA

    found: dict[str, str] = {}
    for region, names in LOCALE_DATA.items():
        name = names.get("en", "")
        for _ in range(5):  # "*aa": the name is another language's entry
            if not name.startswith("*"):
                break
            name = names.get(name[1:], "")
        if name and len(region) == 2 and region.isalpha():
            found[region] = name
    return dict(sorted(found.items()))


def calling_codes() -> dict[str, str]:
    """Country calling code -> the ISO code of its main region (1 -> US, 44 -> GB)."""
    import phonenumbers

    found: dict[str, str] = {}
    for code, regions in sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items()):
        main = next((r for r in regions if len(r) == 2 and r.isalpha()), None)
        if main is not None:
            found[str(code)] = main
    return found


def render() -> str:
    """The text of ``geo-data.js``."""
    import phonenumbers

    states, other = npa_states()

    def dump(value: object) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    rows = ",\n  ".join(dump(list(row)) for row in STATES)
    return (
        f"// Generated by tools/npa_states.py from phonenumbers {phonenumbers.__version__}:"
        " do not edit.\n"
        f"export const SOURCE = {dump('phonenumbers ' + phonenumbers.__version__)};\n"
        "/** [postal code, FIPS code (us-atlas feature id; \"\" outside the US), name] */\n"
        f"export const STATES = [\n  {rows},\n];\n"
        "/** NANP area code -> its state, territory or province */\n"
        f"export const NPA_STATES = {dump(states)};\n"
        "/** the other NANP countries' area codes -> ISO region code */\n"
        f"export const NPA_OTHER = {dump(other)};\n"
        "/** ISO 3166 alpha-2 code -> English name */\n"
        f"export const COUNTRIES = {dump(countries())};\n"
        "/** country calling code -> ISO code of its main region */\n"
        f"export const CALLING_CODES = {dump(calling_codes())};\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.is_file() else ""
        if current != text:
            print(f"{OUTPUT.relative_to(ROOT)} is stale: run python3 tools/npa_states.py")
            return 1
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
