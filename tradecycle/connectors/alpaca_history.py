"""Alpaca's historical market data for ``tradecycle backtest``: bars of many
symbols a call and news, both following ``next_page_token`` (API_NOTES.md,
"Historical market data").

- Bars: ``GET /v2/stocks/bars`` (``feed=iex``, split-adjusted) and
  ``GET /v1beta3/crypto/us/bars``, every symbol of an asset class in one call
  (``limit`` counts bars across symbols; a symbol with no bars is missing).
  A bar's ``t`` is when it **opens**.
- News: ``GET /v1beta1/news``, 50 a page, oldest first; ``created_at`` is when
  an item was published. Coins are named without the slash there (``BTCUSD``).

Rows come back as text (prices as the JSON numbers were written), for the
backtest to keep in its database; nothing here knows about backtest time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from tradecycle.connectors.alpaca_data import SERVICE, data_client
from tradecycle.connectors.http import HttpSettings
from tradecycle.infra.errors import BadResponse
from tradecycle.infra.times import iso
from tradecycle.models import is_crypto

BARS_LIMIT = 10000
NEWS_LIMIT = 50
MAX_PAGES = 2000  # a guard against a server that never stops paging
TIMEFRAMES = {"1d": "1Day", "1h": "1Hour", "15m": "15Min", "1m": "1Min"}


class AlpacaHistory:
    name = "alpaca"

    def __init__(self, data_url: str, key_id: str, secret_key: str, http: HttpSettings):
        self._http = data_client(data_url, key_id, secret_key, http)

    @property
    def calls(self) -> int:
        return self._http.calls

    def bars(self, symbols: Sequence[str], timeframe: str, start: datetime, end: datetime) -> dict[str, list[tuple]]:
        """symbol -> [(opens_at, open, high, low, close, volume)] oldest first, every symbol
        asked for (empty when Alpaca has none). One call per asset class per page."""
        found: dict[str, dict[str, tuple]] = {s: {} for s in symbols}
        stocks = [s for s in symbols if not is_crypto(s)]
        crypto = [s for s in symbols if is_crypto(s)]
        window = {"timeframe": timeframe, "start": iso(start), "end": iso(end), "limit": str(BARS_LIMIT)}
        for path, group, extra in (("/v2/stocks/bars", stocks, {"feed": "iex", "adjustment": "split"}),
                                   ("/v1beta3/crypto/us/bars", crypto, {})):
            if not group:
                continue
            for page in self._pages(path, {"symbols": ",".join(group), **window, **extra}):
                bars = page.get("bars") or {}
                if not isinstance(bars, dict):
                    raise BadResponse(SERVICE, "bars reply: 'bars' is not an object")
                for symbol, rows in bars.items():
                    if symbol in found and isinstance(rows, list):
                        for row in rows:
                            bar = _bar(row, symbol)
                            found[symbol][bar[0]] = bar
        return {s: [by_time[t] for t in sorted(by_time)] for s, by_time in found.items()}

    def news(self, symbols: Sequence[str], start: datetime, end: datetime) -> list[tuple]:
        """[(symbol, news_id, headline, summary, publisher, url, published_at)] for every
        symbol of ours an item names, oldest first."""
        names = {s.replace("/", ""): s for s in symbols}
        params = {"symbols": ",".join(names), "start": iso(start), "end": iso(end), "limit": str(NEWS_LIMIT),
                  "sort": "asc", "include_content": "false"}
        rows = []
        for page in self._pages("/v1beta1/news", params):
            items = page.get("news") or []
            if not isinstance(items, list):
                raise BadResponse(SERVICE, "news reply: 'news' is not a list")
            for item in items:
                if not isinstance(item, dict) or not item.get("headline") or not item.get("created_at"):
                    continue
                for name in item.get("symbols") or []:
                    symbol = names.get(str(name).replace("/", ""))
                    if symbol:
                        rows.append((symbol, str(item.get("id")), str(item["headline"]), str(item.get("summary") or ""),
                                     str(item.get("source") or ""), str(item.get("url") or ""), str(item["created_at"])))
        return rows

    def _pages(self, path: str, params: dict[str, str]):
        token = None
        for _ in range(MAX_PAGES):
            page = self._http.get(path, params={**params, **({"page_token": token} if token else {})})
            if not isinstance(page, dict):
                raise BadResponse(SERVICE, f"{path} reply is not a JSON object")
            yield page
            token = page.get("next_page_token")
            if not token:
                return
        raise BadResponse(SERVICE, f"{path}: more than {MAX_PAGES} pages")


def _bar(row: Any, symbol: str) -> tuple:
    if not isinstance(row, dict) or not isinstance(row.get("t"), str):
        raise BadResponse(SERVICE, f"{symbol} bar is not an object with a time 't'")
    try:
        values = tuple(str(row[key]) for key in ("o", "h", "l", "c", "v"))
    except KeyError as exc:
        raise BadResponse(SERVICE, f"{symbol} bar at {row['t']}: no {exc.args[0]!r}") from None
    return (row["t"], *values)
