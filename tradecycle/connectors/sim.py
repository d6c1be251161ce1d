"""The offline world a new user meets first: a market that moves and a paper
broker that fills, both kept in the same SQLite database.

Market: each symbol follows a seeded random walk advanced by the clock, so
two runs a minute apart see different prices, and the same seed and the same
clock give the same walk. Its scale is a real market's (README, "The
simulator"): one day's move has a standard deviation of 2 % for a stock and
3.5 % for a coin, in the minute prices and in the daily bars alike. Stocks
follow the New York Stock Exchange's calendar (``sim_calendar.py``): they
move only in a session, their quote outside one is the last session's close
(dated then), and the broker's clock says when the market is open; crypto
trades around the clock. A symbol first seen opens up to one day's move away
from its previous close, so the day's change means something from the first
cycle. Daily OHLCV history is a seeded walk back from the previous close
over the sessions before today (every day for crypto), and the day's bar so
far carries its open, high, low and a volume that grows through the session,
so the indicators work offline too.

Broker: fills market orders at once at the simulated price, keeps cash and
positions, refuses what cash cannot pay for (like Alpaca's 403), refuses a
re-used client order id (like Alpaca's 422), and reports ``last_equity`` as
the equity at the start of the UTC day.
"""

from __future__ import annotations

import hashlib
import math
import random
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tradecycle.connectors import sim_calendar as calendar
from tradecycle.infra.errors import DuplicateOrder, OrderRejected
from tradecycle.models import (
    Account,
    DailyBar,
    MarketClock,
    NewsItem,
    OrderIntent,
    OrderResult,
    Position,
    Quote,
    is_crypto,
    to_qty,
)
from tradecycle.ports import Clock
from tradecycle.store import SimLedger, iso
from tradecycle.store.sim import SimPrice
from tradecycle.connectors.sim_stops import SimStopsMixin

BASE_PRICES = {
    "AAPL": "190",
    "MSFT": "420",
    "NVDA": "130",
    "GOOGL": "170",
    "AMZN": "185",
    "META": "560",
    "TSLA": "240",
    "BTC/USD": "67000",
    "ETH/USD": "3500",
    "SOL/USD": "150",
}
SECONDS_PER_DAY = 86_400
# One day's move, its standard deviation: large US stocks move about 1.5-2.5 % a day,
# bitcoin and ether about 3-4 % (README, "The simulator").
STOCK_DAILY_VOLATILITY = 0.02
CRYPTO_DAILY_VOLATILITY = 0.035
# Minute prices walk at the same scale, per square root of a second: a stock's day
# is its 6.5-hour session (it does not move outside one), a coin's is 24 hours.
STOCK_VOLATILITY = STOCK_DAILY_VOLATILITY / math.sqrt(calendar.SESSION_SECONDS)
NIGHT_SHARE = 0.25  # of a daily bar's standard deviation, between one close and the next open


def _rng(*parts: object) -> random.Random:
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _base_price(symbol: str) -> Decimal:
    if symbol in BASE_PRICES:
        return Decimal(BASE_PRICES[symbol])
    return Decimal(_rng("base", symbol).randint(20, 500))


def _base_volume(seed: int, symbol: str) -> int:
    rng = _rng(seed, symbol, "volume")
    return rng.randint(2_000, 40_000) if is_crypto(symbol) else rng.randint(5, 80) * 1_000_000


def _day_volume(seed: int, symbol: str, day: str) -> int:
    """A whole day's volume: the symbol's typical volume, busier on some days than others."""
    return int(_base_volume(seed, symbol) * _rng(seed, symbol, "day-volume", day).lognormvariate(0.0, 0.35))


def _cents(value: float | Decimal) -> Decimal:
    return max(Decimal(str(value)).quantize(Decimal("0.01")), Decimal("0.01"))


