"""The daily-bar cache and the recent prices with their times: the statements
behind the analyst's market context (mixed into ``Store``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from tradecycle.models import DailyBar, PricePoint
from tradecycle.store.flags import iso, parse_iso

KEEP_BAR_DAYS = 400  # bars older than this are deleted when new ones arrive


class DailyBarCache:
    db: "object"

    def bars_due(self, symbols: Sequence[str], now: datetime, retry_after: timedelta) -> list[str]:
        """Symbols whose bars were not fetched yet today (UTC) and not tried in the last ``retry_after``."""
        if not symbols:
            return []
        marks = ", ".join("?" for _ in symbols)
        rows = {r["symbol"]: r for r in self.db.query(f"SELECT * FROM bar_fetches WHERE symbol IN ({marks})", tuple(symbols))}
        due = []
        for symbol in symbols:
            row = rows.get(symbol)
            if row is None:
                due.append(symbol)
                continue
            fetched_today = row["fetched_at"] and parse_iso(row["fetched_at"]).date() == now.date()
            tried_lately = row["attempted_at"] and now - parse_iso(row["attempted_at"]) < retry_after
            if not fetched_today and not tried_lately:
                due.append(symbol)
        return due

    def record_daily_bars(self, bars: Mapping[str, Sequence[DailyBar]], source: str, now: datetime) -> None:
        """Upsert the bars of every symbol in ``bars`` (an empty list too) and mark them fetched now."""
        cutoff = (now - timedelta(days=KEEP_BAR_DAYS)).date().isoformat()
        with self.db.transaction():
            for symbol, rows in bars.items():
                for bar in rows:
                    self.db.execute(
                        """INSERT INTO daily_bars (symbol, day, open, high, low, close, volume, source, fetched_at)
                           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                           ON CONFLICT(symbol, day) DO UPDATE SET open = excluded.open, high = excluded.high,
                           low = excluded.low, close = excluded.close, volume = excluded.volume,
                           source = excluded.source, fetched_at = excluded.fetched_at""",
                        (symbol, bar.day, str(bar.open), str(bar.high), str(bar.low), str(bar.close), str(bar.volume),
                         source, iso(now)),
                    )
                self.db.execute(
                    """INSERT INTO bar_fetches (symbol, fetched_at, attempted_at) VALUES (?, ?, ?)
                       ON CONFLICT(symbol) DO UPDATE SET fetched_at = excluded.fetched_at, attempted_at = excluded.attempted_at""",
                    (symbol, iso(now), iso(now)),
                )
            self.db.execute("DELETE FROM daily_bars WHERE day < ?", (cutoff,))

    def record_bars_attempt(self, symbols: Sequence[str], now: datetime) -> None:
        """A bars call that failed: not again before ``retry_after`` (``bars_due``)."""
        with self.db.transaction():
            for symbol in symbols:
                self.db.execute(
                    """INSERT INTO bar_fetches (symbol, attempted_at) VALUES (?, ?)
                       ON CONFLICT(symbol) DO UPDATE SET attempted_at = excluded.attempted_at""",
                    (symbol, iso(now)),
                )

    def daily_bars(self, symbol: str, limit: int) -> list[DailyBar]:
        """The newest ``limit`` stored bars of ``symbol``, oldest first."""
        rows = self.db.query("SELECT * FROM daily_bars WHERE symbol = ? ORDER BY day DESC LIMIT ?", (symbol, limit))
        return [
            DailyBar(r["day"], Decimal(r["open"]), Decimal(r["high"]), Decimal(r["low"]), Decimal(r["close"]), Decimal(r["volume"]))
            for r in reversed(rows)
        ]

    def recent_price_points(self, symbol: str, limit: int = 10) -> list[PricePoint]:
        """The last ``limit`` fetched prices of ``symbol`` with the time each was true, oldest
        first. A stored price a cycle re-used (source ``cache``) is not a new observation."""
        rows = self.db.query(
            "SELECT price, as_of FROM quotes WHERE symbol = ? AND source != 'cache' ORDER BY id DESC LIMIT ?", (symbol, limit)
        )
        return [PricePoint(parse_iso(r["as_of"]), Decimal(r["price"])) for r in reversed(rows)]
