"""Read-side queries for ``status``, the history commands and ``explain``.
Newest first; every query uses an index (see schema.py)."""

from __future__ import annotations

import json
from typing import Any

from tradecycle.store import spans
from tradecycle.store.db import Database


def _where(filters: dict[str, Any]) -> tuple[str, tuple]:
    """``{clause: value}`` -> WHERE text and parameters; a None value leaves its clause out,
    a clause with several ``?`` repeats its value."""
    clauses, params = [], []
    for clause, value in filters.items():
        if value is not None:
            clauses.append(clause)
            params.extend([value] * clause.count("?"))
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", tuple(params)


def agent_status(db: Database) -> dict[str, Any]:
    return db.one("SELECT * FROM agent_status WHERE id = 1") or {}


def positions(db: Database) -> list[dict[str, Any]]:
    return db.query("SELECT * FROM positions ORDER BY symbol")


def position_marks(db: Database) -> dict[str, str]:
    """symbol -> the highest price seen since entry (the trailing stop's base)."""
    return {r["symbol"]: r["high_price"] for r in db.query("SELECT symbol, high_price FROM position_marks")}


def open_orders(db: Database) -> list[dict[str, Any]]:
    """Orders sent that may still fill (or whose fate is not known yet), oldest first."""
    from tradecycle.store.audit import FINAL_TRADE_STATUSES, NOT_FINAL

    return db.query(
        "SELECT cycle_id, symbol, side, notional_usd, quantity, filled_qty, filled_avg_price, price, status, client_order_id,"
        f" broker_order_id, created_at, order_type, stop_price FROM trades WHERE {NOT_FINAL} ORDER BY id",
        FINAL_TRADE_STATUSES,
    )


# Newest first, each filter on an index that also gives the order, so a query stops after
# ``limit`` rows whatever the table's size (schema.py; tests/test_history_indexes.py reads the plans).
_DECISION_COLUMNS = ("id, cycle_id, symbol, action, confidence, reasoning, model, outcome, detail, price, quote_age_seconds,"
                     " quote_source, created_at, reused_decision_id, repeats, last_seen_at, last_cycle_id")
_HISTORY_SELECT = {
    "cycles": "SELECT cycle_id, started_at, finished_at, status, dry_run, error, duration_ms, symbols_count, orders_count,"
              " errors_count FROM cycles{where} ORDER BY started_at DESC, rowid DESC LIMIT ?",
    "trades": "SELECT * FROM trades{where} ORDER BY created_at DESC, id DESC LIMIT ?",
    "decisions": f"SELECT {_DECISION_COLUMNS} FROM ai_decisions{{where}} ORDER BY created_at DESC, id DESC LIMIT ?",
}
_TIME_COLUMN = {"cycles": "started_at", "trades": "created_at", "decisions": "created_at"}
# A decision row that spans several cycles (store/spans.py) is shown from its first cycle on:
# with --since, the rows begun before and still extended after it come last.
_SPANS_SINCE = (f"SELECT * FROM (SELECT * FROM ({{rows}}) UNION ALL SELECT {_DECISION_COLUMNS} FROM ai_decisions INDEXED BY idx_ai_decisions_last_seen_at"
                " WHERE last_seen_at >= ? AND created_at < ? AND +role = 'main'{symbol}) ORDER BY created_at DESC, id DESC LIMIT ?")


def history_query(kind: str, limit: int, since: str | None = None, symbol: str | None = None) -> tuple[str, tuple]:
    """The statement (and its parameters) behind ``tradecycle cycles|trades|decisions``."""
    where, params = _where({f"{_TIME_COLUMN[kind]} >= ?": since, "symbol = ?": symbol})
    if kind == "decisions":  # the main analyst's: shadows and replays are in `score` and `explain`
        where = f"{where} AND +role = 'main'" if where else " WHERE +role = 'main'"
    sql, params = _HISTORY_SELECT[kind].format(where=where), params + (limit,)
    if kind == "decisions" and since:
        sql = _SPANS_SINCE.format(rows=sql, symbol=" AND symbol = ?" if symbol else "")
        params += (since, since) + ((symbol,) if symbol else ()) + (limit,)
    return sql, params


def query_plan(db: Database, sql: str, params: tuple) -> list[str]:
    """SQLite's plan for a statement, one step a line (EXPLAIN QUERY PLAN)."""
    return [row["detail"] for row in db.query("EXPLAIN QUERY PLAN " + sql, params)]


def cycles(db: Database, limit: int, since: str | None = None) -> list[dict[str, Any]]:
    return db.query(*history_query("cycles", limit, since))


def trades(db: Database, limit: int, since: str | None = None, symbol: str | None = None) -> list[dict[str, Any]]:
    return db.query(*history_query("trades", limit, since, symbol))


def decisions(db: Database, limit: int, since: str | None = None, symbol: str | None = None) -> list[dict[str, Any]]:
    return db.query(*history_query("decisions", limit, since, symbol))


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
    # What this cycle wrote, and the rows of earlier cycles it only extended (store/spans.py).
    decisions_rows = [d for d in spans.covering(db, "ai_decisions", "created_at", row, "id") if d["role"] == "main"]
    for d in decisions_rows:
        d["inputs"] = json.loads(d["inputs"]) if d.get("inputs") else None
    quote_keys = ("symbol", "price", "as_of", "source", "change_percent", "repeats", "last_seen_at")
    return {
        "cycle": row,
        "quotes": [{k: q[k] for k in quote_keys} for q in spans.covering(db, "quotes", "fetched_at", row, "symbol", by_time=True)],
        # What the shadows (and any replays) answered on the same requests: recorded, never traded.
        "challengers": db.query(
            "SELECT symbol, role, analyst, model, action, confidence, outcome, reasoning, latency_ms, prompt_tokens,"
            " completion_tokens, request_id, replay_of FROM ai_decisions WHERE cycle_id = ? AND role != 'main' ORDER BY id",
            (cycle_id,),
        ),
        "decisions": decisions_rows,
        "trades": db.query("SELECT * FROM trades WHERE cycle_id = ? ORDER BY id", (cycle_id,)),
    }
