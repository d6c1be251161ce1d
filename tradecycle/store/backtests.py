"""The statements of ``tradecycle backtest``: its runs (``backtests``), the
history its sources fetched (kept for later runs), the model servers' replies
by exact request, and the fees of the simulated fills."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tradecycle.store import chain
from tradecycle.store.db import Database

def create_tables(db) -> None:
    """The tables of migration ``_m_backtests`` (schema.py), as shipped: never edit them
    here; change them with a new migration. ``backtests``: one row per run (the contract's
    columns, then where it stands: the last cycle's time, the simulated broker's books for
    ``--resume``, the closing figures). The history a source fetched (``backtest_bars``,
    ``backtest_news``, with what each covers) and the model servers' replies by exact
    request (``backtest_replies``), kept for later runs."""
    db["backtests"].create(
        {
            "id": int, "started_at": str, "finished_at": str, "status": str, "from": str, "to": str,
            "interval": str, "source": str, "cycles": int, "llm_calls": int, "contaminated": int,
            "parameters": str, "total_cycles": int, "last_cycle_at": str, "books": str, "results": str,
        },
        pk="id",
        not_null={"cycles", "llm_calls", "contaminated"},
        defaults={"cycles": 0, "llm_calls": 0, "contaminated": 0},
    )
    db["backtest_bars"].create(
        {"source": str, "symbol": str, "timeframe": str, "opens_at": str, "open": str, "high": str, "low": str,
         "close": str, "volume": str},
        pk=("source", "symbol", "timeframe", "opens_at"),
    )
    db["backtest_news"].create(
        {"source": str, "symbol": str, "news_id": str, "headline": str, "summary": str, "publisher": str, "url": str,
         "published_at": str},
        pk=("source", "symbol", "news_id"),
    )
    db["backtest_coverage"].create(
        {"source": str, "kind": str, "symbol": str, "start": str, "end": str}, pk=("source", "kind", "symbol")
    )
    db["backtest_replies"].create(
        {"key": str, "base_url": str, "model": str, "reply": str, "created_at": str}, pk="key"
    )


CARRIED_TABLES = ("backtests", "backtest_bars", "backtest_news", "backtest_coverage", "backtest_replies")


class BacktestBook:
    def __init__(self, db: Database):
        self.db = db

    # -- runs ----------------------------------------------------------------

    def start_run(self, row: dict[str, Any]) -> int:
        columns = ", ".join(f'"{c}"' for c in row)
        with self.db.transaction():
            cursor = self.db.execute(
                f"INSERT INTO backtests ({columns}) VALUES ({', '.join('?' for _ in row)})", tuple(row.values())
            )
        return int(cursor.lastrowid)

    def run(self, run_id: int) -> dict[str, Any] | None:
        return self.db.one("SELECT * FROM backtests WHERE id = ?", (run_id,))

    def last_run(self) -> dict[str, Any] | None:
        return self.db.one("SELECT * FROM backtests ORDER BY id DESC LIMIT 1")

    def save_progress(self, run_id: int, *, cycles: int, llm_calls: int, last_cycle_at: str, books: dict,
                      fees: Sequence[tuple[str, str]] = ()) -> None:
        """Where the run stands after a cycle, with the broker's books, in one transaction:
        a run stopped at any moment resumes from its last saved cycle."""
        with self.db.transaction():
            self.db.execute(
                "UPDATE backtests SET cycles = ?, llm_calls = ?, last_cycle_at = ?, books = ? WHERE id = ?",
                (cycles, llm_calls, last_cycle_at, json.dumps(books), run_id),
            )
            for client_order_id, fee in fees:
                self.db.execute("UPDATE trades SET fee_usd = ? WHERE client_order_id = ?", (fee, client_order_id))
                chain.append_rows(self.db.conn, "trades", [r["id"] for r in self.db.query(  # an update is a link
                    "SELECT id FROM trades WHERE client_order_id = ?", (client_order_id,))])

    def finish(self, run_id: int, status: str, finished_at: str, results: dict | None) -> None:
        with self.db.transaction():
            self.db.execute(
                "UPDATE backtests SET status = ?, finished_at = ?, results = ? WHERE id = ?",
                (status, finished_at, json.dumps(results) if results is not None else None, run_id),
            )

    def resumed(self, run_id: int, status: str) -> None:
        with self.db.transaction():
            self.db.execute("UPDATE backtests SET status = ?, finished_at = NULL WHERE id = ?", (status, run_id))

    def equity_points(self) -> list[dict[str, Any]]:
        return self.db.query("SELECT started_at, equity FROM cycles WHERE equity IS NOT NULL ORDER BY started_at, rowid")

    def filled_trades(self) -> int:
        row = self.db.one("SELECT COUNT(*) AS n FROM trades WHERE status = 'filled'")
        return int(row["n"]) if row else 0

    # -- model replies by exact request --------------------------------------

    def replies(self) -> dict[str, str]:
        return {r["key"]: r["reply"] for r in self.db.query("SELECT key, reply FROM backtest_replies")}

    def save_replies(self, rows: Iterable[tuple[str, str, str, str, str]]) -> None:
        rows = list(rows)
        if not rows:
            return
        with self.db.transaction():
            for row in rows:
                self.db.execute(
                    "INSERT OR IGNORE INTO backtest_replies (key, base_url, model, reply, created_at) VALUES (?, ?, ?, ?, ?)", row
                )

    # -- history kept for later runs -----------------------------------------

    def coverage(self, source: str, kind: str) -> dict[str, tuple[str, str]]:
        rows = self.db.query("SELECT symbol, start, \"end\" FROM backtest_coverage WHERE source = ? AND kind = ?", (source, kind))
        return {r["symbol"]: (r["start"], r["end"]) for r in rows}

    def bars(self, source: str, symbol: str, timeframe: str, start: str, end: str) -> list[dict[str, Any]]:
        return self.db.query(
            "SELECT opens_at, open, high, low, close, volume FROM backtest_bars WHERE source = ? AND symbol = ?"
            " AND timeframe = ? AND opens_at >= ? AND opens_at < ? ORDER BY opens_at",
            (source, symbol, timeframe, start, end),
        )

    def save_bars(self, source: str, timeframe: str, rows: dict[str, list[tuple]], covered: tuple[str, str]) -> None:
        """Bars of every symbol asked for (none for a symbol without data) and what they cover."""
        with self.db.transaction():
            for symbol, bars in rows.items():
                for bar in bars:
                    self.db.execute(
                        "INSERT OR REPLACE INTO backtest_bars (source, symbol, timeframe, opens_at, open, high, low, close, volume)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (source, symbol, timeframe, *bar),
                    )
                self._cover(source, f"bars:{timeframe}", symbol, covered)

    def news(self, source: str, symbol: str, start: str, end: str) -> list[dict[str, Any]]:
        return self.db.query(
            "SELECT * FROM backtest_news WHERE source = ? AND symbol = ? AND published_at >= ? AND published_at < ?"
            " ORDER BY published_at",
            (source, symbol, start, end),
        )

    def save_news(self, source: str, symbols: Sequence[str], rows: Sequence[tuple], covered: tuple[str, str]) -> None:
        with self.db.transaction():
            for row in rows:
                self.db.execute(
                    "INSERT OR IGNORE INTO backtest_news (source, symbol, news_id, headline, summary, publisher, url, published_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (source, *row),
                )
            for symbol in symbols:
                self._cover(source, "news", symbol, covered)

    def _cover(self, source: str, kind: str, symbol: str, covered: tuple[str, str]) -> None:
        old = self.db.one('SELECT start, "end" FROM backtest_coverage WHERE source = ? AND kind = ? AND symbol = ?',
                          (source, kind, symbol))
        start, end = covered
        if old and old["start"] <= end and old["end"] >= start:  # overlapping or touching: one range
            start, end = min(start, old["start"]), max(end, old["end"])
        self.db.execute(
            'INSERT OR REPLACE INTO backtest_coverage (source, kind, symbol, start, "end") VALUES (?, ?, ?, ?, ?)',
            (source, kind, symbol, start, end),
        )


def holds_foreign_cycles(path: Path) -> bool:
    """Whether the database at ``path`` has cycles but no backtest run (a live agent's, say).
    Read-only: the file is left exactly as it was, whatever the answer."""
    import sqlite3

    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return False
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        has_cycles = "cycles" in tables and conn.execute("SELECT 1 FROM cycles LIMIT 1").fetchone() is not None
        has_runs = "backtests" in tables and conn.execute("SELECT 1 FROM backtests LIMIT 1").fetchone() is not None
        return has_cycles and not has_runs
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def carry_over(db: Database, old: Path) -> None:
    """Copy what a new run keeps from the database it replaces (``old``): earlier runs'
    rows, fetched history and model replies. The trading tables start empty."""
    db.execute("ATTACH DATABASE ? AS old", (str(old),))
    try:
        present = {r["name"] for r in db.query("SELECT name FROM old.sqlite_master WHERE type = 'table'")}
        with db.transaction():
            for table in CARRIED_TABLES:
                if table in present:
                    db.execute(f"INSERT OR IGNORE INTO main.{table} SELECT * FROM old.{table}")
    finally:
        db.execute("DETACH DATABASE old")
