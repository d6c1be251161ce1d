"""Alpaca's market data API as a ``ports.QuoteSource`` and ``ports.BarSource``.

Latest prices for every stock symbol come from one snapshots call
(``GET /v2/stocks/snapshots``) and for every crypto pair from another
(``GET /v1beta3/crypto/us/snapshots``), so 15 symbols cost 2 calls a cycle.
A snapshot also carries the day's bar so far (``dailyBar``: its volume is
today's volume) and the previous day's bar (its close is the previous close).
Daily bars come from ``/v2/stocks/bars`` and ``/v1beta3/crypto/us/bars``,
all symbols of a class in one call, following ``next_page_token``.

Stocks always ask for ``feed=iex``: the free plan refuses recent SIP data
(403 "subscription does not permit querying recent SIP data"), and the IEX
volume of today is then compared with IEX volumes of earlier days. Crypto data
needs no key. Numbers come as JSON numbers; they become ``Decimal`` here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from tradecycle.infra.errors import BadResponse, ServiceError
from tradecycle.models import DailyBar, Quote, is_crypto
from tradecycle.infra.times import parse_iso
from tradecycle.connectors.http import HttpClient, HttpSettings

SERVICE = "alpaca-data"
DATA_URL = "https://data.alpaca.markets"
STOCK_FEED = "iex"
PAGE_LIMIT = 10000  # bars per page, Alpaca's maximum (the limit counts across all symbols)
MAX_PAGES = 20  # a guard against a server that never stops paging


def data_client(data_url: str, key_id: str, secret_key: str, http: HttpSettings) -> HttpClient:
    """The HTTP client of Alpaca's market data API: the keys in headers (and masked), none when unset."""
    headers = {"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret_key} if key_id else {}
    settings = replace(http, secrets=tuple(dict.fromkeys((*http.secrets, key_id, secret_key)))) if key_id else http
    return HttpClient(SERVICE, data_url, settings, headers)


class AlpacaMarketData:
    """Snapshots and daily bars for stocks and crypto pairs, batched per asset class."""

    name = "alpaca"

    def __init__(self, data_url: str, key_id: str, secret_key: str, http: HttpSettings):
        self._http = data_client(data_url, key_id, secret_key, http)

    @property
    def calls(self) -> int:
        """HTTP requests sent so far (for tests and ``check --online``)."""
        return self._http.calls

    # -- quotes ------------------------------------------------------------------

    def get_quotes(self, symbols: Sequence[str]) -> dict[str, Quote | Exception]:
        """One entry per symbol: a ``Quote`` (with today's bar), or the error that
        kept it from us. One call per asset class present; when a call fails,
        each of its symbols maps to that error. A symbol missing from the reply
        (unknown, or no trade on IEX) maps to ``BadResponse`` "no quote"."""
        symbols = list(dict.fromkeys(symbols))
        results: dict[str, Quote | Exception] = {}
        for group, fetch in ((_stocks(symbols), self._stock_snapshots), (_crypto(symbols), self._crypto_snapshots)):
            if not group:
                continue
            try:
                snapshots = fetch(group)
            except ServiceError as exc:
                results.update(dict.fromkeys(group, exc))
                continue
            for symbol in group:
                try:
                    results[symbol] = parse_snapshot(symbol, snapshots.get(symbol))
                except BadResponse as exc:
                    results[symbol] = exc
        return {symbol: results[symbol] for symbol in symbols}

    def _stock_snapshots(self, symbols: list[str]) -> dict:
        reply = self._http.get("/v2/stocks/snapshots", params={"symbols": ",".join(symbols), "feed": STOCK_FEED})
        return _object(reply, "stock snapshots")

    def _crypto_snapshots(self, symbols: list[str]) -> dict:
        reply = _object(self._http.get("/v1beta3/crypto/us/snapshots", params={"symbols": ",".join(symbols)}), "crypto snapshots")
        return _object(reply.get("snapshots") or {}, "crypto snapshots")

    # -- daily bars --------------------------------------------------------------

    def get_daily_bars(self, symbols: Sequence[str], days: int, now: datetime) -> dict[str, list[DailyBar]]:
        """The last ``days`` daily bars per symbol, oldest first; one call per asset
        class (more only if Alpaca pages the reply). Raises ``ServiceError``."""
        symbols = list(dict.fromkeys(symbols))
        found: dict[str, list[DailyBar]] = {symbol: [] for symbol in symbols}
        stocks, crypto = _stocks(symbols), _crypto(symbols)
        if stocks:
            # Weekends and holidays: about 7 calendar days for 5 sessions, and some slack.
            start = (now - timedelta(days=days * 7 // 5 + 10)).date().isoformat()
            params = {"symbols": ",".join(stocks), "timeframe": "1Day", "start": start, "feed": STOCK_FEED,
                      "adjustment": "split"}
            found.update(self._bars("/v2/stocks/bars", params, stocks))
        if crypto:
            start = (now - timedelta(days=days + 2)).date().isoformat()
            params = {"symbols": ",".join(crypto), "timeframe": "1Day", "start": start}
            found.update(self._bars("/v1beta3/crypto/us/bars", params, crypto))
        return {symbol: bars[-days:] for symbol, bars in found.items()}

    def _bars(self, path: str, params: dict[str, str], symbols: list[str]) -> dict[str, list[DailyBar]]:
        bars: dict[str, dict[str, DailyBar]] = {symbol: {} for symbol in symbols}
        token = None
        for _ in range(MAX_PAGES):
            page = _object(self._http.get(path, params={**params, "limit": str(PAGE_LIMIT),
                                                        **({"page_token": token} if token else {})}), "bars")
            for symbol, rows in _object(page.get("bars") or {}, "bars").items():
                if symbol not in bars or not isinstance(rows, list):
                    continue
                for row in rows:
                    bar = parse_bar(row, f"{symbol} bar")
                    bars[symbol][bar.day] = bar
            token = page.get("next_page_token")
            if not token:
                break
        return {symbol: [by_day[day] for day in sorted(by_day)] for symbol, by_day in bars.items()}


def parse_snapshot(symbol: str, snapshot: Any) -> Quote:
    """One symbol's snapshot as a ``Quote``: the latest trade's price and time,
    the change vs the previous day's close, and today's bar so far.

    Raises ``BadResponse`` "no quote" without a usable latest trade (a price
    whose time is unknown must never drive a trade)."""
    if not isinstance(snapshot, dict):
        raise BadResponse(SERVICE, f"no quote for {symbol} (unknown symbol, or no trade on the feed)")
    trade = snapshot.get("latestTrade")
    if not isinstance(trade, dict):
        raise BadResponse(SERVICE, f"no quote for {symbol}: the snapshot has no latest trade")
    price = _number(trade, "p", f"{symbol} latest trade")
    if price <= 0:
        raise BadResponse(SERVICE, f"no quote for {symbol}: latest trade price {price}")
    as_of = _time(trade, f"{symbol} latest trade")
    previous = snapshot.get("prevDailyBar")
    previous_close = _number(previous, "c", f"{symbol} previous daily bar") if isinstance(previous, dict) else None
    today = snapshot.get("dailyBar")
    change = None
    if previous_close:
        change = ((price / previous_close - 1) * 100).quantize(Decimal("0.01"))
    return Quote(
        symbol=symbol,
        price=price,
        as_of=as_of,
        source="alpaca",
        change_percent=change,
        previous_close=previous_close,
        today=parse_bar(today, f"{symbol} daily bar") if isinstance(today, dict) else None,
    )


def parse_bar(row: Any, what: str) -> DailyBar:
    """``{"t": "2022-03-18T04:00:00Z", "o", "h", "l", "c", "v", ...}`` as a ``DailyBar``
    (its day is the date of ``t``: a session's bar starts at its midnight, New York time)."""
    if not isinstance(row, dict):
        raise BadResponse(SERVICE, f"{what} is not a JSON object")
    day = _time(row, what).date().isoformat()
    o, h, l, c, v = (_number(row, key, what) for key in ("o", "h", "l", "c", "v"))
    return DailyBar(day, o, h, l, c, v)


def _stocks(symbols: list[str]) -> list[str]:
    return [s for s in symbols if not is_crypto(s)]


def _crypto(symbols: list[str]) -> list[str]:
    return [s for s in symbols if is_crypto(s)]


def _object(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise BadResponse(SERVICE, f"{what} reply is not a JSON object")
    return value


def _number(data: dict, key: str, what: str) -> Decimal:
    value = data.get(key)
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        number = None
    if value is None or isinstance(value, bool) or number is None or not number.is_finite():
        raise BadResponse(SERVICE, f"{what}: {key!r} is not a number")
    return number


def _time(data: dict, what: str) -> datetime:
    try:
        moment = parse_iso(str(data["t"]))
    except (KeyError, ValueError):
        raise BadResponse(SERVICE, f"{what}: unreadable time 't'") from None
    if moment.tzinfo is None:
        raise BadResponse(SERVICE, f"{what}: time 't' has no time zone")
    return moment
