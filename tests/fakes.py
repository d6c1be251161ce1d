"""In-memory fakes of the cycle's ports, injected the way llm's tests enqueue
canned replies. They record what reached them so tests can assert on it."""

from __future__ import annotations

import uuid
from dataclasses import replace
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tradecycle.cycle.run import CycleSettings
from tradecycle.infra.errors import DuplicateOrder, OrderRejected, ServiceUnavailable
from tradecycle.infra.logs import MemoryLog
from tradecycle.models import (
    Account,
    AnalysisInput,
    DailyBar,
    Deadline,
    Decision,
    MarketClock,
    NewsItem,
    OrderIntent,
    OrderResult,
    Position,
    Quote,
    RiskLimits,
)
from tradecycle.ports import Services

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
LIMITS = RiskLimits(
    max_position_size_percent=Decimal(10),
    max_total_exposure_percent=Decimal(50),
    max_positions_count=15,
    daily_loss_limit_percent=Decimal(5),
    min_confidence=0.6,
)


class FakeClock:
    def __init__(self, now: datetime = NOW):
        self.current = now

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


class FakeLock:
    def __init__(self, free: bool = True):
        self.free = free
        self.released = False

    def acquire(self) -> bool:
        return self.free

    def release(self) -> None:
        self.released = True


class FakeBroker:
    """A broker that fills at the given prices and records every order it receives."""

    name = "fake"

    def __init__(self, *, equity="100000", last_equity=None, cash=None, positions=(), prices=None, clock_open=True):
        self.account = Account(
            equity=Decimal(equity),
            last_equity=Decimal(last_equity or equity),
            cash=Decimal(cash or equity),
            buying_power=Decimal(cash or equity),
        )
        self.positions = {p.symbol: p for p in positions}
        self.prices = {k: Decimal(v) for k, v in (prices or {}).items()}
        self.clock = MarketClock(is_open=clock_open, next_open="2026-11-26T14:30:00Z")
        self.orders: list[OrderIntent] = []
        self.known: dict[str, OrderResult] = {}
        self.fail_account: Exception | None = None
        self.reject: dict[str, Exception] = {}
        self.before_order: Callable[[OrderIntent], None] | None = None
        self.order_status = "accepted"  # what the broker answers to every new order
        self.cancels: list[str] = []  # broker order ids cancelled
        self.clock_calls = 0

    def get_account(self) -> Account:
        if self.fail_account:
            raise self.fail_account
        return self.account

    def get_clock(self) -> MarketClock:
        self.clock_calls += 1
        return self.clock

    def get_positions(self) -> list[Position]:
        return list(self.positions.values())

    def submit_order(self, intent: OrderIntent) -> OrderResult:
        if self.before_order:
            self.before_order(intent)
        if intent.client_order_id in self.known:
            raise DuplicateOrder("fake", "client_order_id must be unique", 422)
        if intent.symbol in self.reject:
            raise self.reject[intent.symbol]
        self.orders.append(intent)
        result = OrderResult(intent.client_order_id, str(uuid.uuid4()), self.order_status, intent.symbol, intent.side,
                             qty=intent.qty)
        self.known[intent.client_order_id] = result
        return result

    def get_order_by_client_id(self, client_order_id: str) -> OrderResult | None:
        return self.known.get(client_order_id)

    def get_order(self, broker_order_id: str) -> OrderResult:
        for result in self.known.values():
            if result.broker_order_id == broker_order_id:
                return result
        raise OrderRejected("fake", "not found", 404)

    def load_order_minimums(self, symbols) -> None:
        """Nothing to read ahead: the minimum is $1 for every symbol."""

    def min_order_notional(self, symbol: str, price: Decimal) -> Decimal:
        return Decimal(1)

    def open_orders(self) -> list[OrderResult]:
        return [r for r in self.known.values() if r.status not in ("filled", "canceled", "expired", "rejected")]

    def cancel_order(self, broker_order_id: str) -> None:
        for cid, result in self.known.items():
            if result.broker_order_id == broker_order_id:
                if result.status in ("filled", "canceled", "expired", "rejected"):
                    raise OrderRejected("fake", f"order is already in \"{result.status}\" state", 422)
                self.known[cid] = replace(result, status="canceled")
                self.cancels.append(broker_order_id)
                return
        raise OrderRejected("fake", "order not found", 404)


