"""The business lines and their agent queues: the one place this vocabulary is declared.

A call belongs to a line (加油卡 ``oil``, 天然气 ``gas``, or ``general``); each line has an
app_queue queue, reached through the dialplan context ``ivr-queues`` by the line's extension.
``priority`` is a queue only (gas leaks and other emergencies jump the line). An unknown line
goes to the general queue, never nowhere. The dialplan (``asterisk/conf``) uses the same names.
"""

from __future__ import annotations

from typing import Literal

Line = Literal["oil", "gas", "general"]
LINES: tuple[Line, ...] = ("oil", "gas", "general")
DEFAULT_LINE: Line = "general"

LINE_LABELS: dict[str, str] = {"oil": "加油卡", "gas": "天然气", "general": "综合",
                               "priority": "紧急"}

QUEUE_CONTEXT = "ivr-queues"  # the dialplan context whose extensions are the lines
QUEUES: dict[str, str] = {
    "oil": "hotline-oil",
    "gas": "hotline-gas",
    "general": "hotline-general",
    "priority": "hotline-priority",
}
_QUEUE_LINES = {queue: line for line, queue in QUEUES.items()}


def as_line(value: object) -> Line:
    """``value`` when it names a line, else the general line."""
    return value if value in LINES else DEFAULT_LINE


def queue_extension(line: str) -> str:
    """The ``ivr-queues`` extension for ``line`` (a queue name of ``QUEUES``; unknown: general)."""
    return line if line in QUEUES else DEFAULT_LINE


def queue_for(line: str) -> str:
    """The app_queue queue of ``line`` (unknown: the general queue)."""
    return QUEUES[queue_extension(line)]


def line_of_queue(queue: str) -> str:
    """The line (or ``priority``) whose queue is ``queue``; unknown: general."""
    return _QUEUE_LINES.get(queue, DEFAULT_LINE)
