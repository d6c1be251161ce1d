"""Domain types shared by every layer. Plain frozen dataclasses, money as Decimal.

Nothing here imports anything outside the standard library, so the core
(cycle, risk, rules analyst) and the connectors can all depend on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import Literal

Action = Literal["buy", "sell", "hold"]
Side = Literal["buy", "sell"]
AssetClass = Literal["stock", "crypto"]

# An order counts against the limits until it reaches one of these states.
# Listing the *final* states (not the open ones) fails safe: a state Alpaca adds
# later, or one we never met (``pending_review``), counts as open.
FINAL_TRADE_STATUSES = ("filled", "canceled", "expired", "rejected", "replaced", "not_sent", "missing", "dry_run")

CENT = Decimal("0.01")
QTY_STEP = Decimal("0.000000001")  # Alpaca accepts up to 9 decimals


def to_cents(amount: Decimal) -> Decimal:
    """Round a USD amount down to whole cents (never round an order up)."""
    return amount.quantize(CENT, rounding=ROUND_DOWN)


def to_qty(qty: Decimal) -> Decimal:
    """Round a quantity down to Alpaca's 9 decimals."""
    return qty.quantize(QTY_STEP, rounding=ROUND_DOWN)


def is_crypto(symbol: str) -> bool:
    """Crypto symbols are written the Alpaca order way: ``BTC/USD``."""
    return "/" in symbol


def normalize_symbol(symbol: str) -> str:
    """The one place where Alpaca's position symbols (``BTCUSD``) become order symbols (``BTC/USD``).

    Stock symbols pass through unchanged. A crypto pair without a slash is
    recognised by its quote currency suffix.
    """
    symbol = symbol.strip().upper()
    if "/" in symbol:
        return symbol
    for quote_ccy in ("USDT", "USDC", "USD", "BTC"):
        if symbol.endswith(quote_ccy) and len(symbol) > len(quote_ccy) + 1:
            return f"{symbol[: -len(quote_ccy)]}/{quote_ccy}"
    return symbol


@dataclass(frozen=True)
class DailyBar:
    """One day's OHLCV. ``day`` is the session date (``YYYY-MM-DD``) the source gives the bar."""

    day: str
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


@dataclass(frozen=True)
class Quote:
    """A price and the time the source says it was true (not when we fetched it)."""

    symbol: str
    price: Decimal
    as_of: datetime
    source: str  # "sim", "finnhub", "coingecko", "alpaca", or "cache" when re-used from the database
    change_percent: Decimal | None = None  # vs the previous close (stocks) or 24 h (crypto)
    previous_close: Decimal | None = None
    today: DailyBar | None = None  # the current day's bar so far, when the source gives one (volume!)

    def age_seconds(self, now: datetime) -> float:
        return max(0.0, (now - self.as_of).total_seconds())


@dataclass(frozen=True)
class NewsItem:
    symbol: str
    headline: str
    published_at: datetime
    source: str = ""
    summary: str = ""
    url: str = ""
    news_id: str = ""  # stable id from the source, or derived from url/headline


@dataclass(frozen=True)
class Account:
    equity: Decimal
    last_equity: Decimal  # equity at the previous close: the base of the daily loss limit
    cash: Decimal
    buying_power: Decimal
    status: str = "ACTIVE"
    trading_blocked: bool = False
    account_blocked: bool = False


@dataclass(frozen=True)
class Position:
    symbol: str
    qty: Decimal
    avg_entry_price: Decimal
    market_value: Decimal
    current_price: Decimal
    unrealized_pl: Decimal


@dataclass(frozen=True)
class MarketClock:
    is_open: bool
    next_open: str | None = None
    next_close: str | None = None


@dataclass(frozen=True)
class RiskLimits:
    max_position_size_percent: Decimal
    max_total_exposure_percent: Decimal
    max_positions_count: int
    daily_loss_limit_percent: Decimal
    min_confidence: float
    min_order_percent: Decimal = Decimal(1)  # of equity: a smaller buy is `below_minimum`
    # How a buy is sized (risk.py): "fixed" buys all the room the limits leave; "volatility"
    # buys so that a move of one daily ATR(14) costs risk_per_trade_percent of equity.
    sizing: str = "fixed"
    risk_per_trade_percent: Decimal = Decimal("0.25")
    scale_by_confidence: bool = False  # volatility sizing: half the risk at min_confidence, all of it at 1