class FakeQuotes:
    """Quotes from a table; a symbol mapped to an Exception fails with it."""

    name = "fakequotes"

    def __init__(self, table: dict[str, object], clock: FakeClock, age_seconds: float = 5):
        self.table = table
        self.clock = clock
        self.age_seconds = age_seconds
        self.calls = 0
        self.today: dict[str, DailyBar] = {}  # symbol -> the day's bar so far, carried by its quote

    def get_quotes(self, symbols: Sequence[str]):
        self.calls += 1
        out = {}
        for symbol in symbols:
            value = self.table.get(symbol)
            if isinstance(value, Exception):
                out[symbol] = value
            elif value is None:
                out[symbol] = ServiceUnavailable("fakequotes", f"no quote for {symbol}")
            else:
                price, change = value if isinstance(value, tuple) else (value, "0")
                out[symbol] = Quote(
                    symbol, Decimal(price), self.clock.now() - timedelta(seconds=self.age_seconds), "fake", Decimal(change),
                    today=self.today.get(symbol),
                )
        return out


class FakeBars:
    """Daily bars from a table {symbol: [DailyBar, ...]}; records every call (its symbols)."""

    name = "fakebars"

    def __init__(self, table: dict[str, list[DailyBar]] | None = None, fail: Exception | None = None):
        self.table = table or {}
        self.fail = fail
        self.calls: list[list[str]] = []

    def get_daily_bars(self, symbols: Sequence[str], days: int, now: datetime) -> dict[str, list[DailyBar]]:
        self.calls.append(list(symbols))
        if self.fail:
            raise self.fail
        return {s: self.table.get(s, [])[-days:] for s in symbols}


class FakeNews:
    name = "fakenews"

    def __init__(self, items: dict[str, list[str]] | None = None, fail: Exception | None = None):
        self.items = items or {}
        self.fail = fail
        self.calls: list[str] = []

    def covers(self, symbol: str) -> bool:
        return True

    def get_news(self, symbol: str, since: datetime) -> list[NewsItem]:
        self.calls.append(symbol)
        if self.fail:
            raise self.fail
        return [NewsItem(symbol, h, NOW - timedelta(minutes=5 + i), "wire", news_id=f"{symbol}-{i}") for i, h in enumerate(self.items.get(symbol, []))]


class ScriptedAnalyst:
    """Answers from a script {symbol: (action, confidence)} and records what it was shown."""

    model = "scripted"

    def __init__(self, script: dict[str, tuple[str, float]] | None = None, on_analyse: Callable[[], None] | None = None):
        self.script = script or {}
        self.seen: list[list[AnalysisInput]] = []
        self.on_analyse = on_analyse

    def analyse(self, inputs: Sequence[AnalysisInput], timeout_seconds: float) -> list[Decision]:
        self.seen.append(list(inputs))
        if self.on_analyse:
            self.on_analyse()
        out = []
        for item in inputs:
            action, confidence = self.script.get(item.symbol, ("hold", 0.5))
            out.append(Decision(item.symbol, action, confidence, f"scripted {action}", self.model))
        return out


def settings(stocks=("AAPL",), crypto=(), limits=LIMITS, dry_run=False, **kw) -> CycleSettings:
    return CycleSettings(stocks=tuple(stocks), crypto=tuple(crypto), limits=limits, dry_run=dry_run, **kw)


def services(broker=None, quotes=None, analyst=None, news=None, clock=None, lock=None, deadline_seconds=50, bars=None) -> Services:
    clock = clock or FakeClock()
    broker = broker or FakeBroker()
    quotes = quotes or FakeQuotes({"AAPL": "200"}, clock)
    return Services(
        broker=broker,
        stock_quotes=quotes,
        crypto_quotes=quotes,
        news=news,
        analyst=analyst or ScriptedAnalyst(),
        clock=clock,
        lock=lock or FakeLock(),
        deadline=Deadline(deadline_seconds),
        bars=bars,
    )


def position(symbol: str, value: str, qty: str = "10") -> Position:
    value_d = Decimal(value)
    qty_d = Decimal(qty)
    return Position(symbol, qty_d, value_d / qty_d, value_d, value_d / qty_d, Decimal(0))


__all__ = ["MemoryLog", "NOW", "LIMITS"]
