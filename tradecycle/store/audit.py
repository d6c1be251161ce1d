"""The audit trail and the agent's state: every statement the cycle and the
read commands need, by name. Money is written as Decimal text."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tradecycle.models import FINAL_TRADE_STATUSES, Account, NewsItem, OrderResult, Position, Quote
from tradecycle.rules.protections import PROTECTIVE_EXITS, ExitRecord
from tradecycle.rules.reuse import REFUSALS, StandingHold
from tradecycle.store import chain, flags, retention, switchfile
from tradecycle.store.bars import DailyBarCache
from tradecycle.store.spans import Spans
from tradecycle.store.db import Database
from tradecycle.store.flags import KillSwitch, iso, parse_iso
from tradecycle.store.scores import RequestLog
from tradecycle.store.stops import BrokerStops

# Ours: written before the send (``submitting``) or after a send whose fate is unknown.
UNCONFIRMED_TRADE_STATUSES = ("submitting", "unknown")


NOT_FINAL = f"status NOT IN ({', '.join('?' for _ in FINAL_TRADE_STATUSES)})"


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _cached_quote(row: dict) -> Quote:
    """A stored quotes row as a quote re-used from the database: ``as_of`` stays the
    source's time, so the price ages honestly."""
    return Quote(
        symbol=row["symbol"],
        price=Decimal(row["price"]),
        as_of=parse_iso(row["as_of"]),
        source="cache",
        change_percent=Decimal(row["change_percent"]) if row["change_percent"] else None,
        previous_close=Decimal(row["previous_close"]) if row["previous_close"] else None,
    )


