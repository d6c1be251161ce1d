"""The New York Stock Exchange's calendar, small enough for every cycle.

Sessions are weekdays 09:30-16:00 New York time, less the NYSE's full-day
holidays (New Year's Day, Martin Luther King Jr. Day, Washington's Birthday,
Good Friday, Memorial Day, Juneteenth from 2022, Independence Day, Labor Day,
Thanksgiving, Christmas; a Saturday holiday is taken the Friday before, a
Sunday one the Monday after, except New Year's Day on a Saturday, which is
not made up), with a 13:00 close on the day after Thanksgiving, on Christmas
Eve and on July 3rd when they are sessions. Special closures (a national day
of mourning, a storm) are not known.

The ``exchange-calendars`` package knows all of that and more, but it imports
pandas: importing it took 1.2-1.5 s here and building its XNYS calendar
another 0.5 s, on every cron cycle of the simulator, so the simulator uses
this instead. These rules agree with exchange-calendars 4.13 (XNYS) on every
session of 2000-2030 but the special closures (2001-09-11 to 14, 2004-06-11,
2007-01-02, 2012-10-29 and 30, 2018-12-05, 2025-01-09) and three early closes
of 2002-2003; tests/test_sim_calendar.py keeps a sample of its dates.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
OPEN, CLOSE, EARLY_CLOSE = time(9, 30), time(16, 0), time(13, 0)
SESSION_SECONDS = 6.5 * 3600


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The ``n``-th ``weekday`` (Monday 0) of a month; ``n = -1`` the last."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _easter(year: int) -> date:
    """Gregorian Easter Sunday (the anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return date(year, month, day + 1)


def _observed(day: date) -> date:
    return day - timedelta(days=1) if day.weekday() == 5 else day + timedelta(days=1) if day.weekday() == 6 else day


@lru_cache(maxsize=64)
def holidays(year: int) -> frozenset[date]:
    days = {
        _nth_weekday(year, 1, 0, 3),  # Martin Luther King Jr. Day
        _nth_weekday(year, 2, 0, 3),  # Washington's Birthday
        _easter(year) - timedelta(days=2),  # Good Friday
        _nth_weekday(year, 5, 0, -1),  # Memorial Day
        _observed(date(year, 7, 4)),
        _nth_weekday(year, 9, 0, 1),  # Labor Day
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving
        _observed(date(year, 12, 25)),
    }
    new_year = date(year, 1, 1)
    if new_year.weekday() != 5:  # on a Saturday it is not made up (the Friday before closes a year)
        days.add(_observed(new_year))
    if year >= 2022:
        days.add(_observed(date(year, 6, 19)))  # Juneteenth
    return frozenset(days)


def is_session(day: date) -> bool:
    return day.weekday() < 5 and day not in holidays(day.year)


def _early_close(day: date) -> bool:
    thanksgiving = _nth_weekday(day.year, 11, 3, 4)
    return day in (thanksgiving + timedelta(days=1), date(day.year, 12, 24), date(day.year, 7, 3))


def session_bounds(day: date) -> tuple[datetime, datetime]:
    """(open, close) in UTC of the session on ``day`` (a session day)."""
    close = EARLY_CLOSE if _early_close(day) else CLOSE
    return (datetime.combine(day, OPEN, NEW_YORK).astimezone(UTC), datetime.combine(day, close, NEW_YORK).astimezone(UTC))


def session_day(moment: datetime) -> date:
    """The New York date of ``moment``."""
    return moment.astimezone(NEW_YORK).date()


def is_open(moment: datetime) -> bool:
    day = session_day(moment)
    if not is_session(day):
        return False
    opens, closes = session_bounds(day)
    return opens <= moment < closes


def next_open(moment: datetime) -> datetime:
    """The first session open after ``moment`` (or at it)."""
    day = session_day(moment)
    while True:
        if is_session(day):
            opens, _ = session_bounds(day)
            if opens >= moment:
                return opens
        day += timedelta(days=1)


def next_close(moment: datetime) -> datetime:
    """The close of the session open at ``moment``, or of the next one."""
    day = session_day(moment)
    while True:
        if is_session(day):
            _, closes = session_bounds(day)
            if closes > moment:
                return closes
        day += timedelta(days=1)


def last_session(moment: datetime) -> date:
    """The latest session that has opened at or before ``moment``."""
    day = session_day(moment)
    while not (is_session(day) and session_bounds(day)[0] <= moment):
        day -= timedelta(days=1)
    return day


def sessions_before(day: date, count: int) -> list[date]:
    """The ``count`` sessions before ``day``, newest first."""
    found = []
    while len(found) < count:
        day -= timedelta(days=1)
        if is_session(day):
            found.append(day)
    return found


def open_seconds_between(start: datetime, end: datetime) -> float:
    """How many seconds of ``(start, end]`` the exchange was open."""
    if end <= start:
        return 0.0
    total, day = 0.0, session_day(start)
    last = session_day(end)
    while day <= last:
        if is_session(day):
            opens, closes = session_bounds(day)
            total += max(0.0, (min(end, closes) - max(start, opens)).total_seconds())
        day += timedelta(days=1)
    return total


def last_trade_time(moment: datetime) -> datetime:
    """``moment`` while the exchange is open, else the close of the last session."""
    if is_open(moment):
        return moment
    day = last_session(moment)
    return min(session_bounds(day)[1], moment)
