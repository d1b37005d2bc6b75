"""Public entry point for text normalisation and slot parsing.

The implementations live in small single-purpose modules; this module re-exports them so that
callers only need ``from dialog.nlu import normalize as nz``:

* :mod:`dialog.nlu.text` - ``to_simplified``, ``strip_punct``, ``spoken_digits_to_str``,
  ``normalize_for_match``
* :mod:`dialog.nlu.numbers` - ``chinese_number_to_int``, ``parse_amount``
* :mod:`dialog.nlu.dates` - ``parse_date``, ``DateRange``
* :mod:`dialog.nlu.extract` - ``extract_digits``, ``extract_card_number``, ``extract_phone``,
  ``extract_id_tail``, ``validate_resident_id``, ``extract_yes_no``, ``luhn_valid``
"""

from __future__ import annotations

from dialog.nlu.dates import DateRange, parse_date
from dialog.nlu.extract import (
    CARD_LENGTHS,
    extract_card_number,
    extract_digits,
    extract_id_tail,
    extract_phone,
    extract_yes_no,
    luhn_valid,
    validate_resident_id,
)
from dialog.nlu.numbers import chinese_number_to_int, parse_amount
from dialog.nlu.text import (
    normalize_for_match,
    spoken_digits_to_str,
    strip_punct,
    to_halfwidth,
    to_simplified,
)

__all__ = [
    "CARD_LENGTHS",
    "DateRange",
    "chinese_number_to_int",
    "extract_card_number",
    "extract_digits",
    "extract_id_tail",
    "extract_phone",
    "extract_yes_no",
    "luhn_valid",
    "normalize_for_match",
    "parse_amount",
    "parse_date",
    "spoken_digits_to_str",
    "strip_punct",
    "to_halfwidth",
    "to_simplified",
    "validate_resident_id",
]
