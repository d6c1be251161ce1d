"""The window a backtest covers and the history it runs on, by ``market_data.provider``:
``sim`` (the simulator's history, offline), ``csv`` (a folder of files), ``alpaca``
(historical bars and news, fetched once and kept in the output database)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from tradecycle.backtest.history import Dataset
from tradecycle.backtest.sessions import INTERVALS, Sessions
from tradecycle.infra.errors import ConfigError, UsageError
from tradecycle.models import is_crypto

# Daily bars before --from, for the indicators: 100 calendar days hold the 60 sessions they use.
WARMUP = timedelta(days=100)


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    interval: timedelta
    interval_name: str

    @property
    def warmup_start(self) -> datetime:
        return self.start - WARMUP


def window(start: date, end: date, interval: str, today: date) -> Window:
    """``[--from, --to)`` in UTC, checked: exit 2 for a bad one."""
    if interval not in INTERVALS:
        raise UsageError(f"--interval {interval}: use one of {', '.join(INTERVALS)}")
    if start >= end:
        raise UsageError(f"--from {start} must be before --to {end}")
    if end > today:  # a bar of today may not have closed yet: history ends at today's midnight (UTC)
        raise UsageError(f"--to {end} is after today ({today} UTC): a backtest ends at today's midnight at the latest")
    return Window(datetime.combine(start, time(), UTC), datetime.combine(end, time(), UTC), INTERVALS[interval], interval)


def sessions_for(symbols: list[str], span: Window) -> Sessions | None:
    """NYSE sessions when the universe has stocks (the calendar library loads only then)."""
    if not any(not is_crypto(s) for s in symbols):
        return None
    return Sessions.nyse(min(span.warmup_start.date(), date(2020, 1, 1)), span.end.date() + timedelta(days=14))


def source_of(config) -> str:
    provider = config.market_data.provider
    if provider == "live":
        raise ConfigError('market_data.provider: "live" has no history to replay (Finnhub\'s candles are premium);'
                          ' a backtest uses "sim", "csv" or "alpaca"')
    return provider


def load_offline(config, source: str, symbols: list[str], span: Window, sessions: Sessions | None) -> Dataset:
    """The ``sim`` or ``csv`` history, read before any database is opened."""
    if source == "sim":
        from tradecycle.backtest.source_sim import load_sim

        return load_sim(symbols, span.interval, span.start, span.end, span.warmup_start, config.market_data.sim.seed, sessions)
    from tradecycle.backtest.source_csv import load_csv

    return load_csv(config.csv_path, symbols, span.interval, span.start, span.end, sessions)


def check_coverage(data: Dataset, span: Window) -> None:
    """Every symbol has at least one bar closing inside the window (exit 2 naming the first that has none)."""
    for symbol, history in data.histories.items():
        if not any(span.start <= t < span.end for t in history.closes):
            raise UsageError(f"{symbol}: no {data.source} bars between {span.start:%Y-%m-%d} and {span.end:%Y-%m-%d}")
