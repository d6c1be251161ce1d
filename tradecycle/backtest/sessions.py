"""When the stock exchange is open: NYSE sessions from ``exchange-calendars``
(holidays and half days included), imported here and only when a backtest has
stocks. Crypto trades around the clock and needs no calendar.

A session is open from its opening bell to its close, both in UTC; a cycle at
``t`` sees the market open when ``open < t <= close``: a cycle at the close,
when the session's last bar has just closed, may still decide (its orders fill
at the next session's open).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import UTC, date, datetime, timedelta

INTERVALS = {"1d": timedelta(days=1), "1h": timedelta(hours=1), "15m": timedelta(minutes=15), "1m": timedelta(minutes=1)}


class Sessions:
    def __init__(self, spans: list[tuple[datetime, datetime]]):
        self.spans = sorted(spans)
        self.opens = [s[0] for s in self.spans]
        self.closes = [s[1] for s in self.spans]
        self.by_day = {s[0].astimezone(_new_york()).date(): s for s in self.spans}

    @classmethod
    def nyse(cls, start: date, end: date) -> "Sessions":
        """Every NYSE session from ``start`` to ``end`` (inclusive), within the range the library knows."""
        import warnings

        import exchange_calendars  # pandas and all: only a backtest with stocks pays for it

        with warnings.catch_warnings():  # the library's own deprecation notices are not the user's business
            warnings.simplefilter("ignore")
            calendar = exchange_calendars.get_calendar("XNYS", start=start.isoformat(), end=end.isoformat())
            schedule = calendar.schedule
            spans = [(o.to_pydatetime().astimezone(UTC), c.to_pydatetime().astimezone(UTC))
                     for o, c in zip(schedule["open"], schedule["close"])]
        return cls(spans)

    def session_of(self, day: date) -> tuple[datetime, datetime] | None:
        return self.by_day.get(day)

    def containing(self, t: datetime) -> tuple[datetime, datetime] | None:
        """The session with ``open < t <= close``, if any."""
        i = bisect_left(self.closes, t)
        if i < len(self.spans) and self.opens[i] < t:
            return self.spans[i]
        return None

    def is_open(self, t: datetime) -> bool:
        return self.containing(t) is not None

    def next_close(self, t: datetime) -> datetime | None:
        """The first session close after ``t`` (at a close itself: the next session's)."""
        i = bisect_right(self.closes, t)
        return self.closes[i] if i < len(self.closes) else None

    def next_open(self, t: datetime) -> datetime | None:
        i = bisect_left(self.opens, t)
        return self.opens[i] if i < len(self.opens) else None

    def overlaps(self, opens_at: datetime, closes_at: datetime) -> bool:
        """Whether a bar from ``opens_at`` to ``closes_at`` falls (partly) inside a session."""
        i = bisect_left(self.closes, closes_at)
        for j in (i - 1, i):
            if 0 <= j < len(self.spans) and self.spans[j][0] < closes_at and opens_at < self.spans[j][1]:
                return True
        return False


def _new_york():
    from zoneinfo import ZoneInfo

    return ZoneInfo("America/New_York")
