"""What a LOC means to the inbox: a name that matches two halves, never a path it opens.

Theory of operation
-------------------
The seed's LOC is "File Path, name and extension" on the inbox machine
(``/inbox/files/ods/902512294STD RPTID10.CSV``).  Here a LOC is only a *name*: the
inbox stores every file under a name of its own choosing (:func:`stored_name`) in
its data or metadata directory, so no message can make it read or write anywhere
else.  What the LOC still does is say which item a file belongs to:

* :func:`item_key` -- the base name (last path component without its extension):
  ``r12_a.csv``, ``r12_a.csv_zip`` and ``/inbox/files/rm/r12_a.mtd`` are all
  ``r12_a``.  With the user and enterprise it matches a data file to its metadata
  file (PROTOCOL.md section 6: "one per report file, same base name");
* a LOC that is not a plain name -- ``..`` anywhere, a backslash, a control
  character, an absolute path outside ``/inbox/files/`` -- "points outside" the
  inbox's directory and is 5158 (PROTOCOL.md section 7), as is one whose extension
  is not a data extension (``.csv``, ``.txt``) or the metadata one (``.mtd``), each
  optionally ``_zip``, or not the kind the put says it carries.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from starwrs.grammar.catalogue_inbox import ItemPart
from starwrs.grammar.errors import ErrorCode, StarwrsError

__all__ = ["INBOX_ROOT", "Loc", "parse_loc", "stored_name"]

#: the one absolute prefix a LOC may have (the seed's inbox directory)
INBOX_ROOT = "/inbox/files/"
#: extensions of a data file and of a metadata file (each may end in ``_zip``)
DATA_EXTENSIONS = frozenset({"csv", "txt"})
META_EXTENSIONS = frozenset({"mtd"})
#: longest base name kept
MAX_BASE = 200


@dataclass(frozen=True, slots=True)
class Loc:
    """A checked LOC: the item key it names and what kind of file it is."""

    key: str
    extension: str
    zipped: bool

    @property
    def part(self) -> ItemPart:
        """The half of an item a file with this extension is."""
        return ItemPart.METADATA if self.extension in META_EXTENSIONS else ItemPart.DATA


def _outside(loc: str, why: str) -> StarwrsError:
    return StarwrsError(ErrorCode.INBOX_ADD_LOC, f"LOC {loc[:80]!r} {why}")


def parse_loc(loc: str, part: ItemPart | None = None) -> Loc:
    """Check a LOC and return its item key.

    Args:
        loc: the LOC as the message carries it.
        part: the half a put carries (its extension must agree), or None for a
            synchronous ``A`` (either kind).

    Raises:
        StarwrsError: 5158 for a LOC outside the inbox or with a wrong extension.
    """
    text = loc.strip()
    if not text or any(ord(c) < 32 or c in "\\\x7f" for c in text):
        raise _outside(loc, "is empty or has a backslash or a control character")
    if text.startswith("/"):
        if not text.startswith(INBOX_ROOT):
            raise _outside(loc, f"is an absolute path outside {INBOX_ROOT}")
        text = text[len(INBOX_ROOT) :]
    pieces = text.split("/")
    if any(piece in ("..", "") for piece in pieces[:-1]) or pieces[-1] in ("", ".", ".."):
        raise _outside(loc, "points outside the inbox")
    name = pieces[-1]
    base, dot, extension = name.rpartition(".")
    if not dot or not base or len(base) > MAX_BASE:
        raise _outside(loc, "has no base name and extension (e.g. report.csv)")
    extension = extension.lower()
    zipped = extension.endswith("_zip")
    kind = extension.removesuffix("_zip")
    if kind not in DATA_EXTENSIONS | META_EXTENSIONS:
        raise _outside(loc, "must end in .csv, .txt or .mtd (optionally _zip)")
    checked = Loc(base, kind, zipped)
    if part is not None and checked.part is not part:
        wanted = ".mtd" if part is ItemPart.METADATA else ".csv or .txt"
        raise _outside(loc, f"must end in {wanted} for PART={part.value}")
    return checked


def stored_name(part: ItemPart) -> str:
    """A fresh name of the inbox's own for a stored file (``d-…`` data, ``m-…`` metadata)."""
    prefix = "m" if part is ItemPart.METADATA else "d"
    return f"{prefix}-{secrets.token_hex(16)}"
