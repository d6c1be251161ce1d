"""History as a source hands it over: bars with the time each opens and closes,
headlines with the time each was published. Nothing here knows what time it
is in the backtest: ``pit.py`` is the one place that cuts history at ``t``.

A ``SymbolHistory`` holds a symbol's bars at the backtest's interval and its
daily bars (for the indicators), both sorted by when they close, and for each
interval bar the session's bar so far (what a live quote's ``today`` is).
Days are labelled the way the live sources label them: a stock's session date
in New York, a coin's UTC date.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from tradecycle.models import DailyBar, NewsItem, is_crypto

NEW_YORK = ZoneInfo("America/New_York")


@dataclass(frozen=True)
class Bar:
    opens_at: datetime
    closes_at: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


def day_of(symbol: str, moment: datetime) -> str:
    """The trading day a bar opening at ``moment`` belongs to (``YYYY-MM-DD``)."""
    local = moment if is_crypto(symbol) else moment.astimezone(NEW_YORK)
    return local.date().isoformat()


class SymbolHistory:
    """One symbol's bars, indexed for cutting at any moment (see ``pit.py``)."""

    def __init__(self, symbol: str, bars: Sequence[Bar], daily: Sequence[Bar]):
        self.symbol = symbol
        self.bars = sorted(bars, key=lambda b: b.closes_at)
        self.daily = sorted(daily, key=lambda b: b.closes_at)
        self.closes = [b.closes_at for b in self.bars]
        self.opens = [b.opens_at for b in self.bars]
        self.daily_closes = [b.closes_at for b in self.daily]
        self.daily_bars = [
            DailyBar(day_of(symbol, b.opens_at), b.open, b.high, b.low, b.close, b.volume) for b in self.daily
        ]
        self.today, self.previous_close = self._sessions_so_far()

    def _sessions_so_far(self) -> tuple[list[DailyBar], list[Decimal | None]]:
        """For each interval bar: the day's bar up to and including it, and the close of the
        last daily bar of an earlier day (None when there is none)."""
        today: list[DailyBar] = []
        previous: list[Decimal | None] = []
        days = [d.day for d in self.daily_bars]
        running: DailyBar | None = None
        for bar in self.bars:
            day = day_of(self.symbol, bar.opens_at)
            if running is None or running.day != day:
                running = DailyBar(day, bar.open, bar.high, bar.low, bar.close, bar.volume)
            else:
                running = DailyBar(day, running.open, max(running.high, bar.high), min(running.low, bar.low), bar.close,
                                   running.volume + bar.volume)
            today.append(running)
            before = bisect_left(days, day) - 1
            previous.append(self.daily_bars[before].close if before >= 0 else None)
        return today, previous

    # Raw cuts, used by pit.py only.

    def last_closed(self, t: datetime) -> int:
        """Index of the last interval bar closed at or before ``t`` (-1: none)."""
        return bisect_right(self.closes, t) - 1

    def daily_closed(self, t: datetime) -> int:
        """How many daily bars closed at or before ``t``."""
        return bisect_right(self.daily_closes, t)

    def first_opening_at_or_after(self, t: datetime) -> int:
        """Index of the first interval bar that opens at or after ``t`` (len: none)."""
        return bisect_left(self.opens, t)

    @property
    def first_close(self) -> datetime | None:
        return self.closes[0] if self.closes else None


@dataclass
class Dataset:
    """What a source loaded: every symbol's history, headlines by symbol (sorted by
    publication), and the source's name (``sim``, ``csv``, ``alpaca``)."""

    source: str
    interval: timedelta
    histories: dict[str, SymbolHistory]
    news: dict[str, list[NewsItem]] = field(default_factory=dict)
    has_news: bool = False

    def __post_init__(self) -> None:
        self.news = {s: sorted(items, key=lambda n: n.published_at) for s, items in self.news.items()}
        self._published = {s: [n.published_at for n in items] for s, items in self.news.items()}

    def headlines_between(self, symbol: str, since: datetime, before: datetime) -> list[NewsItem]:
        """Raw cut for pit.py: published at or after ``since`` and strictly before ``before``."""
        times = self._published.get(symbol, [])
        items = self.news.get(symbol, [])
        return items[bisect_left(times, since):bisect_left(times, before)]

    def cycle_times(self, start: datetime, end: datetime) -> list[datetime]:
        """Every moment in ``[start, end)`` at which some symbol's interval bar closes:
        the backtest's cycles (a bar that closes is the moment something new is known)."""
        moments: set[datetime] = set()
        for history in self.histories.values():
            lo, hi = bisect_left(history.closes, start), bisect_left(history.closes, end)
            moments.update(history.closes[lo:hi])
        return sorted(moments)

