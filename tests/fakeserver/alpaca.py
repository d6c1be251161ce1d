"""Alpaca paper trading (API_NOTES.md, "Alpaca paper trading"): the account
(string numbers), the clock (nanoseconds, New York offset), assets (crypto
minimums and increments), positions (crypto as ``BTCUSD``), order lookup and
cancel, and Alpaca's ``{"code", "message"}`` errors. Placing and filling orders:
``alpaca_orders``."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import unquote

from .common import (
    DEFAULT_CRYPTO_MINIMUMS, NEW_YORK, RecordedRequest, Reply, _dec, _is_crypto, _money, _qty, _ratio, _usd,
    position_symbol,
)

# Realistic error bodies, per service and status.
_ALPACA_ERRORS = {
    400: (40010000, "request body format is invalid"),
    401: (40110000, "request is not authorized"),
    403: (40310000, "insufficient buying power"),
    404: (40410000, "resource not found"),
    422: (42210000, "invalid order"),
    429: (42910000, "rate limit exceeded"),
    500: (50010000, "internal server error occurred"),
    502: (50010000, "bad gateway"),
    503: (50310000, "service unavailable"),
    504: (50410000, "gateway timeout"),
}


class AlpacaMixin:
    """The Alpaca paper-trading state helpers and endpoints of ``FakeServices``."""

    @staticmethod
    def _default_account() -> dict[str, Any]:
        return {
            "id": str(uuid.uuid4()),
            "admin_configurations": {},
            "user_configurations": None,
            "account_number": "PA3FAKE0001",
            "status": "ACTIVE",
            "crypto_status": "ACTIVE",
            "options_approved_level": 0,
            "options_trading_level": 0,
            "currency": "USD",
            "buying_power": "200000",
            "regt_buying_power": "200000",
            "daytrading_buying_power": "0",
            "effective_buying_power": "200000",
            "non_marginable_buying_power": "100000",
            "options_buying_power": "100000",
            "bod_dtbp": "0",
            "cash": "100000",
            "accrued_fees": "0",
            "portfolio_value": "100000",
            "multiplier": "2",
            "equity": "100000",
            "last_equity": "100000",
            "long_market_value": "0",
            "short_market_value": "0",
            "position_market_value": "0",
            "initial_margin": "0",
            "maintenance_margin": "0",
            "last_maintenance_margin": "0",
            "sma": "100000",
            "daytrade_count": 0,
            "balance_asof": date.today().isoformat(),
            "crypto_tier": 1,
            "intraday_adjustments": "0",
            "pending_reg_taf_fees": "0",
            "trading_blocked": False,
            "transfers_blocked": False,
            "account_blocked": False,
            "created_at": "2024-01-02T15:04:05.99658Z",
            "trade_suspended_by_user": False,
            "shorting_enabled": True,
        }

    def set_market_open(self, is_open: bool) -> None:
        """Rebuild ``clock``: open now (closes today 16:00 ET) or closed (opens next weekday 09:30 ET)."""
        now = datetime.now(NEW_YORK)
        close_today = now.replace(hour=16, minute=0, second=0, microsecond=0)
        next_day = now + timedelta(days=1)
        while next_day.weekday() >= 5:
            next_day += timedelta(days=1)
        next_open = next_day.replace(hour=9, minute=30, second=0, microsecond=0)
        if is_open:
            next_close = close_today if close_today > now else next_day.replace(hour=16, minute=0, second=0, microsecond=0)
        else:
            next_close = next_open.replace(hour=16, minute=0)
        with self.lock:
            self.clock = {
                "timestamp": None,  # served as "now" (nanosecond precision, ET offset, like Alpaca)
                "is_open": bool(is_open),
                "next_open": next_open.isoformat(timespec="seconds"),
                "next_close": next_close.isoformat(timespec="seconds"),
            }

    def add_asset(self, symbol: str, *, min_order_size: str | None = None, min_trade_increment: str | None = None,
                  tradable: bool = True, fractionable: bool = True) -> dict[str, Any]:
        """Add (or replace) an entry of ``assets``, keyed by the order symbol ("AAPL", "BTC/USD")."""
        crypto = _is_crypto(symbol)
        asset: dict[str, Any] = {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "fake-asset:" + symbol)),
            "class": "crypto" if crypto else "us_equity",
            "exchange": "CRYPTO" if crypto else "NASDAQ",
            "symbol": symbol,
            "name": f"{symbol.split('/')[0]} / US Dollar" if crypto else f"{symbol} Inc. Common Stock",
            "status": "active",
            "tradable": tradable,
            "marginable": not crypto,
            "maintenance_margin_requirement": 100 if crypto else 30,
            "margin_requirement_long": "100" if crypto else "30",
            "margin_requirement_short": "100" if crypto else "30",
            "shortable": not crypto,
            "easy_to_borrow": not crypto,
            "fractionable": fractionable,
            "attributes": [] if crypto else ["fractional_eh_enabled", "has_options"],
        }
        if crypto:
            minimum = min_order_size or DEFAULT_CRYPTO_MINIMUMS.get(symbol, "0.0001")
            asset["min_order_size"] = minimum
            asset["min_trade_increment"] = min_trade_increment or minimum
            asset["price_increment"] = "0.1" if symbol.startswith("BTC") else "0.01"
        with self.lock:
            self.assets[symbol] = asset
        return asset

    def add_position(self, symbol: str, qty: Any, avg_entry_price: Any, current_price: Any = None) -> dict[str, Any]:
        """Add an Alpaca-shaped long position (crypto as ``BTCUSD``). Cash is left alone."""
        current = _dec(current_price if current_price is not None else self.prices.get(symbol, avg_entry_price))
        pos = self._new_position(symbol, _dec(qty), _dec(avg_entry_price), current)
        with self.lock:
            self.positions = [p for p in self.positions if p["symbol"] != pos["symbol"]] + [pos]
            self._recompute_account()
        return pos

    def _new_position(self, symbol: str, qty: Decimal, avg: Decimal, current: Decimal) -> dict[str, Any]:
        crypto = _is_crypto(symbol)
        asset = self.assets.get(symbol) or {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, "fake-asset:" + symbol))}
        pos = {
            "asset_id": asset["id"],
            "symbol": position_symbol(symbol),
            "exchange": "CRYPTO" if crypto else "NASDAQ",
            "asset_class": "crypto" if crypto else "us_equity",
            "asset_marginable": not crypto,
            "qty": _qty(qty),
            "qty_available": _qty(qty),
            "avg_entry_price": _money(avg),
            "side": "long",
            "cost_basis": _usd(qty * avg),
            "lastday_price": _money(current),
            "change_today": "0",
        }
        self._reprice_position(pos, current)
        return pos

    @staticmethod
    def _reprice_position(pos: dict[str, Any], current: Decimal) -> None:
        qty, avg = _dec(pos["qty"]), _dec(pos["avg_entry_price"])
        market_value = qty * current
        cost = qty * avg
        lastday = _dec(pos.get("lastday_price") or current)
        pos.update(
            current_price=_money(current),
            market_value=_usd(market_value),
            cost_basis=_usd(cost),
            unrealized_pl=_usd(market_value - cost),
            unrealized_plpc=_ratio((market_value - cost) / cost) if cost else "0",
            unrealized_intraday_pl=_usd(qty * (current - lastday)),
            unrealized_intraday_plpc=_ratio((current - lastday) / lastday) if lastday else "0",
            change_today=_ratio((current - lastday) / lastday) if lastday else "0",
        )

    def _recompute_account(self) -> None:
        """equity = cash + positions; buying power = cash x multiplier (non-marginable: cash)."""
        acct = self.account
        try:
            cash = _dec(acct["cash"])
            multiplier = _dec(acct.get("multiplier") or "1")
        except (KeyError, InvalidOperation):
            return
        long_value = sum((_dec(p["market_value"]) for p in self.positions), Decimal(0))
        equity = cash + long_value
        buying_power = _usd(max(cash * multiplier, Decimal(0)))
        acct.update(
            long_market_value=_usd(long_value),
            position_market_value=_usd(long_value),
            equity=_usd(equity),
            portfolio_value=_usd(equity),
            buying_power=buying_power,
            regt_buying_power=buying_power,
            effective_buying_power=buying_power,
            non_marginable_buying_power=_usd(max(cash, Decimal(0))),
        )

    # ----- endpoints

    def _alpaca_error(self, status: int, message: str, code: int | None = None) -> Reply:
        body = self._error_body("alpaca", status, message)
        if code is not None:
            body["code"] = code
        return Reply(status, body)

    def _alpaca(self, req: RecordedRequest) -> Reply:
        if self.require_auth:
            key, secret = req.headers.get("APCA-API-KEY-ID"), req.headers.get("APCA-API-SECRET-KEY")
            if (not key or not secret or (self.alpaca_key_id and key != self.alpaca_key_id)
                    or (self.alpaca_secret_key and secret != self.alpaca_secret_key)):
                return Reply(401, {"code": 40110000, "message": "request is not authorized"})
        parts = req.subpath.split("/")  # ["", "v2", "orders", ...], still URL-encoded
        method = req.method
        reply: Reply
        with self.lock:
            if parts[:2] != ["", "v2"] or len(parts) < 3:
                reply = self._alpaca_error(404, "endpoint not found", 40410000)
            elif parts[2] == "account" and len(parts) == 3 and method == "GET":
                reply = Reply(200, dict(self.account))
            elif parts[2] == "clock" and len(parts) == 3 and method == "GET":
                clock = dict(self.clock)
                if clock.get("timestamp") is None:
                    now = datetime.now(NEW_YORK)  # "2026-05-11T10:21:34.123456123-04:00"
                    offset = now.isoformat()[-6:]
                    clock["timestamp"] = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond:06d}123" + offset
                reply = Reply(200, {"timestamp": clock.pop("timestamp"), **clock})
            elif parts[2] == "positions" and method == "GET":
                if len(parts) == 3:
                    reply = Reply(200, self._positions_reply())
                else:
                    wanted = position_symbol(unquote(parts[3]).upper())
                    pos = next((p for p in self._positions_reply() if p["symbol"] == wanted), None)
                    reply = Reply(200, dict(pos)) if pos else self._alpaca_error(404, "position does not exist", 40410000)
            elif parts[2] == "assets" and len(parts) == 4 and method == "GET":
                symbol = unquote(parts[3]).upper()
                asset = self.assets.get(symbol) or next(
                    (a for s, a in self.assets.items() if position_symbol(s) == symbol), None)
                reply = Reply(200, dict(asset)) if asset else self._alpaca_error(
                    404, f"asset not found for {symbol}", 40410000)
            elif parts[2] == "orders" and len(parts) == 3 and method == "POST":
                reply = self._alpaca_post_order(req)
            elif parts[2] == "orders" and len(parts) == 3 and method == "GET":
                reply = self._alpaca_list_orders(req)
            elif parts[2] == "orders:by_client_order_id" and len(parts) == 3 and method == "GET":
                coid = req.query.get("client_order_id", "")
                order = self.orders.get(coid)
                reply = Reply(200, dict(order)) if order else self._alpaca_error(404, "order not found", 40410000)
            elif parts[2] == "orders" and len(parts) == 4 and method in ("GET", "DELETE", "PATCH"):
                order_id = unquote(parts[3])
                order = next((o for o in self.orders.values() if o["id"] == order_id), None)
                if order is None:
                    reply = self._alpaca_error(404, f"order not found for {order_id}", 40410000)
                elif method == "GET":
                    reply = Reply(200, self._read_order(order))
                elif method == "PATCH":
                    reply = self._alpaca_replace_order(req, order)
                else:
                    reply = self._alpaca_cancel_order(order)
            else:
                reply = self._alpaca_error(404, "endpoint not found", 40410000)
        reply.headers.setdefault("X-Ratelimit-Limit", "200")
        reply.headers.setdefault("X-Ratelimit-Remaining", "199")
        return reply
