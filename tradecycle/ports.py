"""The small Protocols the cycle talks to. The simulator, the live connectors
and the tests' fakes all implement these; ``wiring.build_services`` picks the
real ones from the config."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from tradecycle.models import Deadline, Account, AnalysisInput, DailyBar, Decision, MarketClock, NewsItem, OrderIntent, OrderResult, Position, Quote


class QuoteSource(Protocol):
    name: str

    def get_quotes(self, symbols: Sequence[str]) -> dict[str, Quote | Exception]:
        """One entry per requested symbol: a Quote, or the error that kept it
        from us (a missing/unknown symbol is a ``BadResponse``). May raise a
        ``ServiceError`` when the whole source is down."""


class BarSource(Protocol):
    name: str

    def get_daily_bars(self, symbols: Sequence[str], days: int, now: datetime) -> dict[str, list[DailyBar]]:
        """The last ``days`` daily bars of every symbol, oldest first (an empty
        list for a symbol the source has none of), in as few calls as it can:
        one per asset class. Raises ``ServiceError`` when the source fails."""


class NewsSource(Protocol):
    name: str

    def covers(self, symbol: str) -> bool:
        """Whether this source has headlines for the symbol (no call is made otherwise)."""

    def get_news(self, symbol: str, since: datetime) -> list[NewsItem]:
        """Headlines for one symbol published since ``since``, newest first.
        Raises ``ServiceError`` on failure; the cycle then goes on without news."""


class Broker(Protocol):
    name: str

    def get_account(self) -> Account: ...

    def get_clock(self) -> MarketClock: ...

    def get_positions(self) -> list[Position]:
        """Positions with symbols normalized (``BTC/USD``, never ``BTCUSD``)."""

    def submit_order(self, intent: OrderIntent) -> OrderResult:
        """Send one order (market, or a sell stop: ``intent.order_type``). Raises ``OrderRejected`` (``DuplicateOrder`` for
        a re-used client order id), ``OrderUncertain`` when it may have arrived,
        ``ServiceUnavailable`` when it surely did not."""

    def get_order_by_client_id(self, client_order_id: str) -> OrderResult | None:
        """The order with this client order id, or None if the broker never saw it."""

    def get_order(self, broker_order_id: str) -> OrderResult:
        """The broker's current view of an order it accepted earlier (for sync)."""

    def load_order_minimums(self, symbols: Sequence[str]) -> None:
        """Read ahead what ``min_order_notional`` needs (part of the fetch round
        trip, so sizing later costs none). Never raises."""

    def min_order_notional(self, symbol: str, price: Decimal) -> Decimal:
        """The smallest order value in USD the broker accepts for this symbol at this price."""

    def open_orders(self) -> list[OrderResult]:
        """Every open order of the account, ours or not (for the kill switch's cancels)."""

    def cancel_order(self, broker_order_id: str) -> None:
        """Ask the broker to cancel an open order. Raises ``OrderRejected`` when it
        can no longer be canceled, ``ServiceError`` otherwise."""

    def replace_order(self, broker_order_id: str, intent: OrderIntent) -> OrderResult:
        """Replace an open stop order (``PATCH``) by ``intent``: its qty, stop and limit
        prices, time in force and new ``client_order_id``. Returns the new order (a new
        id; the old one ends ``replaced``). Raises ``OrderRejected`` (422) when the old
        order can no longer be replaced (filled, canceled), ``OrderUncertain`` when the
        replacement may have happened, ``OrderNotReceived`` when it surely did not and
        ``ServiceUnavailable`` when nothing was sent."""


class Analyst(Protocol):
    """``model`` names it; an analyst with a prompt template also has ``prompt_hash``
    and sets ``Decision.prompt_hash`` and ``Decision.messages`` (the scorecard and
    ``replay`` read them; an analyst without them is scored by its model name)."""

    model: str

    def analyse(self, inputs: Sequence[AnalysisInput], timeout_seconds: float) -> list[Decision]:
        """At most one decision per input symbol, within ``timeout_seconds``.
        Never raises for a service or reply problem: such symbols come back as
        ``Decision.held(...)`` with the failure named. Missing symbols hold."""


class RunLock(Protocol):
    def acquire(self) -> bool:
        """Take the lock without waiting; False if another cycle holds it."""

    def release(self) -> None: ...


class Clock(Protocol):
    def now(self) -> datetime:
        """Timezone-aware UTC wall time."""


class Heartbeat(Protocol):
    name: str

    def ping(self, failed: bool, body: str, timeout_seconds: float = 2.0) -> int:
        """Tell a cron monitor a cycle ran (``failed``: it aborted), ``body`` its
        summary line; the HTTP status. Raises ``ServiceUnavailable``, whose
        message names no URL, when no 2xx came within ``timeout_seconds``."""


class AlertSender(Protocol):
    name: str

    def send(self, title: str, body: str, severity: str, timeout_seconds: float) -> None:
        """Deliver one alert to every configured channel within ``timeout_seconds``
        (``severity``: info, success, warning or failure). Raises ``AlertFailed``,
        whose message names no URL or token, when a channel refused it, could
        not be reached, or did not answer in time."""


@dataclass
class Services:
    """Everything a cycle needs, built by ``wiring.build_services`` or by a test."""

    broker: Broker
    stock_quotes: QuoteSource
    crypto_quotes: QuoteSource
    news: NewsSource | None
    analyst: Analyst
    clock: Clock
    lock: RunLock
    deadline: Deadline  # the cycle's budget (cycle.max_cycle_seconds), shared with the HTTP layer
    bars: BarSource | None = None  # daily bars for the indicators (None: the analyst goes without)
    alerts: AlertSender | None = None  # None: no TRADECYCLE_ALERT_URLS; sent after the cycle (alerts.py)
    heartbeat: Heartbeat | None = None  # None: no TRADECYCLE_HEARTBEAT_URL; pinged after the cycle


class EventLog(Protocol):
    def __call__(self, event: str, level: str = "info", **fields) -> None:
        """Record one event (the JSON-lines log adds the time and the bound context)."""

    def bind(self, **context) -> None:
        """Add fields (the cycle id) to every later event, from any component."""
