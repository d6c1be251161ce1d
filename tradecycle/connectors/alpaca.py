"""Alpaca paper trading as a ``ports.Broker``.

Every request goes through ``HttpClient``. Alpaca sends numbers as strings;
they become ``Decimal`` here and nowhere else. Position symbols come back as
``BTCUSD`` and leave this module as ``BTC/USD`` (``models.normalize_symbol``).
This module never decides what to trade: it sends what it is given, exactly
once, and says what the broker made of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from decimal import ROUND_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

from tradecycle.infra.errors import (
    BadResponse,
    DuplicateOrder,
    OrderNotReceived,
    OrderRejected,
    OrderUncertain,
    ServiceError,
    ServiceUnavailable,
)
from tradecycle.models import CENT, Account, MarketClock, OrderIntent, OrderResult, Position, is_crypto, normalize_symbol, to_cents, to_qty
from tradecycle.infra.parallel import gather
from tradecycle.connectors.http import HttpClient, HttpSettings, ServiceDown, ServiceRefused

STOCK_MIN_NOTIONAL_USD = Decimal("1")
# Used when a crypto pair's own minimum cannot be read (asset call failed or
# the reply lacks min_order_size). Erring high only turns a tiny order into
# "below_minimum"; erring low would only get it refused by the broker. $10
# covers BTC's 0.0001 minimum up to a price of $100,000.
CRYPTO_FALLBACK_MIN_NOTIONAL_USD = Decimal("10")


class _MayHaveArrived(Exception):
    """Internal: the order POST ended without an answer we can trust."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class AlpacaBroker:
    """The Alpaca paper API. ``base_url`` is validated as paper or loopback by the config."""

    name = "alpaca"

    def __init__(
        self,
        base_url: str,
        key_id: str,
        secret_key: str,
        http: HttpSettings,
        order_timeout_seconds: float = 10,
    ):
        settings = replace(http, secrets=tuple(dict.fromkeys((*http.secrets, key_id, secret_key))))
        headers = {"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret_key}
        self._http = HttpClient(self.name, base_url, settings, headers)
        self._order_timeout_seconds = order_timeout_seconds
        self._min_order_size: dict[str, Decimal] = {}  # crypto pair -> min qty, read once per instance

    @property
    def calls(self) -> int:
        """HTTP requests sent so far (for tests and ``check --online``)."""
        return self._http.calls

    # -- account -------------------------------------------------------------

    def get_account(self) -> Account:
        """GET /v2/account. Raises ``ServiceError``; ``BadResponse`` if a used field is missing."""
        data = _expect(self._http.get("/v2/account"), dict, "account")
        return Account(
            equity=_decimal(data, "equity"),
            last_equity=_decimal(data, "last_equity"),
            cash=_decimal(data, "cash"),
            buying_power=_decimal(data, "buying_power"),
            status=str(data.get("status") or ""),
            trading_blocked=bool(data.get("trading_blocked", False)),
            account_blocked=bool(data.get("account_blocked", False)),
        )

    def get_clock(self) -> MarketClock:
        """GET /v2/clock. Raises ``ServiceError``."""
        data = _expect(self._http.get("/v2/clock"), dict, "clock")
        if not isinstance(data.get("is_open"), bool):
            raise BadResponse(self.name, "clock reply lacks 'is_open'")
        return MarketClock(is_open=data["is_open"], next_open=data.get("next_open"), next_close=data.get("next_close"))

    def get_positions(self) -> list[Position]:
        """GET /v2/positions, symbols normalized (``BTCUSD`` -> ``BTC/USD``). Raises ``ServiceError``."""
        rows = _expect(self._http.get("/v2/positions"), list, "positions")
        return [
            Position(
                symbol=normalize_symbol(_text(row, "symbol")),
                qty=_decimal(row, "qty"),
                avg_entry_price=_decimal(row, "avg_entry_price"),
                market_value=_decimal(row, "market_value"),
                current_price=_decimal(row, "current_price"),
                unrealized_pl=_decimal(row, "unrealized_pl"),
            )
            for row in (_expect(row, dict, "position") for row in rows)
        ]

    # -- orders --------------------------------------------------------------

    def submit_order(self, intent: OrderIntent) -> OrderResult:
        """Send one market order, at most once, and return what the broker made of it.

        The ``client_order_id`` is what keeps this safe: Alpaca refuses (422) a
        second order with an id it has seen, so the same intent can never be
        placed twice, however often this is called.

        1. POST /v2/orders without retries, ``order_timeout_seconds`` to answer.
           A 200 returns the order.
        2. 422 "client_order_id must be unique": the order is already there
           (an earlier attempt landed). Look it up and return it. If the lookup
           fails, raise ``OrderUncertain`` (it exists; the next sync reads it);
           if it finds an order for another symbol or side, ``DuplicateOrder``.
        3. Any other 4xx (403 buying power / blocked account, 422 invalid):
           raise ``OrderRejected`` with the broker's message and status.
        4. No connection was ever made (refused, DNS, connect timeout, budget
           spent before sending): raise ``ServiceUnavailable``; nothing was sent.
        5. It may have arrived (read timeout, reset, 5xx, a 200 we cannot read):
           look it up by client order id.
           - found: return it;
           - the lookup itself fails: raise ``OrderUncertain`` (the next
             cycle's sync looks it up again);
           - the broker has no such order: raise ``OrderNotReceived``. This
             never resends by itself: the cycle re-reads the kill switch and
             its time budget first, then may call again with the same intent
             (a first attempt that lands late makes the second a duplicate,
             step 2, so at most one order ever exists).

        A 429 raises ``RateLimited``: the order was not placed.
        An intent without exactly one positive ``notional_usd`` / ``qty`` raises
        ``OrderRejected`` (status ``None``) before anything is sent.
        """
        body = order_body(intent)  # raises OrderRejected for an unusable intent
        try:
            return self._post_order(body)
        except DuplicateOrder as duplicate:
            return self._existing_order(intent, duplicate)
        except ServiceDown as down:
            if not down.may_have_arrived:
                raise ServiceUnavailable(self.name, f"order {intent.client_order_id} not sent: {down.message}") from None
            doubt = down.message
        except _MayHaveArrived as exc:
            doubt = exc.reason

        missing = OrderNotReceived(self.name, f"order {intent.client_order_id} did not arrive ({doubt})")
        return self._look_up(intent, f"may have been placed ({doubt})", missing)

    def get_order_by_client_id(self, client_order_id: str) -> OrderResult | None:
        """GET /v2/orders:by_client_order_id; ``None`` when the broker never saw it (404). Raises ``ServiceError``."""
        data = self._http.get(
            "/v2/orders:by_client_order_id",
            params={"client_order_id": client_order_id},
            timeout_seconds=self._order_timeout_seconds,
            missing_ok=True,
        )
        return None if data is None else parse_order(data)

    def get_order(self, broker_order_id: str) -> OrderResult:
        """GET /v2/orders/{id}: the broker's current view. Raises ``ServiceError`` (``BadResponse`` on 404)."""
        return parse_order(self._http.get(f"/v2/orders/{quote(broker_order_id, safe='')}"))

    def open_orders(self) -> list[OrderResult]:
        """GET /v2/orders?status=open: every open order of the account, ours or not. Raises ``ServiceError``."""
        rows = _expect(self._http.get("/v2/orders", params={"status": "open", "limit": 500, "direction": "asc"}), list, "orders")
        return [parse_order(row) for row in rows]

    def cancel_order(self, broker_order_id: str) -> None:
        """DELETE /v2/orders/{id} (204 when the cancel is accepted; the order then goes
        ``pending_cancel`` -> ``canceled``). Raises ``OrderRejected`` (422) when it can
        no longer be canceled (filled meanwhile), ``ServiceError`` otherwise."""
        try:
            self._http.delete(f"/v2/orders/{quote(broker_order_id, safe='')}", timeout_seconds=self._order_timeout_seconds)
        except ServiceRefused as refused:
            raise OrderRejected(self.name, refused.detail, refused.status_code) from None

    def replace_order(self, broker_order_id: str, intent: OrderIntent) -> OrderResult:
        """PATCH /v2/orders/{id} with the stop's new qty, prices, time in force and
        ``client_order_id``; returns the new order (the old one ends ``replaced``).

        At most once, like ``submit_order``: no retry; a reply that may have been
        lost is looked up by the new client order id (found: returned; the lookup
        fails: ``OrderUncertain``; not there: ``OrderNotReceived``). A 4xx raises
        ``OrderRejected`` (422: the old order is filled or canceled already)."""
        body = replace_body(intent)
        path = f"/v2/orders/{quote(broker_order_id, safe='')}"
        try:
            reply = self._http.patch(path, body, retry=False, timeout_seconds=self._order_timeout_seconds)
            return parse_order(reply)
        except ServiceRefused as refused:
            raise OrderRejected(self.name, refused.detail, refused.status_code) from None
        except ServiceDown as down:
            if not down.may_have_arrived:
                raise ServiceUnavailable(self.name, f"replacement {intent.client_order_id} not sent: {down.message}") from None
            doubt = down.message
        except BadResponse as exc:
            if exc.status_code is not None and not 200 <= exc.status_code < 300:
                raise OrderRejected(self.name, exc.message, exc.status_code) from None
            doubt = exc.message
        missing = OrderNotReceived(self.name, f"replacement {intent.client_order_id} did not arrive ({doubt})")
        return self._look_up(intent, f"may have replaced its order ({doubt})", missing)

    def min_order_notional(self, symbol: str, price: Decimal) -> Decimal:
        """The smallest order value in USD the broker takes for ``symbol`` at ``price``.

        Stocks: $1. Crypto: the pair's ``min_order_size`` (GET /v2/assets/BTC%2FUSD,
        read once per instance) times ``price``, rounded up to the cent, and never
        under $1. Never raises: when the asset cannot be read it answers
        ``CRYPTO_FALLBACK_MIN_NOTIONAL_USD`` (not cached, so a later call tries again).
        """
        if not is_crypto(symbol):
            return STOCK_MIN_NOTIONAL_USD
        min_size = self._crypto_min_order_size(normalize_symbol(symbol))
        if min_size is None:
            return CRYPTO_FALLBACK_MIN_NOTIONAL_USD
        return max(STOCK_MIN_NOTIONAL_USD, (min_size * price).quantize(CENT, rounding=ROUND_UP))

    def load_order_minimums(self, symbols: Sequence[str]) -> None:
        """Read the crypto pairs' minimums now (one GET /v2/assets each, at once), so
        that sizing an order later costs no round trip. Never raises."""
        pairs = [normalize_symbol(s) for s in symbols if is_crypto(s)]
        gather({pair: (lambda pair=pair: self._crypto_min_order_size(pair)) for pair in pairs if pair not in self._min_order_size})

    # -- internals -----------------------------------------------------------

    def _post_order(self, body: dict[str, str]) -> OrderResult:
        """One POST, no retry. Raises ``OrderRejected``/``DuplicateOrder``, ``RateLimited``,
        ``ServiceDown``, or ``_MayHaveArrived`` for a 2xx we cannot read."""
        try:
            reply = self._http.post("/v2/orders", body, retry=False, timeout_seconds=self._order_timeout_seconds)
        except ServiceRefused as refused:
            raise _rejection(refused) from None
        except BadResponse as exc:
            if exc.status_code is not None and 200 <= exc.status_code < 300:
                raise _MayHaveArrived(exc.message) from None
            raise OrderRejected(self.name, exc.message, exc.status_code) from None  # e.g. a redirect: not placed
        try:
            return parse_order(reply)
        except BadResponse as exc:
            raise _MayHaveArrived(f"unreadable order reply: {exc.message}") from None

    def _existing_order(self, intent: OrderIntent, duplicate: DuplicateOrder) -> OrderResult:
        """The order a duplicate 422 points at; ``OrderUncertain`` when it cannot be read."""
        cid = intent.client_order_id
        missing = OrderUncertain(self.name, f"order {cid}: {duplicate.message}, yet the broker cannot find it")
        return self._look_up(intent, f"is at the broker ({duplicate.message})", missing)

    def _look_up(self, intent: OrderIntent, context: str, missing: ServiceError) -> OrderResult:
        """This intent's order at the broker. ``OrderUncertain`` when the lookup
        fails, ``missing`` when the broker has no such order."""
        try:
            found = self.get_order_by_client_id(intent.client_order_id)
        except ServiceError as exc:
            raise OrderUncertain(self.name, f"order {intent.client_order_id} {context}; lookup failed: {exc.message}") from None
        if found is None:
            raise missing
        return self._same_order_or_raise(intent, found)

    def _same_order_or_raise(self, intent: OrderIntent, found: OrderResult) -> OrderResult:
        """Return ``found`` if it is this intent's order; a different order under the same id is a duplicate."""
        if found.symbol == normalize_symbol(intent.symbol) and found.side == intent.side:
            return found
        raise DuplicateOrder(
            self.name,
            f"client_order_id {intent.client_order_id} already used by a {found.side} {found.symbol} order",
            422,
        )

    def _crypto_min_order_size(self, symbol: str) -> Decimal | None:
        if symbol not in self._min_order_size:
            try:
                asset = self._http.get(f"/v2/assets/{quote(symbol, safe='')}", retry=False)
                self._min_order_size[symbol] = _decimal(_expect(asset, dict, "asset"), "min_order_size")
            except ServiceError:
                return None
        return self._min_order_size[symbol]


# -- request and reply shapes (pure functions) ----------------------------------


def order_body(intent: OrderIntent) -> dict[str, str]:
    """The JSON Alpaca wants for a market order: exactly one of ``notional`` / ``qty``, as strings;
    for a stop, also its ``stop_price`` (and ``limit_price`` for a stop-limit).

    ``notional`` is rounded down to the cent, ``qty`` down to 9 decimals.
    Raises ``OrderRejected`` (status ``None``) when the intent has neither,
    both, or a size that rounds to nothing, or a stop without its prices or
    by notional: such an order is never sent.
    """
    has_notional, has_qty = intent.notional_usd is not None, intent.qty is not None
    if has_notional == has_qty:
        raise OrderRejected("alpaca", f"order {intent.client_order_id}: needs exactly one of notional_usd or qty")
    body = {
        "symbol": intent.symbol,
        "side": intent.side,
        "type": intent.order_type,
        "time_in_force": intent.time_in_force or ("gtc" if is_crypto(intent.symbol) else "day"),
        "client_order_id": intent.client_order_id,
    }
    if intent.order_type != "market":
        body |= _stop_prices(intent)
        if has_notional:
            raise OrderRejected("alpaca", f"order {intent.client_order_id}: a {intent.order_type} order goes by qty")
    if has_notional:
        notional = to_cents(intent.notional_usd)
        if notional <= 0:
            raise OrderRejected("alpaca", f"order {intent.client_order_id}: notional {intent.notional_usd} is not positive")
        body["notional"] = f"{notional:.2f}"
    else:
        qty = to_qty(intent.qty)
        if qty <= 0:
            raise OrderRejected("alpaca", f"order {intent.client_order_id}: qty {intent.qty} is not positive")
        body["qty"] = format(qty.normalize(), "f")
    return body


def replace_body(intent: OrderIntent) -> dict[str, str]:
    """The JSON of a PATCH that turns an open stop into ``intent``: qty, prices,
    time in force and the new client order id, as strings."""
    qty = to_qty(intent.qty or Decimal(0))
    if qty <= 0:
        raise OrderRejected("alpaca", f"replacement {intent.client_order_id}: qty {intent.qty} is not positive")
    return {"qty": format(qty.normalize(), "f"), **_stop_prices(intent),
            "time_in_force": intent.time_in_force or ("gtc" if is_crypto(intent.symbol) else "day"),
            "client_order_id": intent.client_order_id}


def _stop_prices(intent: OrderIntent) -> dict[str, str]:
    if intent.order_type not in ("stop", "stop_limit") or intent.stop_price is None or intent.stop_price <= 0:
        raise OrderRejected("alpaca", f"order {intent.client_order_id}: a {intent.order_type} order needs a positive stop_price")
    prices = {"stop_price": format(intent.stop_price.normalize(), "f")}
    if intent.order_type == "stop_limit":
        if intent.limit_price is None or intent.limit_price <= 0:
            raise OrderRejected("alpaca", f"order {intent.client_order_id}: a stop_limit order needs a positive limit_price")
        prices["limit_price"] = format(intent.limit_price.normalize(), "f")
    return prices


def parse_order(data: Any) -> OrderResult:
    """An Alpaca order object as an ``OrderResult``. Raises ``BadResponse`` if it is not one."""
    data = _expect(data, dict, "order")
    return OrderResult(
        client_order_id=_text(data, "client_order_id"),
        broker_order_id=_text(data, "id"),
        status=_text(data, "status"),
        symbol=normalize_symbol(str(data.get("symbol") or "")),
        side=str(data.get("side") or ""),
        filled_qty=_optional_decimal(data, "filled_qty"),
        filled_avg_price=_optional_decimal(data, "filled_avg_price"),
        qty=_optional_decimal(data, "qty"),
        submitted_at=data.get("submitted_at"),
        filled_at=data.get("filled_at"),
        order_type=str(data.get("type") or data.get("order_type") or ""),
        stop_price=_optional_decimal(data, "stop_price"),
        limit_price=_optional_decimal(data, "limit_price"),
        time_in_force=str(data.get("time_in_force") or ""),
    )


def _rejection(refused: ServiceRefused) -> OrderRejected:
    """A 4xx on an order: ``DuplicateOrder`` when the client order id was seen before."""
    detail = refused.detail
    lowered = detail.lower()
    if refused.status_code == 422 and "client_order_id" in lowered and any(
        word in lowered for word in ("unique", "duplicate", "already", "used")
    ):
        return DuplicateOrder("alpaca", detail, refused.status_code)
    return OrderRejected("alpaca", detail, refused.status_code)


def _expect(value: Any, kind: type, what: str) -> Any:
    if not isinstance(value, kind):
        raise BadResponse("alpaca", f"{what} reply is not a JSON {'object' if kind is dict else 'list'}")
    return value


def _text(data: dict, key: str) -> str:
    value = data.get(key)
    if value is None or value == "":
        raise BadResponse("alpaca", f"reply lacks {key!r}")
    return str(value)


def _decimal(data: dict, key: str) -> Decimal:
    """``data[key]`` (a string like ``"187.21"``, or a number) as a Decimal. Raises ``BadResponse``."""
    number = _optional_decimal(data, key)
    if number is None:
        raise BadResponse("alpaca", f"reply lacks {key!r}")
    return number


def _optional_decimal(data: dict, key: str) -> Decimal | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise BadResponse("alpaca", f"{key!r} is not a number: {str(value)[:40]!r}") from None
    if not number.is_finite():
        raise BadResponse("alpaca", f"{key!r} is not a finite number")
    return number
