"""CSV cells that a spreadsheet never runs as formulas (CSV/formula injection, OWASP).

Every CSV this project writes goes through ``safe_writer`` (or ``safe_cell``). A text cell whose
first character, after any leading whitespace, is one that starts a formula in Excel, WPS or
LibreOffice (``=``, ``+``, ``-``, ``@``, also full-width ``＝＋－＠``), or that starts with a tab or
carriage return, is prefixed with a single quote: the spreadsheet shows it as text. Numbers
(``int``/``float``, not ``bool``) are written as they are, so a negative score stays a number;
``None`` is an empty cell. Caller speech, names and survey answers are data, never formulas.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any

_FORMULA_START = frozenset("=+-@＝＋－＠")
_CONTROL_START = frozenset("\t\r\n")


def safe_cell(value: Any) -> Any:
    """The cell as written to a CSV: formula-looking text gets a leading ``'``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return value
    text = str(value)
    if not text:
        return text
    if text[0] in _CONTROL_START or text.lstrip()[:1] in _FORMULA_START:
        return "'" + text
    return text


class SafeWriter:
    """``csv.writer`` whose rows pass through ``safe_cell``."""

    def __init__(self, out: Any, **kwargs: Any) -> None:
        self._w = csv.writer(out, **kwargs)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._w.writerow([safe_cell(c) for c in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def safe_writer(out: Any, **kwargs: Any) -> SafeWriter:
    return SafeWriter(out, **kwargs)
