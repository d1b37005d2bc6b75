"""China's clock: the hotline's days and hours are Asia/Shanghai's, whatever the server's own
time zone (containers and CI run in UTC, where a China day starts at 16:00). "Today" for a
caller (明天, 上个月), a report's default range or a calling window is ``china_today()``,
never ``date.today()``."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

CHINA = ZoneInfo("Asia/Shanghai")


def china_day(at: datetime) -> date:
    """The China day of a moment (a naive one is taken as UTC: stored timestamps are)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(CHINA).date()


def china_today() -> date:
    return china_day(datetime.now(UTC))
