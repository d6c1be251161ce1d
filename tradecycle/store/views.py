"""The ``_v`` views for SQL users and Datasette, as the migration that last
made them left them. The tables keep money as exact Decimal text, which sorts
as text ("10000.00" < "9500.00"); every money column shows as REAL in its
table's view, under the same name.

A migration that adds a money column to a table with a view adds a new
version of the views here and recreates them (tests/test_sql_views.py
enumerates each table's money columns and checks its view). A version, once
shipped, is never edited: its migration must make the same views on every
database.
"""

from __future__ import annotations

# Every money column of each table, including those added after version 6
# (``cycles.equity``, ``trades.fee_usd``; the broker-held stops' ``stop_price``
# and ``limit_price``), and the span columns of version 7 (a row that stands for
# several cycles: ``repeats``, ``last_seen_at``).
EVERY_MONEY_COLUMN = {
    "trades_v": """SELECT id, cycle_id, created_at, symbol, side, order_type, status, dry_run,
        CAST(quantity AS REAL) AS quantity, CAST(notional_usd AS REAL) AS notional_usd, CAST(price AS REAL) AS price,
        CAST(stop_price AS REAL) AS stop_price, CAST(limit_price AS REAL) AS limit_price, time_in_force,
        CAST(filled_qty AS REAL) AS filled_qty, CAST(filled_avg_price AS REAL) AS filled_avg_price,
        CAST(filled_qty AS REAL) * CAST(filled_avg_price AS REAL) AS filled_value_usd, CAST(fee_usd AS REAL) AS fee_usd,
        client_order_id, broker_order_id, executed_at, updated_at, notes
        FROM trades""",
    "decisions_v": """SELECT id, cycle_id, created_at, symbol, role, analyst, action, confidence, outcome, detail,
        CAST(price AS REAL) AS price, quote_age_seconds, quote_source, model, prompt_hash, reasoning, reused_decision_id,
        latency_ms, prompt_tokens, completion_tokens, request_id, replay_of, repeats, last_seen_at, last_cycle_id
        FROM ai_decisions""",
    "quotes_v": """SELECT id, cycle_id, symbol, CAST(price AS REAL) AS price, CAST(previous_close AS REAL) AS previous_close,
        CAST(change_percent AS REAL) AS change_percent, as_of, source, fetched_at, repeats, last_seen_at, last_cycle_id
        FROM quotes""",
    "cycles_v": """SELECT cycle_id, started_at, finished_at, status, abort_kind, dry_run, duration_ms / 1000.0 AS duration_seconds,
        symbols_count, orders_count, errors_count, error, CAST(equity AS REAL) AS equity,
        (SELECT SUM(CAST(t.notional_usd AS REAL)) FROM trades t WHERE t.cycle_id = cycles.cycle_id) AS orders_notional_usd
        FROM cycles""",
    "positions_v": """SELECT symbol, CAST(qty AS REAL) AS qty, CAST(avg_entry_price AS REAL) AS avg_entry_price,
        CAST(current_price AS REAL) AS current_price, CAST(market_value AS REAL) AS market_value,
        CAST(unrealized_pl AS REAL) AS unrealized_pl, synced_at
        FROM positions""",
}
