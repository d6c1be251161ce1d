"""Read-side queries for ``status``, the history commands and ``explain``.
Newest first; every query uses an index (see schema.py)."""

from __future__ import annotations

import json
from typing import Any

from .db import Database


def _where(filters: dict[str, Any]) -> tuple[str, tuple]:
    clauses, params = [], []
    for clause, value in filters.items():
        if value is not None:
            clauses.append(clause)
            params.append(value)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", tuple(params)


def agent_status(db: Database) -> dict[str, Any]:
    return db.one("SELECT * FROM agent_status WHERE id = 1") or {}


def positions(db: Database) -> list[dict[str, Any]]:
    return db.query("SELECT * FROM positions ORDER BY symbol")


def open_orders(db: Database) -> list[dict[str, Any]]:
    """Orders sent that may still fill (or whose fate is not known yet), oldest first."""
    from .audit import FINAL_TRADE_STATUSES, NOT_FINAL

    return db.query(
        "SELECT cycle_id, symbol, side, notional_usd, quantity, filled_qty, filled_avg_price, price, status, client_order_id,"
        f" broker_order_id, created_at FROM trades WHERE {NOT_FINAL} ORDER BY id",
        FINAL_TRADE_STATUSES,
    )


def cycles(db: Database, limit: int, since: str | None = None) -> list[dict[str, Any]]:
    where, params = _where({"started_at >= ?": since})
    return db.query(
        "SELECT cycle_id, started_at, finished_at, status, dry_run, error, duration_ms, symbols_count, orders_count, errors_count"
        f" FROM cycles{where} ORDER BY started_at DESC, rowid DESC LIMIT ?",
        params + (limit,),
    )


def trades(db: Database, limit: int, since: str | None = None, symbol: str | None = None) -> list[dict[str, Any]]:
    where, params = _where({"created_at >= ?": since, "symbol = ?": symbol})
    return db.query(f"SELECT * FROM trades{where} ORDER BY id DESC LIMIT ?", params + (limit,))


def decisions(db: Database, limit: int, since: str | None = None, symbol: str | None = None) -> list[dict[str, Any]]:
    where, params = _where({"role = 'main' AND created_at >= ?": since or "", "symbol = ?": symbol})
    rows = db.query(
        "SELECT id, cycle_id, symbol, action, confidence, reasoning, model, outcome, detail, price, quote_age_seconds,"
        f" quote_source, created_at, reused_decision_id FROM ai_decisions{where} ORDER BY id DESC LIMIT ?",
        params + (limit,),
    )
    return rows


def outage(db: Database) -> dict[str, Any] | None:
    """The run of cycles aborted because a service was unreachable, since the
    last cycle that completed (or aborted for a critical reason): when it
    began, how many cycles, and the latest error. None when there is none."""
    row = db.one(
        """SELECT MIN(started_at) AS since, COUNT(*) AS cycles, MAX(started_at) AS latest FROM cycles
           WHERE status = 'aborted' AND abort_kind = 'outage' AND started_at > COALESCE(
             (SELECT MAX(started_at) FROM cycles WHERE status = 'completed'
              OR (status = 'aborted' AND COALESCE(abort_kind, 'critical') = 'critical')), '')"""
    )
    if not row or not row["cycles"]:
        return None
    last = db.one("SELECT error FROM cycles WHERE started_at = ? AND status = 'aborted' ORDER BY rowid DESC LIMIT 1", (row["latest"],))
    return {"since": row["since"], "cycles": row["cycles"], "error": last["error"] if last else None}


def last_cycle(db: Database) -> dict[str, Any] | None:
    return db.one("SELECT * FROM cycles ORDER BY started_at DESC, rowid DESC LIMIT 1")


def cycle_story(db: Database, cycle_id: str) -> dict[str, Any] | None:
    """Everything one cycle saw, decided and did."""
    if cycle_id == "last":
        row = last_cycle(db)
    else:
        row = db.one("SELECT * FROM cycles WHERE cycle_id = ?", (cycle_id,))
    if row is None:
        return None
    cycle_id = row["cycle_id"]
    row["summary"] = json.loads(row["summary"]) if row.get("summary") else None
    decisions_rows = db.query("SELECT * FROM ai_decisions WHERE cycle_id = ? AND role = 'main' ORDER BY id", (cycle_id,))
    for d in decisions_rows:
        d["inputs"] = json.loads(d["inputs"]) if d.get("inputs") else None
    return {
        "cycle": row,
        # What the shadows (and any replays) answered on the same requests: recorded, never traded.
        "challengers": db.query(
            "SELECT symbol, role, analyst, model, action, confidence, outcome, reasoning, latency_ms, prompt_tokens,"
            " completion_tokens, request_id, replay_of FROM ai_decisions WHERE cycle_id = ? AND role != 'main' ORDER BY id",
            (cycle_id,),
        ),
        "quotes": db.query("SELECT symbol, price, as_of, source, change_percent FROM quotes WHERE cycle_id = ? ORDER BY symbol", (cycle_id,)),
        "decisions": decisions_rows,
        "trades": db.query("SELECT * FROM trades WHERE cycle_id = ? ORDER BY id", (cycle_id,)),
    }
