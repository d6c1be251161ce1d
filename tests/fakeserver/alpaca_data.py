"""Alpaca market data (API_NOTES.md, "Historical market data"): stock and crypto
snapshots and daily bars with page tokens, the free plan's IEX feed (SIP refused
with 403), and a deterministic default daily history."""

from __future__ import annotations

import base64
import math
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from .common import NEW_YORK, RecordedRequest, Reply, _dec, _is_crypto, _rfc3339

SIP_REFUSAL = "subscription does not permit querying recent SIP data"  # Alpaca's free plan, feed=sip
DEFAULT_BAR_DAYS = 80


class AlpacaDataMixin:
    """Snapshots and daily bars of ``FakeServices``."""

    def set_daily_bars(self, symbol: str, rows: list[tuple[Any, Any, Any, Any, Any]], *,
                       last_day: date | None = None) -> list[dict[str, Any]]:
        """Serve these (open, high, low, close, volume) rows as ``symbol``'s daily bars, oldest
        first, the newest dated ``last_day`` (default: yesterday, New York time). Stock bars fall
        on weekdays and start at midnight New York time; crypto bars on every day."""
        day = last_day or (datetime.now(NEW_YORK).date() - timedelta(days=1))
        crypto = _is_crypto(symbol)
        days: list[date] = []
        while len(days) < len(rows):
            if crypto or day.weekday() < 5:
                days.append(day)
            day -= timedelta(days=1)
        bars = []
        for on, (o, h, l, c, v) in zip(reversed(days), rows):
            midnight = datetime(on.year, on.month, on.day, tzinfo=NEW_YORK if not crypto else timezone.utc)
            bars.append({"t": _rfc3339(midnight), "o": float(o), "h": float(h), "l": float(l), "c": float(c),
                         "v": float(v) if crypto else int(v), "n": 1000 + len(bars), "vw": float(c)})
        with self.lock:
            self.daily_bars[symbol] = bars
        return bars

    def _alpaca_data(self, req: RecordedRequest) -> Reply:
        """Snapshots and daily bars, stocks (``/v2/stocks/...``, keys required, IEX feed on the
        free plan) and crypto (``/v1beta3/crypto/us/...``, no key needed)."""
        stocks = req.subpath.startswith("/v2/stocks/")
        if (stocks or req.subpath == "/v1beta1/news") and self.require_auth:
            key, secret = req.headers.get("APCA-API-KEY-ID"), req.headers.get("APCA-API-SECRET-KEY")
            if (not key or not secret or (self.alpaca_key_id and key != self.alpaca_key_id)
                    or (self.alpaca_secret_key and secret != self.alpaca_secret_key)):
                return Reply(401, {"code": 40110000, "message": "request is not authorized"})
        if req.method != "GET":
            return self._alpaca_error(405, "method not allowed", 40510000)
        symbols = [s.strip().upper() for s in req.query.get("symbols", "").split(",") if s.strip()]
        feed = req.query.get("feed")
        if stocks and (feed == "sip" or (feed is None and req.subpath == "/v2/stocks/bars")):
            # The free plan: SIP data of the last 15 minutes is refused (bars default to SIP, up to now).
            return Reply(403, {"message": SIP_REFUSAL})
        if stocks and feed not in (None, "iex", "sip", "delayed_sip", "otc"):
            return Reply(400, {"code": 40010001, "message": f"invalid feed: {feed}"})
        if req.subpath in ("/v2/stocks/snapshots", "/v1beta3/crypto/us/snapshots"):
            if not symbols:
                return Reply(400, {"code": 40010001, "message": "missing symbols"})
            with self.lock:
                found = {s: self.snapshot(s) for s in symbols if s in self.prices and _is_crypto(s) != stocks}
            return Reply(200, found if stocks else {"snapshots": found})
        if req.subpath in ("/v2/stocks/bars", "/v1beta3/crypto/us/bars"):
            return self._alpaca_bars(req, symbols, stocks)
        if req.subpath == "/v1beta1/news":
            return self._alpaca_news_page(req, symbols)
        return self._alpaca_error(404, "endpoint not found", 40410000)

    def snapshot(self, symbol: str) -> dict[str, Any]:
        """Alpaca's snapshot of one symbol: latest trade and quote at ``prices[symbol]`` (as of the
        Finnhub quote's or CoinGecko coin's pinned time, else now), the minute bar, today's bar
        (volume ``day_volumes``) and the previous daily bar (the last of ``daily_bars``)."""
        price = _dec(self.prices[symbol])
        crypto = _is_crypto(symbol)
        pinned = (self.coins.get(self.coin_ids.get(symbol, ""), {}).get("last_updated_at") if crypto
                  else (self.quotes.get(symbol) or {}).get("t"))
        now = datetime.fromtimestamp(pinned, timezone.utc) if pinned else datetime.now(timezone.utc)
        bars = self.daily_bars.get(symbol) or []
        previous = dict(bars[-1]) if bars else None
        day_open = _dec(previous["c"]) if previous else price
        today = now.astimezone(timezone.utc if crypto else NEW_YORK).date()
        midnight = datetime(today.year, today.month, today.day, tzinfo=timezone.utc if crypto else NEW_YORK)
        volume = self.day_volumes.get(symbol, 1_000.0 if crypto else 1_500_000)
        spread = price * Decimal("0.0002")
        trade = {"t": _rfc3339(now), "p": float(price), "s": 0.0125 if crypto else 100, "i": 52983525029461}
        quote = {"t": _rfc3339(now), "bp": float(price - spread), "bs": 1.2 if crypto else 2,
                 "ap": float(price + spread), "as": 0.8 if crypto else 3}
        if not crypto:
            trade.update(x="V", c=["@"], z="C")
            quote.update(bx="V", ax="V", c=["R"], z="C")
        else:
            trade["tks"] = "B"
        minute = now.replace(second=0, microsecond=0) - timedelta(minutes=1)
        return {
            "latestTrade": trade,
            "latestQuote": quote,
            "minuteBar": {"t": _rfc3339(minute), "o": float(price), "h": float(price), "l": float(price), "c": float(price),
                          "v": 0.5 if crypto else 1200, "n": 14, "vw": float(price)},
            "dailyBar": {"t": _rfc3339(midnight), "o": float(day_open), "h": float(max(day_open, price)),
                         "l": float(min(day_open, price)), "c": float(price), "v": volume, "n": 8123, "vw": float(price)},
            "prevDailyBar": previous,
        }

    def set_history_bars(self, symbol: str, timeframe: str, rows: list[tuple[datetime, Any, Any, Any, Any, Any]]) -> None:
        """Serve these (opens_at, open, high, low, close, volume) rows as ``symbol``'s bars at
        ``timeframe`` ("1Day", "1Hour", "15Min", "1Min"); ``t`` is each bar's open, as Alpaca's."""
        crypto = _is_crypto(symbol)
        bars = [{"t": _rfc3339(t), "o": float(o), "h": float(h), "l": float(l), "c": float(c),
                 "v": float(v) if crypto else int(v), "n": 100 + k, "vw": float(c)} for k, (t, o, h, l, c, v) in enumerate(rows)]
        with self.lock:
            self.history_bars[(symbol, timeframe)] = bars

    def add_alpaca_news(self, symbols: list[str], headline: str, created_at: datetime, *, summary: str = "",
                        source: str = "benzinga") -> dict[str, Any]:
        """One item of Alpaca's news (``symbols`` as Alpaca names them: ``AAPL``, ``BTCUSD``)."""
        with self.lock:
            self._news_ids += 1
            item = {"id": self._news_ids, "headline": headline, "summary": summary, "author": "Staff",
                    "created_at": _rfc3339(created_at), "updated_at": _rfc3339(created_at),
                    "url": f"https://www.benzinga.com/news/{self._news_ids}", "symbols": list(symbols),
                    "source": source, "images": []}
            self.alpaca_news.append(item)
        return item

    def _alpaca_bars(self, req: RecordedRequest, symbols: list[str], stocks: bool) -> Reply:
        timeframe = {"1D": "1Day", "1H": "1Hour", "15T": "15Min", "1T": "1Min"}.get(req.query.get("timeframe", ""),
                                                                                  req.query.get("timeframe"))
        if timeframe not in ("1Day", "1Hour", "15Min", "1Min", "5Min"):
            return self._alpaca_error(422, f"invalid timeframe: {req.query.get('timeframe')}", 42210000)
        if not symbols:
            return Reply(400, {"code": 40010001, "message": "missing symbols"})
        try:
            limit = int(req.query.get("limit", "1000"))
            start, end = _moment(req.query.get("start", "1970-01-01")), _moment(req.query.get("end", "2999-01-01"))
            offset = int(base64.b64decode(req.query["page_token"]).decode()) if req.query.get("page_token") else 0
        except (ValueError, TypeError):
            return Reply(400, {"code": 40010001, "message": "invalid limit, start, end or page_token"})
        if not 1 <= limit <= 10000:
            return self._alpaca_error(422, "invalid limit: must be between 1 and 10000", 42210000)
        with self.lock:  # Alpaca sorts by symbol, then time; the limit counts across symbols
            def served(s: str) -> list[dict[str, Any]]:
                found = self.history_bars.get((s, timeframe))
                return found if found is not None else (self.daily_bars.get(s, []) if timeframe == "1Day" else [])

            rows = [(s, dict(b)) for s in sorted(symbols) if _is_crypto(s) != stocks
                    for b in served(s) if start <= _moment(b["t"]) <= end]
        page = rows[offset: offset + min(limit, self.bars_page_size or limit)]
        body: dict[str, Any] = {}
        for symbol, bar in page:
            body.setdefault(symbol, []).append(bar)
        more = offset + len(page) < len(rows)
        token = base64.b64encode(str(offset + len(page)).encode()).decode() if more else None
        return Reply(200, {"bars": body, "next_page_token": token})


    def _alpaca_news_page(self, req: RecordedRequest, symbols: list[str]) -> Reply:
        """``GET /v1beta1/news``: items naming any of ``symbols`` published in [start, end],
        ``sort`` asc or desc (the default), at most 50 a page, ``next_page_token`` until the last."""
        try:
            limit = int(req.query.get("limit", "10"))
            start, end = _moment(req.query.get("start", "1970-01-01")), _moment(req.query.get("end", "2999-01-01"))
            offset = int(base64.b64decode(req.query["page_token"]).decode()) if req.query.get("page_token") else 0
        except (ValueError, TypeError):
            return Reply(400, {"code": 40010001, "message": "invalid limit, start, end or page_token"})
        if not 1 <= limit <= 50:
            return self._alpaca_error(422, "invalid limit: must be between 1 and 50", 42210000)
        with self.lock:
            items = [dict(i) for i in self.alpaca_news if start <= _moment(i["created_at"]) <= end
                     and (not symbols or set(i["symbols"]) & set(symbols))]
        items.sort(key=lambda i: (i["created_at"], i["id"]), reverse=req.query.get("sort", "desc") != "asc")
        page = items[offset: offset + min(limit, self.news_page_size or limit)]
        more = offset + len(page) < len(items)
        token = base64.b64encode(str(offset + len(page)).encode()).decode() if more else None
        return Reply(200, {"news": page, "next_page_token": token})


