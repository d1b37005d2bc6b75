"""Label values of the Prometheus text format (/metrics): from a fixed vocabulary, escaped.

A label value never comes straight from data (a model's JSON keys, a bot file's outcome, a
caller): ``label(value, allowed)`` keeps it only when it is one of the metric's known values
and says ``other`` for anything else, so no input can create new series or new lines. The
value is then escaped as the exposition format requires (backslash, double quote, line feed),
a second guard should a known value ever contain them. ``counter_lines`` renders a Counter
with one label, summing the unknown values into ``other``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

OTHER = "other"


def escape_label_value(value: str) -> str:
    """``\\`` -> ``\\\\``, ``"`` -> ``\\"``, line feed -> ``\\n`` (and CR dropped)."""
    return (value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
            .replace("\r", ""))


def label(value: object, allowed: Collection[str]) -> str:
    """The escaped label value: ``value`` when it is in ``allowed``, else ``other``."""
    text = value if isinstance(value, str) else str(value)
    return escape_label_value(text if text in allowed else OTHER)


def counter_lines(name: str, label_name: str, counts: Mapping[str, int],
                  allowed: Collection[str]) -> list[str]:
    """One sample per label value, sorted; values outside ``allowed`` are summed as ``other``."""
    totals: dict[str, int] = {}
    for key, n in counts.items():
        value = label(key, allowed)
        totals[value] = totals.get(value, 0) + n
    return [f'{name}{{{label_name}="{v}"}} {n}' for v, n in sorted(totals.items())]
