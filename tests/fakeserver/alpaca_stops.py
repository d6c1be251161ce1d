"""Alpaca paper orders that protect a position (API_NOTES.md, "Orders that
protect a position"): sell ``stop`` (stocks) and ``stop_limit`` (crypto)
orders, the quantity they hold (a sell beyond ``qty_available`` is refused
with "insufficient qty available"), their triggers when the price falls to
the stop, ``PATCH`` (a new order with a new id; the old one ends
``replaced``) and ``DELETE`` (through ``pending_cancel`` when
``cancel_delay_reads`` is set)."""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from .common import RecordedRequest, Reply, _dec, _money, _qty, _rfc3339, position_symbol

STOP_TYPES = ("stop", "stop_limit")
FINAL = ("filled", "canceled", "expired", "rejected", "replaced")


class AlpacaStopsMixin:
    """Stop orders of the Alpaca paper-trading fake. State: ``stop_refusals``
    (symbol -> the 422 message its stops get: "an asset that takes none"),
    ``cancel_delay_reads`` (a DELETE leaves the order ``pending_cancel`` for that
    many reads of it before it shows ``canceled``)."""

    stop_refusals: dict[str, str]
    cancel_delay_reads: int

    def _init_stops(self) -> None:
        self.stop_refusals = {}
        self.cancel_delay_reads = 0
        self._cancel_reads: dict[str, int] = {}  # order id -> reads left before canceled

    # ----- held quantity

    def held_for_orders(self, symbol: str) -> Decimal:
        """What open sell orders of ``symbol`` hold of its position."""
        held = Decimal(0)
        for order in self.orders.values():
            if order["side"] == "sell" and order["status"] not in FINAL and order.get("qty") is not None \
                    and position_symbol(order["symbol"]) == position_symbol(symbol):
                held += _dec(order["qty"]) - _dec(order.get("filled_qty") or "0")
        return held

    def _available(self, pos: dict[str, Any]) -> Decimal:
        return max(_dec(pos["qty"]) - self.held_for_orders(pos["symbol"]), Decimal(0))

    def _positions_reply(self) -> list[dict[str, Any]]:
        return [dict(p, qty_available=_qty(self._available(p))) for p in self.positions]

    # ----- POST checks of a stop

    def _stop_problem(self, body: dict[str, Any], symbol: str, crypto: bool, order_type: str,
                      notional: Decimal | None, fractional: bool) -> str | None:
        """Why Alpaca refuses this stop (422), or None."""
        if symbol in self.stop_refusals:
            return self.stop_refusals[symbol]
        if crypto and order_type != "stop_limit":
            return f"invalid order type for crypto order: {order_type}"
        if body.get("side") != "sell":
            return "this fake takes sell stops only"
        if notional is not None:
            return f"notional is not supported for {order_type} orders"
        if fractional and not crypto and body.get("time_in_force") != "day":
            return "fractional orders must be DAY orders"
        try:
            stop = _dec(body.get("stop_price"))
            limit = _dec(body["limit_price"]) if order_type == "stop_limit" else None
        except (InvalidOperation, TypeError, KeyError):
            return "stop_price is required" if body.get("stop_price") is None else "limit_price is required"
        if not stop.is_finite() or stop <= 0 or (limit is not None and (not limit.is_finite() or limit <= 0)):
            return "stop_price and limit_price must be > 0"
        price = self.prices.get(symbol)
        if price is not None and stop >= _dec(price):
            return f"stop price must not be greater than or equal to the base price ({price})"
        return None

    # ----- triggers

    def _trigger_stops(self, symbol: str) -> None:
        """The price of ``symbol`` moved: fill every sell stop it reached (a stop at
        this price; a stop-limit at this price if it is not under its limit)."""
        price = _dec(self.prices[symbol])
        for order in list(self.orders.values()):
            if order["symbol"] != symbol or order["type"] not in STOP_TYPES or order["status"] in FINAL:
                continue
            if price > _dec(order["stop_price"]):
                continue
            if order["type"] == "stop_limit" and price < _dec(order["limit_price"]):
                order["triggered"] = True  # a limit order now, waiting for its price
                continue
            self._fill(order, price, None)

    # ----- PATCH and DELETE

    def _alpaca_replace_order(self, req: RecordedRequest, order: dict[str, Any]) -> Reply:
        body = req.json if isinstance(req.json, dict) else {}
        if order["status"] in FINAL or order["status"] == "pending_cancel":
            return self._alpaca_error(422, f"order is already in \"{order['status']}\" state", 42210000)
        coid = body.get("client_order_id") or str(uuid.uuid4())
        if coid in self.orders:
            return self._alpaca_error(422, "client_order_id must be unique", 40010001)
        try:
            qty = _dec(body.get("qty", order["qty"]))
            stop = _dec(body.get("stop_price", order["stop_price"]))
            limit = _dec(body["limit_price"]) if body.get("limit_price") is not None else None
        except (InvalidOperation, TypeError):
            return self._alpaca_error(422, "invalid qty or price", 40010001)
        pos = next((p for p in self.positions if p["symbol"] == position_symbol(order["symbol"])), None)
        available = (self._available(pos) if pos else Decimal(0)) + _dec(order["qty"]) - _dec(order["filled_qty"] or "0")
        if qty > available:
            return self._alpaca_error(
                403, f"insufficient qty available for order (requested: {_qty(qty)}, available: {_qty(available)})", 40310000)
        price = self.prices.get(order["symbol"])
        if price is not None and stop >= _dec(price):
            return self._alpaca_error(422, f"stop price must not be greater than or equal to the base price ({price})", 42210000)
        now = _rfc3339()
        new = dict(order, id=str(uuid.uuid4()), client_order_id=coid, created_at=now, updated_at=now, submitted_at=now,
                   qty=_qty(qty), stop_price=_money(stop), replaces=order["id"], status="new", filled_qty="0",
                   time_in_force=body.get("time_in_force", order["time_in_force"]))
        if limit is not None:
            new["limit_price"] = _money(limit)
        order.update(status="replaced", replaced_by=new["id"], replaced_at=now, updated_at=now)
        self.orders[coid] = new
        return Reply(200, dict(new))

    def _alpaca_cancel_order(self, order: dict[str, Any]) -> Reply:
        if order["status"] in FINAL:
            return self._alpaca_error(422, f"order is already in \"{order['status']}\" state", 42210000)
        if self.cancel_delay_reads:
            self.set_order_status(order["client_order_id"], "pending_cancel")
            self._cancel_reads[order["id"]] = self.cancel_delay_reads
        else:
            self.set_order_status(order["client_order_id"], "canceled")
        return Reply(204, None)

    def _read_order(self, order: dict[str, Any]) -> dict[str, Any]:
        """An order as a GET shows it: a pending cancel ends after its reads."""
        left = self._cancel_reads.get(order["id"])
        if left is not None:
            if left <= 1:
                del self._cancel_reads[order["id"]]
                self.set_order_status(order["client_order_id"], "canceled")
            else:
                self._cancel_reads[order["id"]] = left - 1
        return dict(order)
