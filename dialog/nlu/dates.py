"""Relative and absolute dates a caller says (今天, 三号, 3月5日, 上个月) -> a date range."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

from dialog.nlu.numbers import chinese_number_to_int
from dialog.nlu.text import to_halfwidth, to_simplified

__all__ = ["DateRange", "parse_date"]


@dataclass(frozen=True)
class DateRange:
    """Inclusive range of days; a single day has ``start == end``."""

    start: date
    end: date

    @property
    def single_day(self) -> bool:
        return self.start == self.end


_N = r"[0-9零〇一二两三四五六七八九十]{1,3}"
_YMD_RE = re.compile(rf"(?:(?P<y>\d{{4}}|[零〇一二三四五六七八九]{{4}})年)?(?P<m>{_N})月"
                     rf"(?:(?P<d>{_N})(?:日|号))?")
_ISO_RE = re.compile(r"(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})")
_DAY_RE = re.compile(rf"(?P<d>{_N})(?:日|号)")
_RELATIVE_DAYS = (("大前天", 3), ("前天", 2), ("昨天", 1), ("昨日", 1), ("今天", 0), ("今日", 0))
_LAST_MONTH = ("上个月", "上月")
_THIS_MONTH = ("这个月", "本月", "这月", "当月")
_LAST_WEEK = ("上周", "上个星期", "上星期", "上个礼拜", "上礼拜")
_THIS_WEEK = ("这周", "本周", "这个星期", "这星期", "这个礼拜", "这礼拜")


def _month_range(year: int, month: int) -> DateRange:
    return DateRange(date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1]))


def _prev_month(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)


def _num(token: str) -> int:
    return chinese_number_to_int(token)


def parse_date(text: str, today: date) -> DateRange | None:
    """Parse the date or period in ``text`` relative to ``today``; None when there is none.

    Understood: 今天/昨天/前天/大前天, 这个月/本月, 上个月, 本周/上周, ``3号`` / ``三号``
    (that day of this month, or of last month if it is still to come), ``3月5日`` /
    ``三月五号`` (this year, or last year if still to come), ``2024年3月5日``, ``2024-03-05``,
    ``3月`` (the whole month). Impossible dates (2月30日) give None.
    """
    s = to_halfwidth(to_simplified(text)).replace(" ", "")
    try:
        for word, back in _RELATIVE_DAYS:
            if word in s:
                day = today - timedelta(days=back)
                return DateRange(day, day)
        if any(w in s for w in _LAST_MONTH):
            return _month_range(*_prev_month(today.year, today.month))
        if any(w in s for w in _THIS_MONTH):
            return DateRange(date(today.year, today.month, 1), today)
        if any(w in s for w in _LAST_WEEK):
            monday = today - timedelta(days=today.weekday() + 7)
            return DateRange(monday, monday + timedelta(days=6))
        if any(w in s for w in _THIS_WEEK):
            return DateRange(today - timedelta(days=today.weekday()), today)
        m = _ISO_RE.search(s)
        if m:
            day = date(int(m["y"]), int(m["m"]), int(m["d"]))
            return DateRange(day, day)
        m = _YMD_RE.search(s)
        if m:
            month = _num(m["m"])
            year = _num(m["y"]) if m["y"] else today.year
            explicit_year = bool(m["y"])
            if m["d"] is None:
                if not explicit_year and (year, month) > (today.year, today.month):
                    year -= 1
                return _month_range(year, month)
            day = date(year, month, _num(m["d"]))
            if not explicit_year and day > today:
                day = date(year - 1, month, day.day)
            return DateRange(day, day)
        m = _DAY_RE.search(s)
        if m:
            d = _num(m["d"])
            year, month = today.year, today.month
            if d > today.day:
                year, month = _prev_month(year, month)
            day = date(year, month, d)
            return DateRange(day, day)
    except ValueError:  # impossible date or malformed numeral
        return None
    return None
