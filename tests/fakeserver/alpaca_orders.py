"""Alpaca paper orders (API_NOTES.md, "Alpaca paper trading"): POST /v2/orders
with Alpaca's checks and refusals (client_order_id unique, time_in_force,
fractional and crypto minimums, buying power, held quantity), listing orders,
and fills that move cash and positions (crypto fees taken in coins). Stop
orders' own checks, triggers, PATCH and DELETE: ``alpaca_stops``."""

from __future__ import annotations

import uuid
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

from .common import QTY_PLACES, RecordedRequest, Reply, _dec, _is_crypto, _money, _qty, _rfc3339, _usd, position_symbol


class AlpacaOrdersMixin:
    """Orders of the Alpaca paper-trading fake: placing, listing, filling."""

    def fill(self, client_order_id: str, price: Any = None, qty: Any = None) -> dict[str, Any]:
        """Fill an open order now (``qty`` < ordered: partially_filled) and update positions/cash."""
        with self.lock:
            order = self.orders[client_order_id]
            self._fill(order, _dec(price) if price is not None else None, _dec(qty) if qty is not None else None)
            return order

    def set_order_status(self, client_order_id: str, status: str, **fields: Any) -> dict[str, Any]:
        """Move an order to any status (canceled, expired, rejected, ...) without touching positions."""
        with self.lock:
            order = self.orders[client_order_id]
            now = _rfc3339()
            order.update(status=status, updated_at=now, **fields)
            stamp = {"canceled": "canceled_at", "expired": "expired_at", "rejected": "failed_at", "filled": "filled_at"}
            if status in stamp and not order.get(stamp[status]):
                order[stamp[status]] = now
            return order

    def _alpaca_list_orders(self, req: RecordedRequest) -> Reply:
        status = req.query.get("status", "open")
        open_states = {"new", "accepted", "partially_filled", "pending_new", "accepted_for_bidding", "held", "pending_review",
                       "pending_cancel", "pending_replace"}
        orders = list(self.orders.values())
        if status == "open":
            orders = [o for o in orders if o["status"] in open_states]
        elif status == "closed":
            orders = [o for o in orders if o["status"] not in open_states]
        if req.query.get("symbols"):
            wanted = {s.strip().upper() for s in req.query["symbols"].split(",")}
            orders = [o for o in orders if o["symbol"] in wanted or position_symbol(o["symbol"]) in wanted]
        orders.sort(key=lambda o: o["submitted_at"], reverse=req.query.get("direction", "desc") != "asc")
        try:
            limit = min(int(req.query.get("limit", "50")), 500)
        except ValueError:
            return self._alpaca_error(422, "invalid limit", 42210000)
        return Reply(200, [dict(o) for o in orders[:limit]])

    def _alpaca_post_order(self, req: RecordedRequest) -> Reply:
        body = req.json
        if not isinstance(body, dict):
            return self._alpaca_error(400, "request body format is invalid", 40010000)
        coid = body.get("client_order_id") or str(uuid.uuid4())
        if not isinstance(coid, str) or len(coid) > 128:
            return self._alpaca_error(422, "client_order_id must be no more than 128 characters", 40010001)
        if coid in self.orders:
            return self._alpaca_error(422, "client_order_id must be unique", 40010001)
        if self.account.get("trading_blocked") or self.account.get("account_blocked") \
                or self.account.get("status") != "ACTIVE":
            return self._alpaca_error(403, "account is not allowed to trade", 40310000)

        symbol = str(body.get("symbol") or "").upper()
        if not symbol:
            return self._alpaca_error(422, "symbol is required", 40010001)
        asset = self.assets.get(symbol)
        if asset is None:
            return self._alpaca_error(422, f'asset "{symbol}" not found', 40010001)
        if not asset.get("tradable", True):
            return self._alpaca_error(422, f"asset {symbol} is not tradable", 42210000)
        crypto = asset["class"] == "crypto"
        side = body.get("side")
        if side not in ("buy", "sell"):
            return self._alpaca_error(422, "invalid side", 40010001)
        order_type = body.get("type", body.get("order_type"))
        if order_type not in ("market", "stop", "stop_limit"):
            return self._alpaca_error(422, f"this fake takes market, stop and stop_limit orders, not {order_type!r}", 42210000)
        tif = body.get("time_in_force")
        if (body.get("qty") is None) == (body.get("notional") is None):
            return self._alpaca_error(422, "qty or notional is required, but not both", 40010001)
        try:
            qty = _dec(body["qty"]) if body.get("qty") is not None else None
            notional = _dec(body["notional"]) if body.get("notional") is not None else None
        except InvalidOperation:
            return self._alpaca_error(422, "invalid qty or notional", 40010001)
        amount = qty if qty is not None else notional
        assert amount is not None
        if not amount.is_finite() or amount <= 0:
            return self._alpaca_error(422, "qty or notional must be > 0", 40010001)
        if amount.as_tuple().exponent < -9:  # type: ignore[operator]
            return self._alpaca_error(422, "qty or notional must have at most 9 decimal places", 40010001)
        fractional = notional is not None or (qty is not None and qty != qty.to_integral_value())
        if crypto:
            if tif not in ("gtc", "ioc"):
                return self._alpaca_error(422, "invalid crypto time_in_force", 42210000)
        elif tif not in ("day", "gtc", "opg", "cls", "ioc", "fok"):
            return self._alpaca_error(422, "invalid time_in_force", 40010001)
        elif fractional and tif != "day":
            return self._alpaca_error(422, "fractional orders must be DAY orders", 42210000)
        if fractional and not asset.get("fractionable", True):
            return self._alpaca_error(422, f"asset {symbol} is not fractionable", 42210000)
        if order_type != "market" and (problem := self._stop_problem(body, symbol, crypto, order_type, notional, fractional)):
            return self._alpaca_error(422, problem, 42210000)

        price = _dec(self.prices[symbol]) if self.prices.get(symbol) else None
        est_qty = qty if qty is not None else (notional / price if price else None)
        est_value = notional if notional is not None else (qty * price if price else None)
        if crypto:
            minimum = _dec(asset.get("min_order_size") or "0")
            increment = _dec(asset.get("min_trade_increment") or "0")
            if est_qty is not None and est_qty < minimum:
                return self._alpaca_error(422, f"qty must be >= {asset['min_order_size']}", 42210000)
            if qty is not None and increment and qty % increment != 0:
                return self._alpaca_error(
                    422, f"qty must be in increments of {asset['min_trade_increment']}", 42210000)
        elif est_value is not None and est_value < 1 and fractional:
            return self._alpaca_error(422, "cost basis must be >= 1", 42210000)

        if side == "buy" and est_value is not None:
            available = _dec(self.account["non_marginable_buying_power" if crypto else "buying_power"])
            if est_value > available:
                return self._alpaca_error(403, "insufficient buying power", 40310000)
        if side == "sell":
            pos = next((p for p in self.positions if p["symbol"] == position_symbol(symbol)), None)
            held = self._available(pos) if pos else Decimal(0)  # less what open sells (stops) hold
            if est_qty is not None and (crypto or fractional or not self.allow_short) and est_qty > held:
                message = ("insufficient balance for " + symbol.split("/")[0]) if crypto else \
                    f"insufficient qty available for order (requested: {_qty(est_qty)}, available: {_qty(held)})"
                return self._alpaca_error(403, message, 40310000)

        now = _rfc3339()
        order = {
            "id": str(uuid.uuid4()),
            "client_order_id": coid,
            "created_at": now,
            "updated_at": now,
            "submitted_at": now,
            "filled_at": None,
            "expired_at": None,
            "canceled_at": None,
            "failed_at": None,
            "replaced_at": None,
            "replaced_by": None,
            "replaces": None,
            "asset_id": asset["id"],
            "symbol": symbol,
            "asset_class": asset["class"],
            "notional": _money(notional) if notional is not None else None,
            "qty": _qty(qty) if qty is not None else None,
            "filled_qty": "0",
            "filled_avg_price": None,
            "order_class": "",
            "order_type": order_type,
            "type": order_type,
            "side": side,
            "position_intent": "buy_to_open" if side == "buy" else "sell_to_close",
            "time_in_force": tif,
            "limit_price": _money(_dec(body["limit_price"])) if order_type == "stop_limit" else None,
            "stop_price": _money(_dec(body["stop_price"])) if order_type != "market" else None,
            "status": "new" if crypto or self.clock.get("is_open") else "accepted",  # stocks queue while closed
            "extended_hours": bool(body.get("extended_hours", False)),
            "legs": None,
            "trail_percent": None,
            "trail_price": None,
            "hwm": None,
            "subtag": None,
            "source": None,
            "expires_at": None,
        }
        if self.new_order_status:
            order["status"] = self.new_order_status
        self.orders[coid] = order
        if self.fill_orders and order_type == "market" and not self.new_order_status and price is not None \
                and (crypto or self.clock.get("is_open")):
            self._fill(order, price, None)
        return Reply(200, dict(order))

    def _fill(self, order: dict[str, Any], price: Decimal | None, qty: Decimal | None) -> None:
        symbol = order["symbol"]
        if price is None:
            price = _dec(self.prices[symbol])
        ordered = _dec(order["qty"]) if order.get("qty") is not None else \
            (_dec(order["notional"]) / price).quantize(QTY_PLACES, rounding=ROUND_DOWN)
        already = _dec(order.get("filled_qty") or "0")
        fill_qty = min(qty if qty is not None else ordered - already, ordered - already)
        if fill_qty <= 0:
            return
        total = already + fill_qty
        prev_avg = _dec(order["filled_avg_price"]) if order.get("filled_avg_price") else price
        avg = (prev_avg * already + price * fill_qty) / total
        now = _rfc3339()
        order.update(filled_qty=_qty(total), filled_avg_price=_money(avg.quantize(Decimal("0.0001"))),
                     updated_at=now, status="filled" if total >= ordered else "partially_filled")
        if order["status"] == "filled":
            order["filled_at"] = now
        crypto = _is_crypto(symbol)
        cash = _dec(self.account["cash"])
        pos = next((p for p in self.positions if p["symbol"] == position_symbol(symbol)), None)
        if order["side"] == "buy":
            cash -= fill_qty * price
            received = fill_qty * (1 - Decimal(self.crypto_fee_bps) / 10000) if crypto else fill_qty
            if pos is None:
                self.positions.append(self._new_position(symbol, received, price, price))
            else:
                old_qty, old_avg = _dec(pos["qty"]), _dec(pos["avg_entry_price"])
                new_qty = old_qty + received
                pos.update(qty=_qty(new_qty), qty_available=_qty(new_qty),
                           avg_entry_price=_money(((old_qty * old_avg + received * price) / new_qty)
                                                  .quantize(Decimal("0.0001"))))
                self._reprice_position(pos, price)
        else:
            cash += fill_qty * price
            if pos is not None:
                new_qty = _dec(pos["qty"]) - fill_qty
                if new_qty <= 0:
                    self.positions.remove(pos)
                else:
                    pos.update(qty=_qty(new_qty), qty_available=_qty(new_qty))
                    self._reprice_position(pos, price)
        self.account["cash"] = _usd(cash)
        self._recompute_account()