class Store(DailyBarCache, RequestLog, BrokerStops):
    """The store one cycle (or one read command) talks to. It remembers the
    cycle it started, so that the kill switch the tool trips names it."""

    def __init__(self, db: Database):
        self.db = db
        self.spans = Spans(db)
        self.cycle_id: str | None = None

    # -- kill switch ---------------------------------------------------------

    def kill_switch(self, now: datetime | None = None) -> KillSwitch:
        """On when the database or the file beside it (``switchfile.py``) says so.
        A switch only the file has is recorded in the database first, as the
        tool's change, so that its clean-up and history follow."""
        switch = flags.read_kill_switch(self.db)
        if switch.active or (on_file := switchfile.read_switch_file(self.db.path)) is None:
            return switch
        return flags.restore_from_file(self.db, on_file, now or datetime.now(UTC), self.cycle_id)

    def set_kill_switch(self, active: bool, reason: str | None, now: datetime) -> KillSwitch:
        """The tool's own change (a tripped limit): recorded as ``tool``, with this store's cycle."""
        return flags.write_kill_switch(self.db, active, reason, now, changed_by="tool", cycle_id=self.cycle_id)

    def finish_kill_switch_cleanup(self, switch: KillSwitch, now: datetime) -> None:
        flags.finish_kill_switch_cleanup(self.db, switch.changed_at, now)

    # -- protective exits ----------------------------------------------------

    def position_marks(self) -> dict[str, tuple[Decimal, Decimal]]:
        """symbol -> (entry price, highest price seen since entry) of each position last marked."""
        rows = self.db.query("SELECT symbol, entry_price, high_price FROM position_marks")
        return {r["symbol"]: (Decimal(r["entry_price"]), Decimal(r["high_price"])) for r in rows}

    def save_position_marks(self, marks: dict[str, tuple[Decimal, Decimal]], now: datetime) -> None:
        """Replace the marks: one row per position held now (closed ones go)."""
        old = {r["symbol"]: r for r in self.db.query("SELECT symbol, high_price, high_at FROM position_marks")}
        with self.db.transaction():
            self.db.execute("DELETE FROM position_marks")
            for symbol, (entry, high) in marks.items():
                before = old.get(symbol)
                high_at = before["high_at"] if before and Decimal(before["high_price"]) == high else iso(now)
                self.db.execute(
                    "INSERT INTO position_marks (symbol, entry_price, high_price, high_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                    (symbol, str(entry), str(high), high_at, iso(now)),
                )

    def protective_exits_since(self, since: datetime) -> list[ExitRecord]:
        """Every protective exit (``stop_loss``, ``take_profit``, ``trailing_stop``)
        recorded at or after ``since``, oldest first: the one source of the
        re-entry cooldown and the stop-loss guard (rules/protections.py). An
        exit counts once it has its ``ai_decisions`` row (``role = 'main'``, the
        exit's word as outcome, ``created_at`` when it was recorded), whoever
        sold: the cycle's own sells have one; a stop filled at the broker
        counts as soon as the cycle that finds it writes one too."""
        marks = ", ".join("?" for _ in PROTECTIVE_EXITS)
        rows = self.db.query(
            f"""SELECT symbol, outcome, created_at FROM ai_decisions
               WHERE created_at >= ? AND outcome IN ({marks}) AND +role = 'main' ORDER BY created_at, id""",
            (iso(since), *PROTECTIVE_EXITS),
        )
        return [ExitRecord(r["symbol"], r["outcome"], parse_iso(r["created_at"])) for r in rows]

    def last_protective_exit(self, symbol: str, since: datetime | None = None) -> datetime | None:
        """When ``symbol`` last had a protective exit (at or after ``since``, if given); None if never."""
        marks = ", ".join("?" for _ in PROTECTIVE_EXITS)
        row = self.db.one(
            f"""SELECT created_at FROM ai_decisions WHERE symbol = ? AND created_at >= ? AND outcome IN ({marks})
               AND role = 'main' ORDER BY created_at DESC LIMIT 1""",
            (symbol, iso(since) if since else "", *PROTECTIVE_EXITS),
        )
        return parse_iso(row["created_at"]) if row else None

    # -- cycles --------------------------------------------------------------

    def start_cycle(self, cycle_id: str, started_at: datetime, dry_run: bool) -> None:
        self.cycle_id = cycle_id
        self.db.execute(
            "INSERT INTO cycles (cycle_id, started_at, status, dry_run) VALUES (?, ?, 'running', ?)",
            (cycle_id, iso(started_at), int(dry_run)),
        )

    def finish_cycle(
        self, cycle_id: str, *, status: str, finished_at: datetime, duration_ms: int, error: str | None, summary: dict,
        abort_kind: str | None = None,
    ) -> None:
        with self.db.transaction():
            self.db.execute(
                """UPDATE cycles SET status = ?, finished_at = ?, error = ?, duration_ms = ?, symbols_count = ?,
                   orders_count = ?, errors_count = ?, summary = ?, abort_kind = ? WHERE cycle_id = ?""",
                (
                    status,
                    iso(finished_at),
                    error,
                    duration_ms,
                    summary.get("symbols", 0),
                    summary.get("orders", 0),
                    summary.get("errors", 0),
                    json.dumps(summary, default=str, separators=(",", ":")),
                    abort_kind,
                    cycle_id,
                ),
            )
            self.db.execute(
                "UPDATE agent_status SET last_cycle_id = ?, last_cycle_time = ? WHERE id = 1",
                (cycle_id, iso(finished_at)),
            )

    def running_cycles(self, except_id: str) -> list[str]:
        rows = self.db.query("SELECT cycle_id FROM cycles WHERE status = 'running' AND cycle_id != ?", (except_id,))
        return [r["cycle_id"] for r in rows]

    def mark_cycle_aborted(self, cycle_id: str, error: str, now: datetime) -> None:
        self.db.execute(
            "UPDATE cycles SET status = 'aborted', error = ?, finished_at = COALESCE(finished_at, ?) WHERE cycle_id = ?",
            (error, iso(now), cycle_id),
        )

    def last_statuses(self, count: int) -> list[str]:
        """Of the newest ``count`` finished (not skipped) cycles, newest first:
        ``completed``, or the kind of abort (``critical`` or ``outage``)."""
        rows = self.db.query(
            "SELECT status, abort_kind FROM cycles WHERE status IN ('completed', 'aborted') ORDER BY started_at DESC, rowid DESC LIMIT ?",
            (count,),
        )
        return [r["status"] if r["status"] == "completed" else (r["abort_kind"] or "critical") for r in rows]

    # -- quotes and news caches ----------------------------------------------

    def record_quotes(self, cycle_id: str, quotes: Iterable[Quote], fetched_at: datetime) -> None:
        rows = [
            (cycle_id, q.symbol, str(q.price), iso(q.as_of), q.source, _text(q.change_percent), _text(q.previous_close), iso(fetched_at))
            for q in quotes
        ]
        with self.db.transaction():
            for row in rows:
                if self.spans.extend_quote(cycle_id, row[1], row[2], row[3], row[4], row[7]):
                    continue  # the same quote as the cycle before: its row now spans this cycle too
                self.db.execute(
                    """INSERT INTO quotes (cycle_id, symbol, price, as_of, source, change_percent, previous_close, fetched_at)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                    row,
                )

    def last_quote(self, symbol: str) -> Quote | None:
        """The newest price we stored for a symbol (any source but the cache itself)."""
        row = self.db.one(
            "SELECT * FROM quotes WHERE symbol = ? AND source != 'cache' ORDER BY id DESC LIMIT 1", (symbol,)
        )
        return _cached_quote(row) if row else None

    def last_fetch(self, symbol: str, source: str) -> tuple[Quote, datetime] | None:
        """The newest price ``source`` gave us for a symbol (as a ``cache`` quote that
        keeps its source time), and when we fetched it."""
        row = self.db.one("SELECT * FROM quotes WHERE symbol = ? AND source = ? ORDER BY id DESC LIMIT 1", (symbol, source))
        return (_cached_quote(row), parse_iso(row["fetched_at"])) if row else None

    def recent_prices(self, symbol: str, limit: int = 10) -> list[Decimal]:
        """The last ``limit`` fetched prices for a symbol, oldest first (see ``recent_price_points``)."""
        return [point.price for point in self.recent_price_points(symbol, limit)]

    def news_fetched_at(self, symbol: str) -> datetime | None:
        row = self.db.one("SELECT fetched_at FROM news_fetches WHERE symbol = ?", (symbol,))
        return parse_iso(row["fetched_at"]) if row else None

    def record_news(self, symbol: str, items: Sequence[NewsItem], fetched_at: datetime) -> None:
        with self.db.transaction():
            for item in items:
                self.db.execute(
                    """INSERT OR IGNORE INTO news (symbol, news_id, headline, summary, source, url, published_at, fetched_at)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                    (symbol, item.news_id or item.url or item.headline, item.headline, item.summary, item.source, item.url,
                     iso(item.published_at), iso(fetched_at)),
                )
            self.db.execute(
                "INSERT INTO news_fetches (symbol, fetched_at) VALUES (?, ?) ON CONFLICT(symbol) DO UPDATE SET fetched_at = excluded.fetched_at",
                (symbol, iso(fetched_at)),
            )

    def recent_news(self, symbol: str, since: datetime, limit: int = 5) -> list[NewsItem]:
        rows = self.db.query(
            "SELECT * FROM news WHERE symbol = ? AND published_at >= ? ORDER BY published_at DESC LIMIT ?",
            (symbol, iso(since), limit),
        )
        return [
            NewsItem(symbol, r["headline"], parse_iso(r["published_at"]), r["source"] or "", r["summary"] or "", r["url"] or "", r["news_id"])
            for r in rows
        ]

    # -- decisions and trades ------------------------------------------------

    def standing_hold(self, symbol: str) -> StandingHold | None:
        """The decision that still governs ``symbol``: its latest row if that was
        a real analysis that said hold or was refused by a limit, or the decision
        a later row reused (``reused_decision_id``)."""
        standing_outcomes = ("hold", *REFUSALS)
        latest = self.db.one(
            "SELECT id, outcome, reused_decision_id FROM ai_decisions WHERE symbol = ? AND role = 'main' ORDER BY id DESC LIMIT 1",
            (symbol,),
        )
        if latest is None or latest["outcome"] not in ("unchanged", *standing_outcomes):
            return None
        decision_id = latest["reused_decision_id"] or latest["id"]
        marks = ", ".join("?" for _ in standing_outcomes)
        row = self.db.one(
            f"SELECT * FROM ai_decisions WHERE id = ? AND outcome IN ({marks}) AND reused_decision_id IS NULL AND role = 'main'",
            (decision_id, *standing_outcomes),
        )
        if row is None or not row["price"] or not row["inputs"]:
            return None
        inputs = json.loads(row["inputs"])
        return StandingHold(
            decision_id=row["id"],
            decided_at=parse_iso(row["created_at"]),
            price=Decimal(row["price"]),
            headline_ids=frozenset(str(h.get("id")) for h in inputs.get("headlines") or []),
            position_qty=Decimal(str(inputs.get("position_qty") or 0)),
            confidence=row["confidence"] or 0.0,
            reasoning=row["reasoning"] or "",
            model=row["model"] or "",
            action=row["action"],
            outcome=row["outcome"],
            min_notional_usd=Decimal((inputs.get("room") or {}).get("min_notional_usd") or 1),
            prompt_hash=row["prompt_hash"],
        )

    def writing(self):
        """``with store.writing():`` several writes in one transaction, committed
        together (or, on an error, none of them); each write inside joins it."""
        return self.db.transaction()

    def record_decision(self, row: dict[str, Any]) -> int:
        """Insert one ai_decisions row (keys are column names), or extend the
        symbol's row of the cycle before when this one only repeats it
        (store/spans.py). Returns the id of the row that holds it."""
        with self.db.transaction():  # the row and its link (store/chain.py) or neither
            decision_id = self.spans.extend_decision(row)
            if decision_id is not None:  # an extension's link records only the span's new end
                chain.append_extension(self.db.conn, decision_id, row.get("created_at"))
                return decision_id
            if isinstance(row.get("inputs"), (dict, list)):  # compact JSON: no spaces after separators
                row = {**row, "inputs": json.dumps(row["inputs"], default=str, separators=(",", ":"))}
            columns = ", ".join(row)
            marks = ", ".join("?" for _ in row)
            decision_id = self.db.execute(f"INSERT INTO ai_decisions ({columns}) VALUES ({marks})",
                                          tuple(row.values())).lastrowid
            chain.append_rows(self.db.conn, "ai_decisions", [decision_id], row.get("created_at"))
        return decision_id

    def insert_trade(self, row: dict[str, Any]) -> int:
        """Write the trade row *before* the order is sent. Raises DatabaseUnusable
        (so the order is not sent) when it cannot be written."""
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with self.db.transaction():
            trade_id = self.db.execute(f"INSERT INTO trades ({columns}) VALUES ({marks})", tuple(row.values())).lastrowid
            chain.append_rows(self.db.conn, "trades", [trade_id], row.get("created_at"))
        return trade_id

    def update_trade(self, client_order_id: str, result: OrderResult, now: datetime, notes: str | None = None) -> None:
        """Write what the broker says of an order. ``quantity`` keeps what was
        ordered, except for a notional order, whose quantity is an estimate until
        the fill replaces it (what an open sell still covers is ``quantity -
        filled_qty``, so it must never be overwritten by a partial fill)."""
        with self.db.transaction():
            self._update_trade(client_order_id, result, now, notes)
            chain.append_rows(self.db.conn, "trades", [r["id"] for r in self.db.query(
                "SELECT id FROM trades WHERE client_order_id = ?", (client_order_id,))], now)

    def _update_trade(self, client_order_id: str, result: OrderResult, now: datetime, notes: str | None) -> None:
        self.db.execute(
            """UPDATE trades SET status = ?, broker_order_id = COALESCE(?, broker_order_id),
               filled_qty = COALESCE(?, filled_qty), filled_avg_price = COALESCE(?, filled_avg_price),
               quantity = CASE WHEN notional_usd IS NULL THEN quantity ELSE COALESCE(?, quantity) END,
               executed_at = COALESCE(?, executed_at),
               notes = COALESCE(?, notes), updated_at = ? WHERE client_order_id = ?""",
            (
                result.status,
                result.broker_order_id,
                _text(result.filled_qty),
                _text(result.filled_avg_price),
                _text(result.filled_qty) if result.filled_qty else None,
                result.filled_at,
                notes if notes is not None else (result.message or None),
                iso(now),
                client_order_id,
            ),
        )

    def pending_trades(self) -> list[dict[str, Any]]:
        """Trades sent (or about to be) that have not reached a final state."""
        return self.db.query(f"SELECT * FROM trades WHERE {NOT_FINAL} ORDER BY id", FINAL_TRADE_STATUSES)

    def trade_status(self, client_order_id: str) -> str | None:
        row = self.db.one("SELECT status FROM trades WHERE client_order_id = ?", (client_order_id,))
        return row["status"] if row else None

    def unconfirmed_trades(self) -> list[dict[str, Any]]:
        """Orders that may or may not have reached the broker."""
        return [t for t in self.pending_trades() if t["status"] in UNCONFIRMED_TRADE_STATUSES]

    def open_orders(self) -> list[dict[str, Any]]:
        """Orders the broker accepted that may still fill: any state not final, ours excepted."""
        return [t for t in self.pending_trades() if t["status"] not in UNCONFIRMED_TRADE_STATUSES]

    def newest_trade_at(self) -> datetime | None:
        """When the newest trades row was written (None: no row at all)."""
        row = self.db.one("SELECT MAX(created_at) AS newest FROM trades")
        return parse_iso(row["newest"]) if row and row["newest"] else None

    def known_client_order_ids(self, client_order_ids: Sequence[str]) -> set[str]:
        """Those of ``client_order_ids`` that have a trades row."""
        if not client_order_ids:
            return set()
        marks = ", ".join("?" for _ in client_order_ids)
        rows = self.db.query(f"SELECT client_order_id FROM trades WHERE client_order_id IN ({marks})", tuple(client_order_ids))
        return {r["client_order_id"] for r in rows}

    def broker_first_checked(self) -> bool:
        """Whether a cycle already compared the broker's state with this database's (the first fetch does)."""
        row = self.db.one("SELECT broker_first_seen_at FROM agent_status WHERE id = 1")
        return bool(row and row["broker_first_seen_at"])

    def mark_broker_checked(self, now: datetime, found: str | None) -> None:
        """Record the first comparison: when, and what the broker already held (None: nothing of ours)."""
        self.db.execute("UPDATE agent_status SET broker_first_seen_at = ?, broker_state_at_start = ? WHERE id = 1",
                        (iso(now), found))

    # -- synced broker state -------------------------------------------------

    def replace_positions(self, positions: Sequence[Position], synced_at: datetime) -> None:
        with self.db.transaction():
            self.db.execute("DELETE FROM positions")
            for p in positions:
                self.db.execute(
                    """INSERT INTO positions (symbol, qty, avg_entry_price, market_value, current_price, unrealized_pl, synced_at)
                       VALUES (?, ?, ?, ?, ?, ?, ?)""",
                    (p.symbol, str(p.qty), str(p.avg_entry_price), str(p.market_value), str(p.current_price), str(p.unrealized_pl), iso(synced_at)),
                )

    def save_account(self, account: Account, position_count: int, synced_at: datetime, cycle_id: str | None = None) -> None:
        """The account as synced; with ``cycle_id``, also that cycle's equity (for the drawdown)."""
        if cycle_id is not None:
            self.db.execute("UPDATE cycles SET equity = ? WHERE cycle_id = ?", (str(account.equity), cycle_id))
        self.db.execute(
            """UPDATE agent_status SET equity = ?, last_equity = ?, cash = ?, buying_power = ?, account_status = ?,
               account_synced_at = ?, position_count = ?, daily_pnl = ? WHERE id = 1""",
            (
                str(account.equity),
                str(account.last_equity),
                str(account.cash),
                str(account.buying_power),
                account.status,
                iso(synced_at),
                position_count,
                str(account.equity - account.last_equity),
            ),
        )

    # -- retention -----------------------------------------------------------

    def prune(self, before: datetime, budget_seconds: float | None = None) -> "retention.PruneReport":
        """Delete history older than ``before`` in small transactions, for at
        most ``budget_seconds`` (capped at ``retention.BUDGET_SECONDS``); the
        rest waits for the next cycle. See store/retention.py."""
        budget = retention.BUDGET_SECONDS if budget_seconds is None else min(budget_seconds, retention.BUDGET_SECONDS)
        return retention.prune(self.db, iso(before), budget_seconds=budget)