class SimMarket:
    """Quotes and headlines for any symbol. Implements QuoteSource and NewsSource."""

    name = "sim"

    def __init__(self, ledger: SimLedger, clock: Clock, seed: int = 42, market_hours: str = "exchange"):
        self.ledger = ledger
        self.clock = clock
        self.seed = seed
        self.market_hours = market_hours  # "exchange": stocks keep NYSE sessions; "always": around the clock

    def on_exchange(self, symbol: str) -> bool:
        """Whether ``symbol`` trades only in the exchange's sessions (a stock, unless market_hours = "always")."""
        return not is_crypto(symbol) and self.market_hours == "exchange"

    def day_of(self, symbol: str, now: datetime) -> str:
        """The trading day ``now`` belongs to: the latest session for a stock, the UTC date otherwise."""
        return (calendar.last_session(now) if self.on_exchange(symbol) else now.date()).isoformat()

    def get_quotes(self, symbols: Sequence[str]) -> dict[str, Quote | Exception]:
        now = self.clock.now()
        return {symbol: self.quote(symbol, now) for symbol in symbols}

    def quote(self, symbol: str, now: datetime) -> Quote:
        state = self._advance(symbol, now)
        change = (state.price / state.previous_close - 1) * 100
        return Quote(
            symbol=symbol,
            price=state.price,
            as_of=calendar.last_trade_time(now) if self.on_exchange(symbol) else now,
            source="sim",
            change_percent=change.quantize(Decimal("0.01")),
            previous_close=state.previous_close,
            today=self._today_bar(state, now),
        )

    def _today_bar(self, state: SimPrice, now: datetime) -> DailyBar:
        """The day's bar so far; its volume is the day's share of the session (a coin's: of the UTC day) that has passed."""
        if self.on_exchange(state.symbol):
            opens, _ = calendar.session_bounds(calendar.last_session(now))
            elapsed = min(calendar.open_seconds_between(opens, now) / calendar.SESSION_SECONDS, 1.0)
        else:
            midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
            elapsed = (now - midnight).total_seconds() / SECONDS_PER_DAY
        volume = int(_day_volume(self.seed, state.symbol, state.day) * elapsed)
        day_open = state.day_open or state.previous_close
        high = max(state.day_high or state.price, state.price, day_open)
        low = min(state.day_low or state.price, state.price, day_open)
        return DailyBar(state.day, day_open, high, low, state.price, Decimal(volume))

    def get_daily_bars(self, symbols: Sequence[str], days: int, now: datetime) -> dict[str, list[DailyBar]]:
        """``days`` completed daily bars per symbol, ending the day before ``now``,
        walked back from the previous close: deterministic per seed, symbol and day."""
        return {symbol: self.daily_history(symbol, days, now) for symbol in symbols}

    def daily_history(self, symbol: str, days: int, now: datetime) -> list[DailyBar]:
        """Completed bars before today: every UTC day for a coin, the sessions before the
        latest one for a stock. Close to close, a bar moves ``*_DAILY_VOLATILITY``.
        They walk back from the previous close as of ``now`` (the walk is advanced to it
        first): the cycle fetches bars and quotes at once, so reading the stored close
        as it stands would give a day's first bars from either day's close, by thread timing."""
        close = self._advance(symbol, now).previous_close
        daily = CRYPTO_DAILY_VOLATILITY if is_crypto(symbol) else STOCK_DAILY_VOLATILITY
        sigma = daily * math.sqrt(1 - NIGHT_SHARE**2)  # the session's share; the night's is NIGHT_SHARE
        if self.on_exchange(symbol):
            dates = calendar.sessions_before(calendar.last_session(now), days)
        else:
            dates = [now.date() - timedelta(days=back) for back in range(1, days + 1)]
        bars = []
        for back, date in enumerate(dates, start=1):
            day = date.isoformat()
            # Seeded by how many days back, not by date: a fresh simulator shows the same
            # history (so the same first decisions) whatever the day it is started.
            rng = _rng(self.seed, symbol, "bar", back)
            move = rng.gauss(0.0, 1.0)
            open_ = _cents(float(close) * math.exp(-sigma * move))
            high = _cents(float(max(open_, close)) * (1 + abs(rng.gauss(0.0, 1.0)) * sigma / 2))
            low = _cents(float(min(open_, close)) * (1 - abs(rng.gauss(0.0, 1.0)) * sigma / 2))
            volume = int(_day_volume(self.seed, symbol, str(back)) * (1 + abs(move) / 3))
            bars.append(DailyBar(day, open_, high, low, close, Decimal(volume)))
            close = _cents(float(open_) * math.exp(rng.gauss(0.0, daily * NIGHT_SHARE)))  # the night before
        return bars[::-1]

    def _advance(self, symbol: str, now: datetime) -> SimPrice:
        today = self.day_of(symbol, now)
        state = self.ledger.price_state(symbol)
        if state is None:
            base = _base_price(symbol)
            daily = CRYPTO_DAILY_VOLATILITY if is_crypto(symbol) else STOCK_DAILY_VOLATILITY
            gap = _rng(self.seed, symbol, "open").uniform(-daily, daily)
            price = (base * Decimal(str(1 + gap))).quantize(Decimal("0.01"))
            state = SimPrice(symbol, price, base, today, iso(now), price, price, price)
        else:
            # Whole seconds: every read within one second sees the same price.
            since = datetime.fromtimestamp(int(datetime.fromisoformat(state.updated_at.replace("Z", "+00:00")).timestamp()), UTC)
            until = datetime.fromtimestamp(int(now.timestamp()), UTC)
            if until <= since:
                return state
            if self.on_exchange(symbol):  # a stock moves only while its exchange is open
                elapsed, sigma, most = calendar.open_seconds_between(since, until), STOCK_VOLATILITY, calendar.SESSION_SECONDS
            else:  # around the clock: the same daily scale spread over 24 hours
                daily = CRYPTO_DAILY_VOLATILITY if is_crypto(symbol) else STOCK_DAILY_VOLATILITY
                elapsed, sigma, most = (until - since).total_seconds(), daily / math.sqrt(SECONDS_PER_DAY), SECONDS_PER_DAY
            if elapsed <= 0 and state.day == today:
                return state
            z = _rng(self.seed, symbol, int(now.timestamp())).gauss(0.0, 1.0)
            factor = math.exp(sigma * math.sqrt(min(elapsed, most)) * z)
            price = max((state.price * Decimal(str(factor))).quantize(Decimal("0.01")), Decimal("0.01"))
            if state.day == today:
                previous_close, day_open = state.previous_close, state.day_open or state.previous_close
                high, low = max(state.day_high or price, price), min(state.day_low or price, price)
            else:  # a new day opens where the last one closed
                previous_close = day_open = state.price
                high, low = max(day_open, price), min(day_open, price)
            state = SimPrice(symbol, price, previous_close, today, iso(now), day_open, high, low)
        self.ledger.save_price_state(state)
        return state

    def covers(self, symbol: str) -> bool:
        return True

    def get_news(self, symbol: str, since: datetime) -> list[NewsItem]:
        """One or two headlines an hour per symbol, worded after the day's move."""
        now = self.clock.now()
        quote = self.quote(symbol, now)
        hour = now.replace(minute=0, second=0, microsecond=0)
        items = []
        for hours_back in range(0, 3):
            start = hour - timedelta(hours=hours_back)
            rng = _rng(self.seed, symbol, "news", start.isoformat())
            published = start + timedelta(minutes=rng.randint(0, 59))
            if published > now or published < since:
                continue
            templates = _UP if (quote.change_percent or 0) > 0 else _DOWN
            if rng.random() < 0.4:
                templates = _NEUTRAL
            headline = rng.choice(templates).format(name=symbol.split("/")[0])
            items.append(
                NewsItem(symbol, headline, published, source="Simulated Wire", news_id=f"sim-{symbol}-{start:%Y%m%d%H}")
            )
        return sorted(items, key=lambda item: item.published_at, reverse=True)