def _moment(text: str) -> datetime:
    """An RFC 3339 time or a date (midnight UTC), as Alpaca reads ``start`` and ``end``."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00")) if "T" in text else datetime.fromisoformat(text[:10])
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _default_bars(symbol: str, price: str, days: int = DEFAULT_BAR_DAYS) -> list[tuple[Decimal, ...]]:
    """A gentle, deterministic daily history whose last close is the previous close the
    Finnhub quote reports (price / 1.01)."""
    last_close = _dec(price) / Decimal("1.01")
    rows = []
    for i in range(days):
        back = days - 1 - i
        close = last_close * (1 - Decimal(back) / 1000 + Decimal(str(round(math.sin(i / 3) / 100, 6))))
        close = close.quantize(Decimal("0.01"))
        volume = Decimal(2_000 if _is_crypto(symbol) else 50_000_000) * (1 + Decimal(i % 7) / 10)
        rows.append((close * Decimal("0.995"), close * Decimal("1.01"), close * Decimal("0.985"), close, volume))
    # the last close exactly the quote's previous close
    o, h, l, _c, v = rows[-1]
    rows[-1] = (o, h, l, last_close.quantize(Decimal("0.01")), v)
    return [tuple(x.quantize(Decimal("0.01")) if i < 4 else x for i, x in enumerate(row)) for row in rows]