@dataclass(frozen=True)
class ExitRules:
    """Protective exits, in percent; None is off. See ``exits.py``."""

    stop_loss_percent: Decimal | None = Decimal(8)
    take_profit_percent: Decimal | None = None
    trailing_stop_percent: Decimal | None = None


@dataclass(frozen=True)
class Indicators:
    """Technical indicators on the daily bars (TA-Lib), today's bar included.

    Every value is rounded (see ``indicators.py``) so that the prompt and the
    audit trail show the same numbers; None where the history is too short.
    """

    bars_count: int  # completed daily bars used (today's not counted)
    sma_20: Decimal | None = None
    sma_50: Decimal | None = None
    rsi_14: Decimal | None = None
    atr_14: Decimal | None = None
    avg_volume_20: Decimal | None = None  # mean volume of the 20 completed days before today
    volume_today: Decimal | None = None
    volume_ratio: Decimal | None = None  # today's volume so far / avg_volume_20
    high_20: Decimal | None = None  # highest high of the 20 completed days before today
    low_20: Decimal | None = None
    from_high_20_percent: Decimal | None = None  # price vs high_20 (negative: below it)
    from_low_20_percent: Decimal | None = None  # price vs low_20 (positive: above it)


@dataclass(frozen=True)
class PricePoint:
    as_of: datetime
    price: Decimal


@dataclass(frozen=True)
class PortfolioView:
    """The account as the analyst is shown it: the same numbers the risk step uses
    (open buy orders count as held)."""

    equity: Decimal
    cash: Decimal
    exposure_usd: Decimal
    exposure_percent: Decimal  # of equity
    exposure_room_usd: Decimal  # left under risk.max_total_exposure_percent
    positions_count: int
    positions_room: int  # left under risk.max_positions_count
    day_change_percent: Decimal | None  # equity vs the previous close
    daily_loss_room_percent: Decimal | None  # how much further it may fall before the kill switch trips


@dataclass(frozen=True)
class MarketContext:
    """What a careful trader looks at besides the price: daily bars and their
    indicators, the recent prices with their times, the portfolio and its room."""

    indicators: Indicators | None
    unavailable_reason: str = ""  # why ``indicators`` is None
    first_bar_day: str | None = None
    last_bar_day: str | None = None  # the newest completed bar
    today: DailyBar | None = None
    recent: tuple[PricePoint, ...] = ()  # oldest first, from earlier cycles
    portfolio: PortfolioView | None = None
    position_room_usd: Decimal | None = None  # left under risk.max_position_size_percent for this symbol


@dataclass(frozen=True)
class AnalysisInput:
    """Everything the analyst may know about one symbol. The analyst never sees secrets."""

    symbol: str
    quote: Quote
    quote_age_seconds: float
    position: Position | None
    headlines: tuple[NewsItem, ...]
    recent_prices: tuple[Decimal, ...]  # oldest first, from earlier cycles (may be empty)
    limits: RiskLimits
    # (outcome, why) when this symbol may only be sold or held: no fresh quote (the
    # broker's position price stands in), or held but no longer in the universe.
    sell_only: tuple[str, str] | None = None
    context: MarketContext | None = None  # bars, indicators, portfolio (None: not gathered)


@dataclass(frozen=True)
class Decision:
    """One analyst verdict for one symbol, with what is needed to audit it later.

    ``failure`` is None for a valid decision; otherwise it is the outcome the
    cycle records (``ai_unavailable`` or ``ai_invalid``) and ``action`` is hold.
    ``exit`` names a protective exit the tool decided on its own
    (``stop_loss``, ``take_profit``, ``trailing_stop``, or ``flatten``): the
    analyst was not asked, and the outcome of the sell is that word.
    """

    symbol: str
    action: Action
    confidence: float
    reasoning: str
    model: str
    failure: str | None = None
    latency_ms: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    raw_reply: str | None = None
    exit: str | None = None
    # Who decided and on what, for the scorecard and replay: the hash of the prompt
    # template (None for an analyst without a prompt), the exact chat messages sent,
    # and the shadow analysts' decisions on the same messages (recorded, never traded).
    prompt_hash: str | None = None
    # Provenance: the model the server says answered (``model`` in its reply), the
    # ``system_fingerprint`` it sent, the temperature and seed the request carried (None:
    # not sent), and the model's declared training cutoff (an ISO date; None: undeclared).
    served_model: str | None = None
    system_fingerprint: str | None = None
    temperature: float | None = None
    seed: int | None = None
    training_cutoff: str | None = None
    messages: tuple[dict, ...] | None = field(default=None, compare=False, repr=False)
    shadows: tuple["Decision", ...] = field(default=(), compare=False, repr=False)

    @classmethod
    def held(cls, symbol: str, failure: str, reasoning: str, model: str, **audit) -> "Decision":
        return cls(symbol, "hold", 0.0, reasoning, model, failure=failure, **audit)