_UP = [
    "{name} climbs as analysts raise price targets",
    "{name} rallies on strong demand outlook",
    "Buyers step in as {name} extends gains",
]
_DOWN = [
    "{name} slides as investors take profits",
    "{name} falls after cautious guidance",
    "Sellers weigh on {name} in choppy trade",
]
_NEUTRAL = [
    "{name} trades flat ahead of sector data",
    "Options traders eye {name} into month end",
]


class SimBroker(SimStopsMixin):
    """A paper broker that fills market orders at the simulated price, and holds
    sell stops until the price reaches them (sim_stops.py). Implements Broker."""

    name = "sim"

    def __init__(self, ledger: SimLedger, market: SimMarket, clock: Clock, starting_cash: Decimal):
        self.ledger = ledger
        self.market = market
        self.clock = clock
        self.starting_cash = starting_cash

    def get_account(self) -> Account:
        now = self.clock.now()
        today = now.date().isoformat()
        self.ledger.open_account(self.starting_cash, today)
        book = self.ledger.account()
        cash = Decimal(book["cash"])
        equity = cash + sum((p.market_value for p in self.get_positions()), Decimal(0))
        if book["day"] != today:
            self.ledger.start_day(today, equity)
            book = self.ledger.account()
        return Account(
            equity=equity,
            last_equity=Decimal(book["day_start_equity"]),
            cash=cash,
            buying_power=cash,
        )

    def get_clock(self) -> MarketClock:
        """The stock exchange's clock (sim_calendar.py); crypto trades whatever it says."""
        now = self.clock.now()
        if self.market.market_hours != "exchange":
            return MarketClock(is_open=True)
        return MarketClock(is_open=calendar.is_open(now), next_open=iso(calendar.next_open(now)),
                           next_close=iso(calendar.next_close(now)))

    def get_positions(self) -> list[Position]:
        self._trigger_stops()
        now = self.clock.now()
        positions = []
        for symbol, (qty, avg) in self.ledger.holdings().items():
            price = self.market.quote(symbol, now).price
            value = (qty * price).quantize(Decimal("0.01"))
            positions.append(
                Position(symbol, qty, avg, value, price, (value - qty * avg).quantize(Decimal("0.01")))
            )
        return positions

    def submit_order(self, intent: OrderIntent) -> OrderResult:
        if intent.is_stop:
            return self._submit_stop(intent)
        if self.ledger.order(client_order_id=intent.client_order_id):
            raise DuplicateOrder("sim", "client_order_id must be unique", 422)
        self.get_account()  # make sure the books are open
        now = self.clock.now()
        price = self.market.quote(intent.symbol, now).price
        holdings = self.ledger.holdings()
        held_qty, held_avg = holdings.get(intent.symbol, (Decimal(0), Decimal(0)))
        if intent.side == "buy":
            qty = to_qty(intent.notional_usd / price) if intent.notional_usd is not None else intent.qty
            cost = (qty * price).quantize(Decimal("0.01"))
            cash = Decimal(self.ledger.account()["cash"])
            if qty <= 0:
                raise OrderRejected("sim", "order quantity is zero", 422)
            if cost > cash:
                raise OrderRejected("sim", f"insufficient buying power (need {cost}, have {cash})", 403)
            new_qty = held_qty + qty
            holding = (new_qty, ((held_qty * held_avg + qty * price) / new_qty).quantize(Decimal("0.0001")))
            cash_delta = -cost
        else:
            qty = intent.qty if intent.qty is not None else to_qty(intent.notional_usd / price)
            available = held_qty - self.held_for_orders(intent.symbol)  # less what its stop holds
            if qty <= 0 or qty > available:
                raise OrderRejected("sim", f"insufficient qty available for order (requested: {qty}, available: {available})", 403)
            holding = (held_qty - qty, held_avg)
            cash_delta = (qty * price).quantize(Decimal("0.01"))
        order = {
            "id": str(uuid.uuid4()),
            "client_order_id": intent.client_order_id,
            "symbol": intent.symbol,
            "side": intent.side,
            "qty": str(qty),
            "notional": str(intent.notional_usd) if intent.notional_usd is not None else None,
            "filled_qty": str(qty),
            "filled_avg_price": str(price),
            "status": "filled",
            "submitted_at": iso(now),
            "filled_at": iso(now),
            "message": "",
        }
        self.ledger.record_fill(order, cash_delta, holding)
        return _result(order)

    def get_order_by_client_id(self, client_order_id: str) -> OrderResult | None:
        self._trigger_stops()
        order = self.ledger.order(client_order_id=client_order_id)
        return _result(order) if order else None

    def get_order(self, broker_order_id: str) -> OrderResult:
        self._trigger_stops()
        order = self.ledger.order(order_id=broker_order_id)
        if order is None:
            raise OrderRejected("sim", f"order {broker_order_id} not found", 404)
        return _result(order)

    def load_order_minimums(self, symbols) -> None:
        """Nothing to read ahead: the minimum is $1 for every symbol."""

    def min_order_notional(self, symbol: str, price: Decimal) -> Decimal:
        return Decimal("1")

    # open_orders, cancel_order and replace_order: the stops (sim_stops.py); every market order fills at once.

    def recent_orders(self, after: datetime) -> list[OrderResult]:
        """The newest 500 orders submitted after ``after``, as Alpaca's ``GET /v2/orders?status=all&after=...``."""
        return [_result(order) for order in self.ledger.recent_orders(iso(after), 500)]

    def _result_of(self, order: dict) -> OrderResult:
        return _result(order)


def _result(order: dict) -> OrderResult:
    return OrderResult(
        client_order_id=order["client_order_id"],
        broker_order_id=order["id"],
        status=order["status"],
        symbol=order["symbol"],
        side=order["side"],
        filled_qty=Decimal(order["filled_qty"]) if order["filled_qty"] else None,
        filled_avg_price=Decimal(order["filled_avg_price"]) if order["filled_avg_price"] else None,
        qty=Decimal(order["qty"]) if order["qty"] else None,
        submitted_at=order["submitted_at"],
        filled_at=order["filled_at"],
        message=order["message"] or "",
        order_type=order.get("order_type") or "market",
        stop_price=Decimal(order["stop_price"]) if order.get("stop_price") else None,
        limit_price=Decimal(order["limit_price"]) if order.get("limit_price") else None,
        time_in_force=order.get("time_in_force") or "",
        notional=Decimal(order["notional"]) if order["notional"] else None,
    )
