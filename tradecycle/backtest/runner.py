"""The backtest loop: the very same ``run_cycle`` at every moment of the
timeline, with history, a historical clock and the backtest broker injected.

No process starts, no lock is taken and nothing is fetched per cycle: the
services read the dataset in memory through ``pit.py``. After each cycle the
run's progress, the broker's books, the fees of new fills and the new model
replies are saved, so a run stopped at any moment (Ctrl-C, a crash) leaves a
consistent database that ``--resume`` continues from the next cycle.

The kill switch works as live: a daily loss past the limit trips it and the
cycles of that day skip. Live, a person would look and turn it off; the
backtest turns it off at the first cycle of the next day, with the reason
recorded, and counts the trips in its results.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from tradecycle.backtest.broker import BacktestBroker
from tradecycle.backtest.history import Dataset
from tradecycle.backtest.llm import ReplyCache
from tradecycle.backtest.pit import HistoricalClock, PitBars, PitNews, PitQuotes, PointInTime
from tradecycle.backtest.sessions import Sessions
from tradecycle.cycle.run import CycleSettings, run_cycle
from tradecycle.models import Deadline, is_crypto
from tradecycle.ports import Analyst, EventLog, Services
from tradecycle.store import write_kill_switch
from tradecycle.store.backtests import BacktestBook
from tradecycle.infra.times import iso

RESUME_NOTE = "turned off by the backtest at the next day's first cycle (live, only a person turns it off)"


class NoLock:
    """One process runs the whole backtest: there is no other cycle to keep out."""

    def acquire(self) -> bool:
        return True

    def release(self) -> None:
        pass


@dataclass
class StopFlag:
    """Set by Ctrl-C: the cycle under way finishes, then the run stops."""

    requested: bool = False


@dataclass
class Setup:
    data: Dataset
    sessions: Sessions | None
    settings: CycleSettings
    analyst: Analyst
    starting_cash: Decimal
    slippage_bps: Decimal
    fee_bps: Decimal
    max_cycle_seconds: float = 50
    llm_models: int = 0  # language models asked per symbol (main and shadows; 0 for the rules analyst)
    # The cycle's budget, shared with the analyst's HTTP layer: reset in place before each cycle.
    deadline: Deadline = field(default_factory=lambda: Deadline(50))


@dataclass
class RunResult:
    status: str  # completed | interrupted | budget
    cycles: int  # done so far, resumed ones included
    llm_calls: int
    results: dict = field(default_factory=dict)


def max_llm_calls(setup: Setup, times: Sequence[datetime]) -> int:
    """At most how many requests the run sends: every symbol that may be analysed, every cycle."""
    return sum(calls_at(setup, t) for t in times)


def calls_at(setup: Setup, t: datetime) -> int:
    if not setup.llm_models:
        return 0
    open_now = setup.sessions is None or setup.sessions.is_open(t)
    symbols = sum(1 for s in setup.settings.symbols if is_crypto(s) or open_now)
    return symbols * setup.llm_models


def run(setup: Setup, times: Sequence[datetime], book: BacktestBook, run_id: int, log: EventLog, replies: ReplyCache,
        progress: Callable[[int, datetime, Decimal], None] = lambda *a: None, stop: StopFlag | None = None,
        books: dict | None = None, done: int = 0) -> RunResult:
    """Run the cycles of ``times`` from index ``done`` on (a resumed run passes its books)."""
    from tradecycle.store import Store

    stop = stop or StopFlag()
    clock = HistoricalClock(times[min(done, len(times) - 1)])
    pit = PointInTime(setup.data, clock, setup.sessions)
    broker = BacktestBroker(pit, setup.starting_cash, setup.slippage_bps, setup.fee_bps)
    if books:
        broker.restore(books)
    quotes = PitQuotes(pit)
    services = Services(broker, quotes, quotes, PitNews(pit) if setup.data.has_news else None, setup.analyst, clock,
                        NoLock(), setup.deadline, PitBars(pit))
    store = Store(book.db)
    status, cycles = "completed", done
    trips = int((books or {}).get("kill_switch_trips", 0))
    started = time.perf_counter()
    for t in times[done:]:
        if stop.requested:
            status = "interrupted"
            break
        if replies.budget is not None and replies.calls + calls_at(setup, t) > replies.budget:
            status = "budget"
            break
        clock.set(t)
        broker.advance()
        _restart(services.deadline, setup.max_cycle_seconds)
        trips += _next_day_reset(store, book, t)
        run_cycle(services, store, setup.settings, log)
        cycles += 1
        snapshot = broker.snapshot() | {"kill_switch_trips": trips}
        book.save_replies(replies.take_new())
        book.save_progress(run_id, cycles=cycles, llm_calls=replies.calls, last_cycle_at=iso(t), books=snapshot,
                           fees=broker.take_fees())
        progress(cycles, t, broker.equity())
    loop_seconds = time.perf_counter() - started
    results = closing_figures(setup, pit, broker, book, times, trips, replies)
    # This process's cycles and how long they took (the benchmark's per-cycle figure, no start-up in it).
    results["run_cycles"], results["run_seconds"] = cycles - done, round(loop_seconds, 3)
    return RunResult(status, cycles, replies.calls, results)


def _restart(deadline: Deadline, seconds: float) -> None:
    """Each cycle gets its own budget; the HTTP layer holds this very object, so it is reset in place."""
    deadline.expires_at = time.monotonic() + seconds


def _next_day_reset(store, book: BacktestBook, t: datetime) -> int:
    """Turn off a kill switch the cycles tripped on an earlier day; 1 if it was on."""
    switch = store.kill_switch()
    if not switch.active or not switch.changed_at or switch.changed_at[:10] >= t.date().isoformat():
        return 0
    write_kill_switch(book.db, False, RESUME_NOTE, t, changed_by="tool")
    return 1


def closing_figures(setup: Setup, pit: PointInTime, broker: BacktestBroker, book: BacktestBook, times: Sequence[datetime],
                    trips: int, replies: ReplyCache) -> dict:
    """Return, buy-and-hold (equal weights over the universe, first cycle to the last), max drawdown,
    trades, costs and model calls: the closing line and ``backtests.results``."""
    start = setup.starting_cash
    final = broker.equity()
    last = pit.t
    pit.clock.set(times[0])
    first_prices = {s: pit.price(s) for s in setup.settings.symbols}
    pit.clock.set(last)
    moves = [pit.price(s) / p - 1 for s, p in first_prices.items() if p and pit.price(s)]
    buy_and_hold = sum(moves, Decimal(0)) / len(moves) * 100 if moves else None
    peak, drawdown = None, Decimal(0)
    for point in book.equity_points():
        equity = Decimal(point["equity"])
        peak = equity if peak is None or equity > peak else peak
        if peak > 0:
            drawdown = max(drawdown, (peak - equity) / peak * 100)
    return {
        "start_equity": str(start.quantize(Decimal("0.01"))),
        "final_equity": str(final.quantize(Decimal("0.01"))),
        "return_percent": float(((final / start - 1) * 100).quantize(Decimal("0.01"))),
        "buy_and_hold_percent": None if buy_and_hold is None else float(buy_and_hold.quantize(Decimal("0.01"))),
        "max_drawdown_percent": float(drawdown.quantize(Decimal("0.01"))),
        "trades": book.filled_trades(),
        "fees_usd": str(broker.fees_usd.quantize(Decimal("0.01"))),
        "slippage_usd": str(broker.slippage_usd.quantize(Decimal("0.01"))),
        "kill_switch_trips": trips,
        "llm_calls": replies.calls,
        "llm_replies_reused": replies.hits,
        "first_cycle_at": iso(times[0]),
        "last_cycle_at": iso(last),
    }