def is_contaminated(moment: str, training_cutoff: str | None) -> bool:
    """Whether a decision about ``moment`` (ISO time) may know its future: the moment
    falls on or before the model's training cutoff (ISO date), so what came next may
    have been in its training data. A replay or backtest of such a moment is no test."""
    return training_cutoff is not None and moment[:10] <= training_cutoff[:10]


def analyst_identity(model: str, prompt_hash: str | None) -> str:
    """How ``score`` names an analyst: the model, and the hash of its prompt
    template when it has one (``gpt-4o-mini#1a2b3c4d``)."""
    return f"{model}#{prompt_hash}" if prompt_hash else model


STOP_ORDER_TYPES = ("stop", "stop_limit")  # the sell stops held at the broker (cycle/stops.py)


@dataclass(frozen=True)
class OrderIntent:
    """An order the cycle decided to send: a market order the risk check approved
    (exactly one of notional_usd / qty is set), or a sell stop that protects a
    position (``order_type`` ``stop`` or ``stop_limit``, by ``qty``, with its
    ``stop_price``, a ``limit_price`` for a stop-limit, and its ``time_in_force``)."""

    symbol: str
    side: Side
    client_order_id: str
    price: Decimal  # the quote the order was sized at (a stop: its stop price)
    notional_usd: Decimal | None = None
    qty: Decimal | None = None
    order_type: str = "market"
    stop_price: Decimal | None = None
    limit_price: Decimal | None = None
    time_in_force: str | None = None  # None: the broker's usual one for the asset (day for stocks, gtc for crypto)

    @property
    def is_stop(self) -> bool:
        return self.order_type in STOP_ORDER_TYPES

    @property
    def asset_class(self) -> AssetClass:
        return "crypto" if is_crypto(self.symbol) else "stock"

    @property
    def estimated_value(self) -> Decimal:
        return self.notional_usd if self.notional_usd is not None else (self.qty or Decimal(0)) * self.price


@dataclass(frozen=True)
class OrderResult:
    """What the broker says about an order. ``status`` uses Alpaca's order states."""

    client_order_id: str
    broker_order_id: str | None
    status: str
    symbol: str = ""
    side: str = ""
    filled_qty: Decimal | None = None
    filled_avg_price: Decimal | None = None
    qty: Decimal | None = None  # ordered quantity (None for a notional order)
    submitted_at: str | None = None
    filled_at: str | None = None
    message: str = ""
    order_type: str = ""  # "market", "stop", "stop_limit", ... ("" when the broker did not say)
    stop_price: Decimal | None = None
    limit_price: Decimal | None = None
    time_in_force: str = ""
    notional: Decimal | None = None  # ordered USD of a notional order (None for a qty order)


@dataclass
class FetchResult:
    """The market as one cycle saw it. Missing pieces are named in ``failures``."""

    account: Account
    clock: MarketClock
    positions: dict[str, Position]
    fetched_at: datetime  # when the broker answered: the age of its position prices
    quotes: dict[str, Quote] = field(default_factory=dict)
    news: dict[str, tuple[NewsItem, ...]] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)  # source or symbol -> why


class Deadline:
    """A point in monotonic time that no retry, wait or order may pass."""

    def __init__(self, seconds: float, monotonic=None):
        import time

        self._monotonic = monotonic or time.monotonic
        self.expires_at = self._monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self.expires_at - self._monotonic())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0
