"""Finnhub (API_NOTES.md, "Finnhub"): /quote (the all-zero quote for an unknown
symbol), /company-news (newest first), /stock/candle refused (403 on the free
plan), the token in the header or the query, and ``{"error": ...}`` bodies."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from .common import RecordedRequest, Reply, _dec

_FINNHUB_ERRORS = {
    401: "Invalid API key",
    403: "You don't have access to this resource.",
    422: "Wrong symbol",
    429: "API limit reached. Please try again later. Remaining Limit: 0",
    500: "Internal server error",
}


class FinnhubMixin:
    """Quotes and company news of ``FakeServices``."""

    @staticmethod
    def _quote_from_price(symbol: str, price: Any, t: int | None = None) -> dict[str, Any]:
        c = _dec(price)
        pc = (c / Decimal("1.01")).quantize(Decimal("0.01"))
        d = c - pc
        return {
            "c": float(c),
            "d": float(d),
            "dp": round(float(d / pc * 100), 4) if pc else None,
            "h": float((c * Decimal("1.005")).quantize(Decimal("0.01"))),
            "l": float((pc * Decimal("0.995")).quantize(Decimal("0.01"))),
            "o": float(pc),
            "pc": float(pc),
            "t": t,
        }

    def add_news(self, symbol: str, headline: str, *, summary: str | None = None, hours_ago: float = 1.0,
                 datetime_: int | None = None, source: str = "Reuters", url: str | None = None,
                 category: str = "company") -> dict[str, Any]:
        """Add a Finnhub company-news item (``datetime`` in unix seconds; newest served first)."""
        with self.lock:
            self._news_ids += 1
            item = {
                "category": category,
                "datetime": int(datetime_ if datetime_ is not None else time.time() - hours_ago * 3600),
                "headline": headline,
                "id": self._news_ids,
                "image": "",
                "related": symbol,
                "source": source,
                "summary": summary if summary is not None else f"{headline}. More details inside.",
                "url": url or f"https://news.example.com/{symbol.lower()}/{self._news_ids}",
            }
            self.news.setdefault(symbol, []).append(item)
        return item

    def _finnhub(self, req: RecordedRequest) -> Reply:
        header_token = req.headers.get("X-Finnhub-Token")
        query_token = req.query.get("token")
        req.token_via = "header" if header_token else ("query" if query_token else None)
        if self.require_auth:
            token = header_token or query_token
            if not token or (self.finnhub_token and token != self.finnhub_token):
                return Reply(401, {"error": "Invalid API key" if token else "Please use an API key."})
        if req.method != "GET":
            return Reply(405, {"error": "Method not allowed"})
        if req.subpath == "/quote":
            symbol = req.query.get("symbol", "").upper()
            if not symbol:
                return Reply(422, {"error": "Symbol required"})
            with self.lock:
                quote = self.quotes.get(symbol)
                quote = dict(quote) if quote else None
            if quote is None:
                return Reply(200, {"c": 0, "d": None, "dp": None, "h": 0, "l": 0, "o": 0, "pc": 0, "t": 0})
            if quote.get("t") is None:
                quote["t"] = int(self.time_source())
            return Reply(200, quote)
        if req.subpath == "/company-news":
            symbol = req.query.get("symbol", "").upper()
            try:
                start = date.fromisoformat(req.query["from"])
                end = date.fromisoformat(req.query["to"])
            except (KeyError, ValueError):
                return Reply(422, {"error": "Wrong date format. Please use YYYY-MM-DD."})
            # one day of slack each side: clients compute "today" in their own time zone
            lo = datetime.combine(start - timedelta(days=1), datetime.min.time(), timezone.utc).timestamp()
            hi = datetime.combine(end + timedelta(days=2), datetime.min.time(), timezone.utc).timestamp()
            with self.lock:
                items = [dict(i) for i in self.news.get(symbol, []) if lo <= i["datetime"] < hi]
            items.sort(key=lambda i: i["datetime"], reverse=True)
            return Reply(200, items)
        if req.subpath.startswith("/stock/candle"):
            return Reply(403, {"error": "You don't have access to this resource."})
        return Reply(404, {"error": "Not found"})
