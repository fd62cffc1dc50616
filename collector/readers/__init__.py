"""CDR readers: one module per format a PBX writes, all yielding the same normalized
:class:`~starwrs.collector.readers.model.Call` (or a
:class:`~starwrs.collector.readers.model.Rejection` for a record that cannot be read).

=============  ==============================================================
module         format
=============  ==============================================================
``asterisk``   Asterisk ``cdr_csv`` ``Master.csv``
``cucm``       Cisco Unified CM CDR flat files (``cdr_<cluster>_<node>_…``)
``avaya``      Avaya IP Office SMDR CSV
``mitel``      Mitel MiVoice Business / 3300 SMDR fixed-width records
=============  ==============================================================

``model.read(fileobj, format="auto", tz=…)`` is the entry point; ``model.detect``
tells the format from a file's first line; ``columnar.read_table`` reads a body held
in memory to one Arrow table (the same calls and rejections; Asterisk in bulk).
"""

from starwrs.collector.readers.model import (
    FORMATS,
    Call,
    Direction,
    Rejection,
    detect,
    normalize_number,
    read,
)

__all__ = ["FORMATS", "Call", "Direction", "Rejection", "detect", "normalize_number", "read"]
