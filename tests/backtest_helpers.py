"""Small histories written by hand for the backtest tests, and a way to run the
real backtest loop on them (the cycle, the broker, a real SQLite file)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

from tradecycle.ai.prompt import build_messages
from tradecycle.ai.rules import RulesAnalyst
from tradecycle.backtest import runner
from tradecycle.backtest.history import Bar, Dataset, SymbolHistory
from tradecycle.backtest.llm import ReplyCache
from tradecycle.config import Config
from tradecycle.commands.wiring import cycle_settings
from tradecycle.infra.logs import MemoryLog
from tradecycle.models import NewsItem
from tradecycle.store import open_database
from tradecycle.store.backtests import BacktestBook

DAY = timedelta(days=1)


def utc(day: date, hour: int = 0, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), UTC)


def daily_coin_bars(first: date, closes: list[float], spread: float = 0.01) -> list[Bar]:
    """Daily bars of a coin (UTC days), each opening at the previous close."""
    bars, previous = [], closes[0]
    for k, close in enumerate(closes):
        opens = utc(first + DAY * k)
        o, c = Decimal(str(previous)), Decimal(str(close))
        bars.append(Bar(opens, opens + DAY, o, max(o, c) * Decimal(1 + spread), min(o, c) * Decimal(1 - spread), c,
                        Decimal(1000)))
        previous = close
    return bars


def trending(count: int, start: float = 100.0, step: float = 0.4, wobble: float = 1.5) -> list[float]:
    """A rising series with some noise (enough for the rules analyst to buy and sell)."""
    import math

    return [round(start + step * k + wobble * math.sin(k / 2.0), 2) for k in range(count)]


class Recording:
    """The rules analyst, with every call recorded: the backtest time, the inputs and the
    prompt an LLM would have been sent for the same inputs."""

    model = RulesAnalyst.model

    def __init__(self, clock=None):
        self.inner = RulesAnalyst()
        self.clock = clock
        self.calls: list[tuple[datetime | None, list, str]] = []

    def analyse(self, inputs, timeout_seconds):
        prompt = json.dumps([build_messages([i]) for i in inputs], default=str)
        self.calls.append((self.clock.now() if self.clock else None, list(inputs), prompt))
        return self.inner.analyse(inputs, timeout_seconds)


def run_dataset(tmp_path: Path, data: Dataset, analyst, *, symbols: tuple[str, ...], start: datetime, end: datetime,
                fee_bps: str = "0", slippage_bps: str = "0", stop=None, books=None, done: int = 0, db_name: str = "bt.db",
                times=None, risk: dict | None = None):
    """The backtest loop on ``data`` into a real database; returns (result, db)."""
    config = Config.model_validate({"universe": {"stocks": [s for s in symbols if "/" not in s],
                                                 "crypto": [s for s in symbols if "/" in s]}, "risk": risk or {}})
    import dataclasses

    settings = dataclasses.replace(cycle_settings(config, dry_run=False), keep_days=0)
    setup = runner.Setup(data, None, settings, analyst, Decimal(100000), Decimal(slippage_bps), Decimal(fee_bps))
    db = open_database(tmp_path / db_name)
    book = BacktestBook(db)
    run_id = book.last_run()["id"] if books else book.start_run({"status": "running", "cycles": 0, "llm_calls": 0,
                                                                 "contaminated": 0, "parameters": "{}"})
    times = times if times is not None else data.cycle_times(start, end)
    result = runner.run(setup, times, book, run_id, MemoryLog(), ReplyCache({}), stop=stop, books=books, done=done)
    return result, db


def coin_dataset(closes: list[float], first: date, news: list[NewsItem] = (), symbol: str = "BTC/USD") -> Dataset:
    bars = daily_coin_bars(first, closes)
    return Dataset("test", DAY, {symbol: SymbolHistory(symbol, bars, bars)}, {symbol: list(news)}, has_news=True)
