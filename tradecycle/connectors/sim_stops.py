"""The simulated broker's sell stops, as Alpaca's behave (API_NOTES.md,
"Orders that protect a position"): a stop (stocks) or stop-limit (crypto)
waits, holds its quantity (another sell beyond what is left is refused with
"insufficient qty available"), fills when the simulated price reaches it,
and is replaced (``PATCH``: a new order, the old one ``replaced``) or
canceled. The simulated price moves only when someone asks for it, so a
stop is checked whenever the broker is asked anything: at the next cycle's
fetch, as a stop at Alpaca is found filled by the next cycle."""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal

from tradecycle.infra.errors import DuplicateOrder, OrderRejected
from tradecycle.models import OrderIntent, OrderResult, is_crypto
from tradecycle.store import iso

WAITING = ("new", "accepted")
_TRIGGERING = threading.Lock()  # see SimStopsMixin._trigger_stops


class SimStopsMixin:
    """Mixed into ``SimBroker`` (which has ``ledger``, ``market``, ``clock``)."""

    def held_for_orders(self, symbol: str) -> Decimal:
        """What the waiting sells of ``symbol`` hold."""
        return sum((Decimal(o["qty"]) for o in self.ledger.open_orders() if o["symbol"] == symbol and o["side"] == "sell"),
                   Decimal(0))

    def _submit_stop(self, intent: OrderIntent) -> OrderResult:
        if self.ledger.order(client_order_id=intent.client_order_id):
            raise DuplicateOrder("sim", "client_order_id must be unique", 422)
        problem = _stop_problem(intent)
        price = self.market.quote(intent.symbol, self.clock.now()).price
        if problem is None and intent.stop_price >= price:
            problem = f"stop price must not be greater than or equal to the base price ({price})"
        if problem:
            raise OrderRejected("sim", problem, 422)
        self._check_available(intent.symbol, intent.qty, Decimal(0))
        order = self._stop_row(intent, str(uuid.uuid4()))
        self.ledger.add_order(order)
        return self._result_of(order)

    def replace_order(self, broker_order_id: str, intent: OrderIntent) -> OrderResult:
        self._trigger_stops()
        old = self.ledger.order(order_id=broker_order_id)
        if old is None:
            raise OrderRejected("sim", f"order {broker_order_id} not found", 404)
        if old["status"] not in WAITING:
            raise OrderRejected("sim", f"order is already in \"{old['status']}\" state", 422)
        if self.ledger.order(client_order_id=intent.client_order_id):
            raise DuplicateOrder("sim", "client_order_id must be unique", 422)
        if problem := _stop_problem(intent):
            raise OrderRejected("sim", problem, 422)
        self._check_available(intent.symbol, intent.qty, Decimal(old["qty"]))
        new = self._stop_row(intent, str(uuid.uuid4()))
        self.ledger.set_order(broker_order_id, status="replaced", message=f"replaced by {new['id']}")
        self.ledger.add_order(new)
        return self._result_of(new)

    def open_orders(self) -> list[OrderResult]:
        """The stops still waiting."""
        self._trigger_stops()
        return [self._result_of(o) for o in self.ledger.open_orders()]

    def cancel_order(self, broker_order_id: str) -> None:
        self._trigger_stops()
        order = self.ledger.order(order_id=broker_order_id)
        if order is None:
            raise OrderRejected("sim", f"order {broker_order_id} not found", 404)
        if order["status"] not in WAITING:
            raise OrderRejected("sim", f"order is already in \"{order['status']}\" state", 422)
        self.ledger.set_order(broker_order_id, status="canceled")

    def _check_available(self, symbol: str, qty: Decimal | None, freed: Decimal) -> None:
        held_qty = self.ledger.holdings().get(symbol, (Decimal(0), Decimal(0)))[0]
        available = held_qty - self.held_for_orders(symbol) + freed
        if qty is None or qty <= 0 or qty > available:
            raise OrderRejected("sim", f"insufficient qty available for order (requested: {qty}, available: {available})", 403)

    def _stop_row(self, intent: OrderIntent, order_id: str) -> dict:
        return {
            "id": order_id, "client_order_id": intent.client_order_id, "symbol": intent.symbol, "side": "sell",
            "qty": str(intent.qty), "notional": None, "filled_qty": "0", "filled_avg_price": None, "status": "new",
            "submitted_at": iso(self.clock.now()), "filled_at": None, "message": "", "order_type": intent.order_type,
            "stop_price": str(intent.stop_price), "limit_price": None if intent.limit_price is None else str(intent.limit_price),
            "time_in_force": intent.time_in_force or "gtc",
        }

    def _trigger_stops(self) -> None:
        """Fill every waiting stop the simulated price has reached (a stop-limit only
        while the price is not under its limit), at that price. One check at a time: the
        cycle asks for the orders and the positions at once (in threads), and both must
        see the stop filled once, by whichever asked first, before they read the books."""
        with _TRIGGERING:
            self._fill_reached_stops()

    def _fill_reached_stops(self) -> None:
        now = self.clock.now()
        for order in self.ledger.open_orders():
            price = self.market.quote(order["symbol"], now).price
            if price > Decimal(order["stop_price"]) or (order["limit_price"] and price < Decimal(order["limit_price"])):
                continue
            held_qty, held_avg = self.ledger.holdings().get(order["symbol"], (Decimal(0), Decimal(0)))
            qty = min(Decimal(order["qty"]), held_qty)
            fields = {"status": "filled", "filled_qty": str(qty), "filled_avg_price": str(price), "filled_at": iso(now)}
            self.ledger.fill_waiting(order["id"], fields, (qty * price).quantize(Decimal("0.01")), (held_qty - qty, held_avg))


def _stop_problem(intent: OrderIntent) -> str | None:
    """Why Alpaca would refuse this stop (422), or None."""
    if intent.side != "sell":
        return "the simulator takes sell stops only"
    if is_crypto(intent.symbol) and intent.order_type != "stop_limit":
        return f"invalid order type for crypto order: {intent.order_type}"
    if intent.stop_price is None or intent.stop_price <= 0:
        return "stop_price is required"
    if intent.order_type == "stop_limit" and (intent.limit_price is None or intent.limit_price <= 0):
        return "limit_price is required"
    if intent.qty is not None and not is_crypto(intent.symbol) and intent.qty != intent.qty.to_integral_value() \
            and intent.time_in_force != "day":
        return "fractional orders must be DAY orders"
    return None
