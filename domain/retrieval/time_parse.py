"""Time expressions in queries ("in May 2023", "last week", "3 days ago") as date ranges.

The range is a *soft* cue for ranking (memories whose ``occurred_at`` falls inside rank
higher); hard date filters are the caller's ``occurredFrom``/``occurredTo``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
_MONTH = "(" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_ISO = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_DAY_MONTH_YEAR = re.compile(
    rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH},?\s+(\d{{4}})\b", re.I
)
_MONTH_DAY_YEAR = re.compile(rf"\b{_MONTH}\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b", re.I)
_MONTH_YEAR = re.compile(rf"\b{_MONTH},?\s+(\d{{4}})\b", re.I)
_YEAR = re.compile(r"\b(?:in|during|of|since|before|after|by)\s+((?:19|20)\d{2})\b", re.I)
_AGO = re.compile(
    r"\b(\d+|a|an|one|two|three|four|five|six)\s+(day|week|month|year)s?\s+ago\b", re.I
)
_RELATIVE = re.compile(
    r"\b(yesterday|today|(?:last|this|past)\s+(?:week|month|year|weekend))\b", re.I
)
_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
_UNIT_DAYS = {"day": 1, "week": 7, "month": 30, "year": 365}


@dataclass(frozen=True, slots=True)
class TimeRange:
    start: datetime
    end: datetime  # exclusive

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end

    def distance_days(self, moment: datetime) -> float:
        """0 inside the range, else days to its nearest edge."""
        if self.contains(moment):
            return 0.0
        edge = self.start if moment < self.start else self.end
        return abs((moment - edge).total_seconds()) / 86_400


def _day(year: int, month: int, day: int) -> TimeRange | None:
    try:
        start = datetime(year, month, day, tzinfo=UTC)
    except ValueError:
        return None
    return TimeRange(start, start + timedelta(days=1))


def _month(year: int, month: int) -> TimeRange:
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return TimeRange(start, end)


def _year(year: int) -> TimeRange:
    return TimeRange(datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC))


def _relative(phrase: str, now: datetime) -> TimeRange:
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    words = phrase.lower().split()
    if words == ["yesterday"]:
        return TimeRange(today - timedelta(days=1), today)
    if words == ["today"]:
        return TimeRange(today, today + timedelta(days=1))
    span = {"week": 7, "weekend": 3, "month": 31, "year": 366}[words[1]]
    if words[0] == "this":
        return TimeRange(today - timedelta(days=span), today + timedelta(days=1))
    return TimeRange(today - timedelta(days=2 * span), today)  # "last week": the one before


def parse_time_range(text: str, *, now: datetime) -> TimeRange | None:
    """The most specific date range the text names, or ``None``."""
    if m := _ISO.search(text):
        return _day(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    if m := _DAY_MONTH_YEAR.search(text):
        return _day(int(m.group(3)), MONTHS[m.group(2).lower()], int(m.group(1)))
    if m := _MONTH_DAY_YEAR.search(text):
        return _day(int(m.group(3)), MONTHS[m.group(1).lower()], int(m.group(2)))
    if m := _MONTH_YEAR.search(text):
        return _month(int(m.group(2)), MONTHS[m.group(1).lower()])
    if m := _YEAR.search(text):
        return _year(int(m.group(1)))
    if m := _AGO.search(text):
        raw = m.group(1).lower()
        count = int(raw) if raw.isdigit() else _WORDS[raw]
        days = count * _UNIT_DAYS[m.group(2).lower()]
        centre = now - timedelta(days=days)
        slack = timedelta(days=max(1.0, days * 0.25))
        return TimeRange(centre - slack, centre + slack)
    if m := _RELATIVE.search(text):
        return _relative(m.group(1), now)
    return None
