"""The backtest's paper broker: cash and positions as the simulator keeps them,
fills from history, never from the bar the decision saw.

- A market order sent at ``t`` fills at the **open of the next bar** of its
  symbol (the first bar that opens at or after ``t``), moved
  ``backtest.slippage_bps`` against the order (a buy pays more, a sell gets
  less), and pays ``backtest.fee_bps`` of its value from cash.
- A stop order triggers when a bar trades through its stop: a sell stop when the
  bar's low reaches it, filling at the stop, or at the bar's open when the bar
  opened past it (a gap); then the same slippage and fee. A stop-limit fills
  only at its limit or better. Stops are replaced (a new order, the old one
  ``replaced``) and canceled as at Alpaca; a stock's ``day`` stop expires at the
  close of its session (``risk.broker_held_stops``, cycle/stops.py).
- The broker reads history through ``pit.py`` like everyone else: a market
  order needs only the next bar's open (known once that bar has opened), a
  stop the bars' lows and highs (known once they have closed). ``advance``
  runs before each cycle and books what became known since the last one, so
  the cycle at ``t`` reads the fills as any live cycle does (``new`` → ``filled``).
- Buying power is cash less what open buys may still cost; a buy beyond it is
  refused like Alpaca's 403, a sell beyond the free quantity too.

The books are kept in memory and saved by the runner after every cycle
(``snapshot`` / ``restore``), in the same transaction as the run's progress.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from decimal import Decimal

from tradecycle.backtest.pit import PointInTime
from tradecycle.infra.errors import DuplicateOrder, OrderRejected
from tradecycle.infra.times import iso
from tradecycle.models import CENT, Account, MarketClock, OrderIntent, OrderResult, Position, is_crypto, to_qty

BPS = Decimal(10_000)
PRICE_STEP = Decimal("0.0001")
NAME = "backtest"


class BacktestBroker:
    name = NAME

    def __init__(self, pit: PointInTime, starting_cash: Decimal, slippage_bps: Decimal, fee_bps: Decimal):
        self.pit = pit
        self.slippage = slippage_bps / BPS
        self.fee_rate = fee_bps / BPS
        self.cash = Decimal(starting_cash)
        self.holdings: dict[str, list[Decimal]] = {}  # symbol -> [qty, avg entry price]
        self.orders: dict[str, dict] = {}
        self.by_client: dict[str, str] = {}
        self.day: str | None = None
        self.last_equity = Decimal(starting_cash)  # equity at the end of the previous day
        self.equity_seen = Decimal(starting_cash)  # equity at the last cycle
        self.fees_usd = Decimal(0)
        self.slippage_usd = Decimal(0)
        self.new_fees: list[tuple[str, str]] = []  # (client order id, fee) booked since the last save
        self._ids = itertools.count(1)

    # -- the runner's side -----------------------------------------------------

    def advance(self) -> None:
        """Book what the bars closed by now did to the open orders, oldest first; roll the day."""
        today = self.pit.t.date().isoformat()
        if self.day is not None and today != self.day:
            self.last_equity = self.equity_seen
        self.day = today
        for order in [o for o in self.orders.values() if o["status"] == "new"]:
            seen = self.pit.opens_since if order["type"] == "market" else self.pit.bars_since
            for bar in seen(order["symbol"], order["after"]):
                if order["expires"] is not None and bar.opens_at >= order["expires"]:
                    break
                order["after"] = bar.closes_at  # each bar is looked at once
                price = self._trigger(order, bar)
                if price is not None:
                    self._fill(order, price, bar.opens_at)
                    break
            if order["status"] == "new" and order["expires"] is not None and self.pit.t >= order["expires"]:
                order["status"] = "expired"

    def take_fees(self) -> list[tuple[str, str]]:
        fees, self.new_fees = self.new_fees, []
        return fees

    def snapshot(self) -> dict:
        return {
            "cash": str(self.cash), "day": self.day, "last_equity": str(self.last_equity),
            "equity_seen": str(self.equity_seen), "fees_usd": str(self.fees_usd), "slippage_usd": str(self.slippage_usd),
            "holdings": {s: [str(q), str(a)] for s, (q, a) in self.holdings.items()},
            "orders": [_stored(o) for o in self.orders.values() if o["status"] == "new"],
            "next_id": next(self._ids),
        }

    def restore(self, books: dict) -> None:
        self.cash, self.day = Decimal(books["cash"]), books["day"]
        self.last_equity, self.equity_seen = Decimal(books["last_equity"]), Decimal(books["equity_seen"])
        self.fees_usd, self.slippage_usd = Decimal(books["fees_usd"]), Decimal(books["slippage_usd"])
        self.holdings = {s: [Decimal(q), Decimal(a)] for s, (q, a) in books["holdings"].items()}
        for stored in books["orders"]:
            order = _loaded(stored)
            self.orders[order["id"]] = order
            self.by_client[order["client_order_id"]] = order["id"]
        self._ids = itertools.count(books["next_id"])

    def equity(self) -> Decimal:
        return self.cash + sum((self._value(s, q) for s, (q, _) in self.holdings.items()), Decimal(0))

    # -- the Broker port ---------------------------------------------------------

    def get_account(self) -> Account:
        equity = self.equity()
        self.equity_seen = equity
        reserved = sum((self._cost(o) for o in self.orders.values() if o["status"] == "new" and o["side"] == "buy"), Decimal(0))
        return Account(equity=equity.quantize(CENT), last_equity=self.last_equity.quantize(CENT), cash=self.cash.quantize(CENT),
                       buying_power=max(self.cash - reserved, Decimal(0)).quantize(CENT))

    def get_clock(self) -> MarketClock:
        next_open = self.pit.next_open()
        return MarketClock(is_open=self.pit.sessions is None or self.pit.sessions.is_open(self.pit.t),
                           next_open=iso(next_open) if next_open else None)

    def get_positions(self) -> list[Position]:
        positions = []
        for symbol, (qty, avg) in sorted(self.holdings.items()):
            price = self.pit.price(symbol) or avg
            value = (qty * price).quantize(CENT)
            positions.append(Position(symbol, qty, avg, value, price, (value - qty * avg).quantize(CENT)))
        return positions

    def submit_order(self, intent: OrderIntent) -> OrderResult:
        if intent.client_order_id in self.by_client:
            raise DuplicateOrder(NAME, "client_order_id must be unique", 422)
        order = self._order(intent)
        if order["type"] != "market":
            self._check_stop(intent, freed=Decimal(0))
        elif intent.side == "buy":
            if (intent.qty if intent.qty is not None else intent.notional_usd or 0) <= 0:
                raise OrderRejected(NAME, "order quantity is zero", 422)
            buying_power = self.get_account().buying_power
            if self._cost(order) > buying_power:
                raise OrderRejected(NAME, f"insufficient buying power (need {self._cost(order):.2f}, have {buying_power})", 403)
        else:
            qty = intent.qty if intent.qty is not None else to_qty(intent.notional_usd / intent.price)
            self._check_available(intent.symbol, qty, Decimal(0))
            order["qty"] = qty
        self.orders[order["id"]] = order
        self.by_client[order["client_order_id"]] = order["id"]
        return _result(order)

    def replace_order(self, broker_order_id: str, intent: OrderIntent) -> OrderResult:
        old = self.orders.get(broker_order_id)
        if old is None:
            raise OrderRejected(NAME, f"order {broker_order_id} not found", 404)
        if old["status"] != "new":
            raise OrderRejected(NAME, f"order is already in \"{old['status']}\" state", 422)
        if intent.client_order_id in self.by_client:
            raise DuplicateOrder(NAME, "client_order_id must be unique", 422)
        self._check_stop(intent, freed=old["qty"] or Decimal(0))
        new = self._order(intent)
        old["status"] = "replaced"
        self.orders[new["id"]] = new
        self.by_client[new["client_order_id"]] = new["id"]
        return _result(new)

    def _order(self, intent: OrderIntent) -> dict:
        kind = getattr(intent, "order_type", "market") or "market"
        return {
            "id": f"bt-{next(self._ids)}", "client_order_id": intent.client_order_id, "symbol": intent.symbol,
            "side": intent.side, "type": kind, "stop_price": getattr(intent, "stop_price", None),
            "limit_price": getattr(intent, "limit_price", None), "tif": getattr(intent, "time_in_force", None) or "",
            "qty": intent.qty, "notional": intent.notional_usd, "price": intent.price, "submitted": self.pit.t,
            "after": self.pit.t, "expires": self._expiry(intent), "triggered": False,
            "status": "new", "filled_qty": None, "filled_price": None, "filled_at": None,
        }

    def _expiry(self, intent: OrderIntent):
        """A stock's ``day`` stop lives until the close of the session it was placed in (or the next one)."""
        if getattr(intent, "time_in_force", None) != "day" or is_crypto(intent.symbol) or self.pit.sessions is None:
            return None
        return self.pit.sessions.next_close(self.pit.t)

    def _check_stop(self, intent: OrderIntent, freed: Decimal) -> None:
        """Refuse a stop as Alpaca would (422), or one beyond the free quantity (403)."""
        price = self.pit.price(intent.symbol)
        if intent.side != "sell" or intent.stop_price is None or intent.stop_price <= 0:
            raise OrderRejected(NAME, "a sell stop with a stop_price is required", 422)
        if getattr(intent, "order_type", "") == "stop_limit" and not (intent.limit_price and intent.limit_price > 0):
            raise OrderRejected(NAME, "limit_price is required", 422)
        if price is not None and intent.stop_price >= price:
            raise OrderRejected(NAME, f"stop price must not be greater than or equal to the base price ({price})", 422)
        self._check_available(intent.symbol, intent.qty, freed)

    def _check_available(self, symbol: str, qty: Decimal | None, freed: Decimal) -> None:
        held = self.holdings.get(symbol, [Decimal(0)])[0]
        selling = sum((o["qty"] or 0 for o in self.orders.values()
                       if o["status"] == "new" and o["side"] == "sell" and o["symbol"] == symbol), Decimal(0))
        available = held - selling + freed
        if qty is None or qty <= 0 or qty > available:
            raise OrderRejected(NAME, f"insufficient qty available for order (requested: {qty}, available: {available})", 403)

    def get_order_by_client_id(self, client_order_id: str) -> OrderResult | None:
        order_id = self.by_client.get(client_order_id)
        return _result(self.orders[order_id]) if order_id else None

    def get_order(self, broker_order_id: str) -> OrderResult:
        order = self.orders.get(broker_order_id)
        if order is None:
            raise OrderRejected(NAME, f"order {broker_order_id} not found", 404)
        return _result(order)

    def load_order_minimums(self, symbols) -> None:
        """Nothing to read ahead: the minimum is $1 for every symbol."""

    def min_order_notional(self, symbol: str, price: Decimal) -> Decimal:
        return Decimal(1)

    def open_orders(self) -> list[OrderResult]:
        return [_result(o) for o in self.orders.values() if o["status"] == "new"]

    def cancel_order(self, broker_order_id: str) -> None:
        order = self.orders.get(broker_order_id)
        if order is None:
            raise OrderRejected(NAME, f"order {broker_order_id} not found", 404)
        if order["status"] != "new":
            raise OrderRejected(NAME, f"order is already in \"{order['status']}\" state", 422)
        order["status"] = "canceled"

    # -- fills -------------------------------------------------------------------

    def _trigger(self, order: dict, bar) -> Decimal | None:
        """The price this bar fills the order at, before slippage (None: not this bar)."""
        if order["type"] == "market":
            return bar.open
        stop, limit = Decimal(order["stop_price"]), order["limit_price"]
        if not order["triggered"]:
            if not (bar.low <= stop if order["side"] == "sell" else bar.high >= stop):
                return None
            order["triggered"] = True
            price = min(bar.open, stop) if order["side"] == "sell" else max(bar.open, stop)  # a gap: the open
        else:
            price = bar.open
        if limit is None or order["type"] != "stop_limit":
            return price
        if price >= limit:  # a sell stop-limit: at its limit or better, or not in this bar
            return price
        return Decimal(limit) if bar.high >= limit else None

    def _fill(self, order: dict, reference: Decimal, at: datetime) -> None:
        sign = 1 if order["side"] == "buy" else -1
        price = (reference * (1 + sign * self.slippage)).quantize(PRICE_STEP)
        symbol = order["symbol"]
        qty, avg = self.holdings.get(symbol, [Decimal(0), Decimal(0)])
        if order["side"] == "buy":
            filled = order["qty"] if order["qty"] is not None else to_qty(order["notional"] / price)
            value = (filled * price).quantize(CENT)
            fee = (value * self.fee_rate).quantize(CENT)
            if value + fee > self.cash:  # the open moved against us: buy what the cash pays for
                filled = to_qty((self.cash / (1 + self.fee_rate)) / price)
                value = (filled * price).quantize(CENT)
                fee = (value * self.fee_rate).quantize(CENT)
            self.cash -= value + fee
            new_qty = qty + filled
            self.holdings[symbol] = [new_qty, ((qty * avg + filled * price) / new_qty).quantize(PRICE_STEP)]
        else:
            filled = min(order["qty"], qty)
            value = (filled * price).quantize(CENT)
            fee = (value * self.fee_rate).quantize(CENT)
            self.cash += value - fee
            if qty - filled > 0:
                self.holdings[symbol] = [qty - filled, avg]
            else:
                self.holdings.pop(symbol, None)
        self.fees_usd += fee
        self.slippage_usd += (filled * abs(price - reference)).quantize(CENT)
        order.update(status="filled", filled_qty=filled, filled_price=price, filled_at=at)
        self.new_fees.append((order["client_order_id"], str(fee)))

    def _value(self, symbol: str, qty: Decimal) -> Decimal:
        price = self.pit.price(symbol) or self.holdings[symbol][1]
        return (qty * price).quantize(CENT)

    def _cost(self, order: dict) -> Decimal:
        """What a buy may take from cash at most: its value at the price it was sized at, and the fee."""
        value = order["notional"] if order["notional"] is not None else order["qty"] * order["price"]
        return value * (1 + self.slippage) * (1 + self.fee_rate)


def _result(order: dict) -> OrderResult:
    filled = order["filled_qty"]
    return OrderResult(
        client_order_id=order["client_order_id"], broker_order_id=order["id"], status=order["status"],
        symbol=order["symbol"], side=order["side"], filled_qty=filled,
        filled_avg_price=order["filled_price"], qty=order["qty"], submitted_at=iso(order["submitted"]),
        filled_at=iso(order["filled_at"]) if order["filled_at"] else None, order_type=order["type"],
        stop_price=order["stop_price"], limit_price=order["limit_price"], time_in_force=order["tif"] or "",
    )


def _stored(order: dict) -> dict:
    return {k: (iso(v) if isinstance(v, datetime) else str(v) if isinstance(v, Decimal) else v) for k, v in order.items()}


def _loaded(stored: dict) -> dict:
    from tradecycle.infra.times import parse_iso

    order = dict(stored)
    for key in ("qty", "notional", "price", "stop_price", "limit_price", "filled_qty", "filled_price"):
        order[key] = Decimal(order[key]) if order[key] is not None else None
    for key in ("submitted", "after", "filled_at", "expires"):
        order[key] = parse_iso(order[key]) if order[key] else None
    return order


__all__ = ["BacktestBroker"]
