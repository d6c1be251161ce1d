"""Finnhub stock quotes (``ports.QuoteSource``) and company news (``ports.NewsSource``).

The key travels in the ``X-Finnhub-Token`` header, never in a URL, so it
cannot leak into a log line or an exception that quotes the address.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from tradecycle.infra.errors import BadResponse, ServiceError
from tradecycle.models import is_crypto, NewsItem, Quote
from tradecycle.infra.parallel import MAX_WORKERS, gather
from tradecycle.connectors.http import HttpClient, HttpSettings

SERVICE = "finnhub"


def _client(base_url: str, api_key: str, http: HttpSettings) -> HttpClient:
    """Finnhub's free quota is 60 calls a minute and its 429 says no more: a 429
    is not retried inside the cycle (the cached price is used instead)."""
    settings = replace(http, secrets=tuple(dict.fromkeys((*http.secrets, api_key))))
    return HttpClient(SERVICE, base_url, settings, {"X-Finnhub-Token": api_key}, retry_unexplained_429=False)


class FinnhubQuotes:
    """Latest trade prices, one GET /quote per symbol, sent concurrently."""

    name = SERVICE

    def __init__(self, base_url: str, api_key: str, http: HttpSettings, max_workers: int = MAX_WORKERS):
        self._http = _client(base_url, api_key, http)
        self._max_workers = max(1, max_workers)

    @property
    def calls(self) -> int:
        return self._http.calls

    def get_quotes(self, symbols: Sequence[str]) -> dict[str, Quote | Exception]:
        """One entry per symbol: a ``Quote``, or the ``ServiceError`` that kept it from us.

        Never raises for a service problem: a symbol Finnhub does not know
        (its all-zero reply) maps to ``BadResponse``, a 429 to ``RateLimited``,
        an unreachable service to ``ServiceUnavailable``, each per symbol.
        At most ``max_workers`` requests are in flight at once.
        """
        unique = list(dict.fromkeys(symbols))
        if not unique:
            return {}
        results = gather({s: (lambda s=s: self._quote_or_error(s)) for s in unique}, max_workers=self._max_workers)
        return {s: results[s] for s in unique}

    def _quote_or_error(self, symbol: str) -> Quote | ServiceError:
        try:
            return parse_quote(symbol, self._http.get("/quote", params={"symbol": symbol}))
        except ServiceError as exc:
            return exc


class FinnhubNews:
    """Company headlines from GET /company-news."""

    name = SERVICE

    def __init__(self, base_url: str, api_key: str, http: HttpSettings, max_items: int = 5):
        self._http = _client(base_url, api_key, http)
        self._max_items = max_items

    @property
    def calls(self) -> int:
        return self._http.calls

    def covers(self, symbol: str) -> bool:
        """Finnhub has company news for stocks only: crypto costs no call."""
        return not is_crypto(symbol)

    def get_news(self, symbol: str, since: datetime) -> list[NewsItem]:
        """Up to ``max_items`` headlines for ``symbol`` published at or after ``since``, newest first.

        Finnhub filters by whole days (``from`` = the UTC date of ``since``,
        ``to`` = today, UTC); the exact cut is made here. A naive ``since`` is
        taken as UTC. Items without a headline or a time are skipped. Raises
        ``ServiceError`` (``BadResponse`` when the reply is not a list).
        Company news exists for stocks only.
        """
        since = since if since.tzinfo else since.replace(tzinfo=UTC)
        params = {
            "symbol": symbol,
            "from": since.astimezone(UTC).date().isoformat(),
            "to": datetime.now(UTC).date().isoformat(),
        }
        reply = self._http.get("/company-news", params=params)
        if not isinstance(reply, list):
            raise BadResponse(SERVICE, f"company-news reply for {symbol} is not a list")
        items = [item for item in (parse_news_item(symbol, raw) for raw in reply) if item is not None]
        fresh = [item for item in items if item.published_at >= since]
        fresh.sort(key=lambda item: item.published_at, reverse=True)
        return fresh[: self._max_items]


def parse_quote(symbol: str, data: Any) -> Quote:
    """A Finnhub /quote reply as a ``Quote``.

    Raises ``BadResponse`` for the all-zero reply Finnhub gives an unknown
    symbol (``c == 0`` or ``t == 0``: "no quote", never a price of zero) and
    for any reply that is not a quote.
    """
    try:
        price, timestamp = data["c"], data["t"]
        if not price or not timestamp:
            raise BadResponse(SERVICE, f"no quote for {symbol} (unknown symbol?)")
        quote_price = Decimal(str(price))
        if not quote_price.is_finite() or quote_price <= 0:
            raise BadResponse(SERVICE, f"no quote for {symbol} (price {price!r})")
        change_percent, previous_close = data.get("dp"), data.get("pc")
        return Quote(
            symbol=symbol,
            price=quote_price,
            as_of=datetime.fromtimestamp(timestamp, UTC),
            source=SERVICE,
            change_percent=Decimal(str(change_percent)) if change_percent is not None else None,
            previous_close=Decimal(str(previous_close)) if previous_close is not None else None,
        )
    except (KeyError, TypeError, ValueError, InvalidOperation, OverflowError, OSError):
        raise BadResponse(SERVICE, f"unreadable quote for {symbol}") from None


def parse_news_item(symbol: str, raw: Any) -> NewsItem | None:
    """One company-news entry as a ``NewsItem``; ``None`` if it lacks a headline or a usable time."""
    if not isinstance(raw, dict):
        return None
    headline = str(raw.get("headline") or "").strip()
    try:
        published_at = datetime.fromtimestamp(raw["datetime"], UTC)
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        return None
    if not headline:
        return None
    url = str(raw.get("url") or "")
    source_id = raw.get("id")
    return NewsItem(
        symbol=symbol,
        headline=headline,
        published_at=published_at,
        source=str(raw.get("source") or ""),
        summary=str(raw.get("summary") or ""),
        url=url,
        news_id=str(source_id) if source_id not in (None, "", 0) else (url or headline),
    )
