"""Point in time: the one place where history is cut at the backtest's ``t``.

Everything the cycle sees in a backtest comes through ``PointInTime``:

- bars that **closed at or before** ``t`` (a bar's open time is never taken for
  the time it was known: a daily stock bar stamped midnight closes at 16:00
  New York), so a quote at ``t`` is the close of the last closed bar, and
  ``today`` is the session's bar built from the bars closed so far;
- daily bars (for the indicators) closed at or before ``t``;
- headlines published **strictly before** ``t``.

The cycle's own services (``PitQuotes``, ``PitBars``, ``PitNews``) read only
through it, and so does the backtest broker (``broker.py``): its fills use the
bars that opened after an order was sent and closed by the time of the cycle
that learns of the fill. The analyst and the rules therefore cannot see a
future bar or headline, whatever they ask.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from tradecycle.backtest.history import Bar, Dataset
from tradecycle.backtest.sessions import Sessions
from tradecycle.infra.errors import BadResponse
from tradecycle.models import DailyBar, NewsItem, Quote, is_crypto


class HistoricalClock:
    """The backtest's time: moved by the runner from cycle to cycle, still within one."""

    def __init__(self, t: datetime):
        self.t = t

    def now(self) -> datetime:
        return self.t

    def set(self, t: datetime) -> None:
        self.t = t


class PointInTime:
    def __init__(self, data: Dataset, clock: HistoricalClock, sessions: Sessions | None):
        self.data = data
        self.clock = clock
        self.sessions = sessions

    @property
    def t(self) -> datetime:
        return self.clock.now()

    def quote(self, symbol: str) -> Quote | None:
        """The close of the last bar closed by ``t``, with the session's bar so far."""
        history = self.data.histories.get(symbol)
        if history is None:
            return None
        i = history.last_closed(self.t)
        if i < 0:
            return None
        bar, today, previous = history.bars[i], history.today[i], history.previous_close[i]
        change = None if not previous else ((bar.close / previous - 1) * 100).quantize(Decimal("0.01"))
        return Quote(symbol, bar.close, bar.closes_at, self.data.source, change, previous, today)

    def price(self, symbol: str) -> Decimal | None:
        history = self.data.histories.get(symbol)
        if history is None:
            return None
        i = history.last_closed(self.t)
        return history.bars[i].close if i >= 0 else None

    def daily_bars(self, symbol: str, days: int) -> list[DailyBar]:
        """The last ``days`` daily bars closed by ``t``, oldest first."""
        history = self.data.histories.get(symbol)
        if history is None:
            return []
        known = history.daily_closed(self.t)
        return history.daily_bars[max(0, known - days):known]

    def headlines(self, symbol: str, since: datetime) -> list[NewsItem]:
        """Published at or after ``since`` and before ``t``, newest first."""
        return list(reversed(self.data.headlines_between(symbol, since, self.t)))

    def bars_since(self, symbol: str, since: datetime) -> list[Bar]:
        """Bars that opened at or after ``since`` and closed by ``t`` (the broker's fills)."""
        history = self.data.histories.get(symbol)
        if history is None:
            return []
        first, last = history.first_opening_at_or_after(since), history.last_closed(self.t)
        return history.bars[first:last + 1]

    def opens_since(self, symbol: str, since: datetime) -> list[Bar]:
        """Bars that opened at or after ``since`` and by ``t``: a market order's fill needs only
        the open, known from the moment the bar opens (their high, low and close are not read)."""
        history = self.data.histories.get(symbol)
        if history is None:
            return []
        first = history.first_opening_at_or_after(since)
        return [b for b in history.bars[first:first + 2] if b.opens_at <= self.t][:1]

    def is_open(self, symbol: str) -> bool:
        if is_crypto(symbol) or self.sessions is None:
            return True
        return self.sessions.is_open(self.t)

    def next_open(self) -> datetime | None:
        return self.sessions.next_open(self.t) if self.sessions is not None else None


class PitQuotes:
    """The cycle's ``QuoteSource`` in a backtest."""

    def __init__(self, pit: PointInTime):
        self.pit = pit
        self.name = pit.data.source

    def get_quotes(self, symbols: Sequence[str]) -> dict[str, Quote | Exception]:
        found: dict[str, Quote | Exception] = {}
        for symbol in symbols:
            quote = self.pit.quote(symbol)
            found[symbol] = quote if quote is not None else BadResponse(self.name, f"no bar of {symbol} closed yet")
        return found


class PitBars:
    """The cycle's ``BarSource`` in a backtest: daily bars closed by the backtest's ``t``.

    The cycle stores what it is given (an upsert by day) and reads its last 60 days
    back from its database; so after the first call of a run each symbol is given only
    the bars that closed since the last call (the stored set is the same, and a year of
    daily cycles does not write 60 bars per symbol every day)."""

    def __init__(self, pit: PointInTime):
        self.pit = pit
        self.name = pit.data.source
        self.given: dict[str, str] = {}  # symbol -> the last day handed over

    def get_daily_bars(self, symbols: Sequence[str], days: int, now: datetime) -> dict[str, list[DailyBar]]:
        found = {}
        for symbol in symbols:
            bars = self.pit.daily_bars(symbol, days)
            last = self.given.get(symbol)
            found[symbol] = [b for b in bars if b.day > last] if last else bars
            if bars:
                self.given[symbol] = bars[-1].day
        return found


class PitNews:
    """The cycle's ``NewsSource`` in a backtest: headlines published before ``t``."""

    def __init__(self, pit: PointInTime):
        self.pit = pit
        self.name = pit.data.source

    def covers(self, symbol: str) -> bool:
        return True

    def get_news(self, symbol: str, since: datetime) -> list[NewsItem]:
        return self.pit.headlines(symbol, since)
