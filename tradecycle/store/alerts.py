"""What the alerts need from the database: their own memory (``alert_state``:
when each kind was last sent, how many were held back since, and a few marks)
and the facts a finished cycle's alerts are made of."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tradecycle.store.db import Database
from tradecycle.store.flags import iso, parse_iso


class AlertBook:
    def __init__(self, db: Database):
        self.db = db

    # -- memory ----------------------------------------------------------------

    def marks(self) -> dict[str, str | None]:
        """key -> value of every mark (``cycle_health``: ``up`` or ``down``; ``daily_summary``: the day last sent)."""
        return {r["key"]: r["value"] for r in self.db.query("SELECT key, value FROM alert_state WHERE value IS NOT NULL")}

    def claim(self, kind: str, now: datetime, window: timedelta, mark: tuple[str, str] | None = None) -> int | None:
        """The right to send one alert of ``kind`` now, taken in one short write
        transaction (two processes never both get it). None when one was sent
        less than ``window`` ago: this one is held back (and counted).
        Otherwise ``now`` is recorded as sent, ``mark`` (key, value) is set,
        and the number held back since the last one is returned."""
        with self.db.transaction():
            row = self.db.one("SELECT sent_at, held_back FROM alert_state WHERE key = ?", (kind,))
            if row and row["sent_at"] and now - parse_iso(row["sent_at"]) < window:
                self.db.execute("UPDATE alert_state SET held_back = held_back + 1, updated_at = ? WHERE key = ?", (iso(now), kind))
                return None
            self.db.execute(
                "INSERT INTO alert_state (key, sent_at, held_back, updated_at) VALUES (?, ?, 0, ?)"
                " ON CONFLICT (key) DO UPDATE SET sent_at = excluded.sent_at, held_back = 0, updated_at = excluded.updated_at",
                (kind, iso(now), iso(now)),
            )
            if mark:
                self.db.execute(
                    "INSERT INTO alert_state (key, value, updated_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                    (mark[0], mark[1], iso(now)),
                )
            return row["held_back"] if row else 0

    def unclaim(self, kind: str, now: datetime, mark: tuple[str, str | None] | None = None) -> None:
        """Give back a claim whose alert could not be sent: no alert of ``kind`` went
        out, so the next one is not held back, and ``mark`` (key, value before the
        claim) is restored, so that, say, a recovery never follows an abort nobody heard of."""
        with self.db.transaction():
            self.db.execute("UPDATE alert_state SET sent_at = NULL, updated_at = ? WHERE key = ?", (iso(now), kind))
            if mark:
                self.db.execute("UPDATE alert_state SET value = ?, updated_at = ? WHERE key = ?", (mark[1], iso(now), mark[0]))

    def last_sent(self, kind: str) -> datetime | None:
        row = self.db.one("SELECT sent_at FROM alert_state WHERE key = ?", (kind,))
        return parse_iso(row["sent_at"]) if row and row["sent_at"] else None

    # -- facts -------------------------------------------------------------------

    def rejected_orders(self, cycle_id: str) -> list[dict[str, Any]]:
        """Orders the broker rejected while this cycle ran: its own, and earlier
        ones its sync found rejected (``symbol``, ``side``, ``notes``, ``cycle_id``)."""
        return self.db.query(
            "SELECT symbol, side, notional_usd, quantity, notes, cycle_id, client_order_id FROM trades"
            " WHERE status = 'rejected' AND updated_at >= (SELECT started_at FROM cycles WHERE cycle_id = ?) ORDER BY id",
            (cycle_id,),
        )

    def protective_exits(self, cycle_id: str, outcomes: tuple[str, ...]) -> list[dict[str, Any]]:
        """This cycle's sells decided by a protective exit that went out (``symbol``,
        ``outcome``, ``reasoning``: the level that was hit, ``detail``: the order)."""
        marks = ", ".join("?" for _ in outcomes)
        return self.db.query(
            f"SELECT symbol, outcome, reasoning, detail FROM ai_decisions WHERE cycle_id = ? AND outcome IN ({marks}) ORDER BY id",
            (cycle_id, *outcomes),
        )

    def chain_head(self) -> dict[str, Any] | None:
        """The record's chain head (``hash``, ``seq``, ``linked_at``; store/chain.py), None before any write."""
        from tradecycle.store.chain import chain_head

        return chain_head(self.db)

    def account(self) -> dict[str, Any]:
        """Equity, the previous close's equity and when they were synced (empty before the first sync)."""
        return self.db.one("SELECT equity, last_equity, account_synced_at FROM agent_status WHERE id = 1") or {}

    def trades_since(self, since: datetime) -> list[dict[str, Any]]:
        """Orders written since ``since``, oldest first, each with the newest
        price stored for its symbol (``last_price``) and the decision behind it
        (``confidence``, ``reasoning``)."""
        return self.db.query(
            """SELECT t.symbol, t.side, t.status, t.dry_run, t.filled_qty, t.filled_avg_price, t.cycle_id,
                      (SELECT q.price FROM quotes q WHERE q.symbol = t.symbol ORDER BY q.id DESC LIMIT 1) AS last_price,
                      d.confidence, d.reasoning
               FROM trades t
               LEFT JOIN ai_decisions d ON d.id = (SELECT MAX(id) FROM ai_decisions WHERE cycle_id = t.cycle_id AND symbol = t.symbol)
               WHERE t.created_at >= ? ORDER BY t.id""",
            (iso(since),),
        )
