"""Migrations 1 to 9, as shipped: never edited (``schema.py`` lists them with
every later one, and says how migrations work)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite_utils


def _m1_contract_tables(db: sqlite_utils.Database) -> None:
    """Version 1: the five tables of the contract."""
    db["agent_status"].create(
        {
            "id": int,
            "kill_switch_active": int,
            "kill_switch_reason": str,
            "kill_switch_changed_at": str,
            "last_cycle_id": str,
            "last_cycle_time": str,
            "position_count": int,
            "daily_pnl": str,
        },
        pk="id",
        defaults={"kill_switch_active": 0, "position_count": 0},
    )
    db["agent_status"].insert({"id": 1, "kill_switch_active": 0, "position_count": 0})
    db["cycles"].create(
        {"cycle_id": str, "started_at": str, "finished_at": str, "status": str, "dry_run": int, "error": str},
        pk="cycle_id",
    )
    db["ai_decisions"].create(
        {
            "id": int,
            "cycle_id": str,
            "symbol": str,
            "action": str,
            "confidence": float,
            "reasoning": str,
            "model": str,
            "outcome": str,
            "created_at": str,
        },
        pk="id",
    )
    db["trades"].create(
        {
            "id": int,
            "cycle_id": str,
            "symbol": str,
            "side": str,
            "quantity": str,
            "price": str,
            "status": str,
            "client_order_id": str,
            "broker_order_id": str,
            "executed_at": str,
            "notes": str,
            "created_at": str,
            "updated_at": str,
        },
        pk="id",
    )
    db["trades"].create_index(["client_order_id"], unique=True)
    db["positions"].create(
        {
            "symbol": str,
            "qty": str,
            "avg_entry_price": str,
            "market_value": str,
            "current_price": str,
            "unrealized_pl": str,
            "synced_at": str,
        },
        pk="symbol",
    )


def _m2_audit_cache_and_simulator(db: sqlite_utils.Database) -> None:
    """Version 2: audit columns, the price and news caches, the simulator's books, indexes."""
    for column, kind in [
        ("price", str),
        ("quote_age_seconds", float),
        ("quote_source", str),
        ("inputs", str),
        ("raw_reply", str),
        ("latency_ms", int),
        ("prompt_tokens", int),
        ("completion_tokens", int),
        ("reused_decision_id", int),
        ("detail", str),
    ]:
        db["ai_decisions"].add_column(column, kind)
    for column, kind in [
        ("notional_usd", str),
        ("dry_run", int),
        ("filled_qty", str),
        ("filled_avg_price", str),
    ]:
        db["trades"].add_column(column, kind)
    for column, kind in [
        ("duration_ms", int),
        ("symbols_count", int),
        ("orders_count", int),
        ("errors_count", int),
        ("summary", str),
    ]:
        db["cycles"].add_column(column, kind)
    for column in ("equity", "last_equity", "cash", "buying_power", "account_status", "account_synced_at"):
        db["agent_status"].add_column(column, str)

    db["quotes"].create(
        {
            "id": int,
            "cycle_id": str,
            "symbol": str,
            "price": str,
            "as_of": str,
            "source": str,
            "change_percent": str,
            "previous_close": str,
            "fetched_at": str,
        },
        pk="id",
    )
    db["news"].create(
        {
            "id": int,
            "symbol": str,
            "news_id": str,
            "headline": str,
            "summary": str,
            "source": str,
            "url": str,
            "published_at": str,
            "fetched_at": str,
        },
        pk="id",
    )
    db["news"].create_index(["symbol", "news_id"], unique=True)
    db["news_fetches"].create({"symbol": str, "fetched_at": str}, pk="symbol")

    db["sim_market"].create(
        {"symbol": str, "price": str, "previous_close": str, "day": str, "updated_at": str}, pk="symbol"
    )
    db["sim_account"].create({"id": int, "cash": str, "day": str, "day_start_equity": str}, pk="id")
    db["sim_positions"].create({"symbol": str, "qty": str, "avg_entry_price": str}, pk="symbol")
    db["sim_orders"].create(
        {
            "id": str,
            "client_order_id": str,
            "symbol": str,
            "side": str,
            "qty": str,
            "notional": str,
            "filled_qty": str,
            "filled_avg_price": str,
            "status": str,
            "submitted_at": str,
            "filled_at": str,
            "message": str,
        },
        pk="id",
    )
    db["sim_orders"].create_index(["client_order_id"], unique=True)

    for table, columns in [
        ("cycles", ["started_at"]),
        ("cycles", ["status"]),
        ("ai_decisions", ["cycle_id"]),
        ("ai_decisions", ["symbol", "id"]),
        ("trades", ["cycle_id"]),
        ("trades", ["status"]),
        ("trades", ["symbol", "id"]),
        ("quotes", ["symbol", "id"]),
        ("quotes", ["cycle_id"]),
        ("news", ["symbol", "published_at"]),
    ]:
        db[table].create_index(columns)


def _m3_abort_kind(db: sqlite_utils.Database) -> None:
    """Version 3: why a cycle aborted: ``critical`` (counts towards the kill
    switch) or ``outage`` (a service unreachable: the next cycle retries)."""
    db["cycles"].add_column("abort_kind", str)


def _m4_protective_exits(db: sqlite_utils.Database) -> None:
    """Version 4: the highest price seen of each held position (for the trailing
    stop), and what the kill switch still has to do (cancel open orders, and
    with ``--flatten`` close every position)."""
    db["position_marks"].create(
        {"symbol": str, "entry_price": str, "high_price": str, "high_at": str, "updated_at": str}, pk="symbol"
    )
    db["agent_status"].add_column("kill_switch_flatten", int, not_null_default=0)
    db["agent_status"].add_column("kill_switch_cleanup_at", str)


def _m5_daily_bars(db: sqlite_utils.Database) -> None:
    """Version 5: daily OHLCV bars (fetched at most once a day per symbol), when each symbol's
    bars were last fetched, and the simulator's intraday open/high/low."""
    db["daily_bars"].create(
        {
            "symbol": str,
            "day": str,
            "open": str,
            "high": str,
            "low": str,
            "close": str,
            "volume": str,
            "source": str,
            "fetched_at": str,
        },
        pk=("symbol", "day"),
    )
    db["bar_fetches"].create({"symbol": str, "fetched_at": str, "attempted_at": str}, pk="symbol")
    for column in ("day_open", "day_high", "day_low"):
        db["sim_market"].add_column(column, str)


# Views for SQL users and Datasette: the tables keep money as Decimal text
# (exact), which sorts as text ("10000.00" < "9500.00"); these show it as REAL.
# Each is dropped and created again, so a later migration that adds a column
# redefines its view the same way (a view lists its columns: ``SELECT *`` would
# clash with the REAL column of the same name).
NUMERIC_VIEWS = {
    "trades_v": """SELECT id, cycle_id, created_at, symbol, side, status, dry_run,
        CAST(quantity AS REAL) AS quantity, CAST(notional_usd AS REAL) AS notional_usd, CAST(price AS REAL) AS price,
        CAST(filled_qty AS REAL) AS filled_qty, CAST(filled_avg_price AS REAL) AS filled_avg_price,
        CAST(filled_qty AS REAL) * CAST(filled_avg_price AS REAL) AS filled_value_usd,
        client_order_id, broker_order_id, executed_at, updated_at, notes
        FROM trades""",
    "decisions_v": """SELECT id, cycle_id, created_at, symbol, action, confidence, outcome, detail,
        CAST(price AS REAL) AS price, quote_age_seconds, quote_source, model, reasoning, reused_decision_id,
        latency_ms, prompt_tokens, completion_tokens
        FROM ai_decisions""",
    "quotes_v": """SELECT id, cycle_id, symbol, CAST(price AS REAL) AS price, CAST(previous_close AS REAL) AS previous_close,
        CAST(change_percent AS REAL) AS change_percent, as_of, source, fetched_at
        FROM quotes""",
    "cycles_v": """SELECT cycle_id, started_at, finished_at, status, abort_kind, dry_run, duration_ms / 1000.0 AS duration_seconds,
        symbols_count, orders_count, errors_count, error,
        (SELECT SUM(CAST(t.notional_usd AS REAL)) FROM trades t WHERE t.cycle_id = cycles.cycle_id) AS orders_notional_usd
        FROM cycles""",
    "positions_v": """SELECT symbol, CAST(qty AS REAL) AS qty, CAST(avg_entry_price AS REAL) AS avg_entry_price,
        CAST(current_price AS REAL) AS current_price, CAST(market_value AS REAL) AS market_value,
        CAST(unrealized_pl AS REAL) AS unrealized_pl, synced_at
        FROM positions""",
}

# Declared foreign keys to ``cycles`` only where SQLite's one way to add them,
# copying the table, is cheap: ``agent_status`` (one row) and ``trades`` (one
# row per order: thousands, not millions). ``ai_decisions`` and ``quotes`` grow
# by one row per symbol per minute; copying a year of them would hold the
# write lock long enough to make ``killswitch on`` wait, so they have none
# (join on their indexed ``cycle_id``). Declared, not enforced (``PRAGMA
# foreign_keys`` stays off): an open order outlives its pruned cycle.
CHEAP_FOREIGN_KEYS = {"agent_status": "last_cycle_id", "trades": "cycle_id"}


def _m6_numeric_views_and_cheap_foreign_keys(db: sqlite_utils.Database) -> None:
    """Version 6: views with money as REAL for SQL users (``trades_v``,
    ``decisions_v``, ``quotes_v``, ``cycles_v``, ``positions_v``) and foreign
    keys to ``cycles`` where declaring one is cheap."""
    for table, column in CHEAP_FOREIGN_KEYS.items():
        # transform_sql rather than transform(): the statements run inside this
        # migration's own transaction (transform() would commit it half way).
        for sql in db[table].transform_sql(add_foreign_keys=[(column, "cycles", "cycle_id")]):
            db.execute(sql)
    for name, select in NUMERIC_VIEWS.items():
        db.execute(f"DROP VIEW IF EXISTS {name}")
        db.execute(f"CREATE VIEW {name} AS {select}")


def _m7_spans_and_history_indexes(db: sqlite_utils.Database) -> None:
    """Version 7: a row that repeats the one before it is extended, not copied
    (``repeats``, ``last_seen_at``, ``last_cycle_id``: see store/spans.py), and an
    index under every history filter and every prune (store/retention.py).

    ``ADD COLUMN`` with a constant default rewrites nothing. On an old
    database each ``CREATE INDEX`` reads its table once (about a second per
    million rows), once, at the upgrade.
    """
    for table in ("ai_decisions", "quotes"):
        db.execute(f"ALTER TABLE {table} ADD COLUMN repeats INTEGER NOT NULL DEFAULT 0")
        db.execute(f"ALTER TABLE {table} ADD COLUMN last_seen_at TEXT")
        db.execute(f"ALTER TABLE {table} ADD COLUMN last_cycle_id TEXT")
        # Only extended rows have a last_seen_at: a partial index stays small.
        db.execute(f"CREATE INDEX idx_{table}_last_seen_at ON {table} (last_seen_at) WHERE last_seen_at IS NOT NULL")
    for table, column in [
        ("ai_decisions", "created_at"),  # decisions --since; prune
        ("trades", "created_at"),  # trades --since; prune
        ("quotes", "fetched_at"),  # prune
        ("news", "published_at"),  # prune (the (symbol, published_at) index needs a symbol)
    ]:
        db[table].create_index([column])
    db["ai_decisions"].create_index(["symbol", "created_at"])  # decisions --symbol [--since]
    db["trades"].create_index(["symbol", "created_at"])  # trades --symbol [--since]


def _m8_analyst_scorecard(db: sqlite_utils.Database) -> None:
    """Version 8: who decided (``ai_decisions.role``: ``main``, ``shadow`` or
    ``replay``; ``analyst``: the model and the hash of the prompt template, set
    only where an analyst was asked), the exact request it was sent
    (``request_id`` into ``ai_requests``: messages stored once, zlib-compressed,
    keyed by their hash), which decision a replay re-asked (``replay_of``), the
    equity each cycle ended with (``cycles.equity``, for the drawdown) and the
    fee of a fill where the broker reports one (``trades.fee_usd``)."""
    db["ai_decisions"].add_column("role", str, not_null_default="main")
    for column, kind in [("analyst", str), ("prompt_hash", str), ("request_id", str), ("replay_of", int)]:
        db["ai_decisions"].add_column(column, kind)
    db["ai_requests"].create({"request_id": str, "messages": bytes, "created_at": str}, pk="request_id")
    db["ai_requests"].create_index(["created_at"])  # prune
    db["cycles"].add_column("equity", str)
    db["trades"].add_column("fee_usd", str)
    for columns in (["role", "created_at"], ["request_id"], ["replay_of"]):
        db["ai_decisions"].create_index(columns)
    db["quotes"].create_index(["symbol", "as_of"])  # the price a horizon after each decision
    db.execute("DROP VIEW IF EXISTS decisions_v")
    db.execute(f"CREATE VIEW decisions_v AS {SCORED_DECISIONS_VIEW}")


# decisions_v as migration 6 made it, plus who decided.
SCORED_DECISIONS_VIEW = """SELECT id, cycle_id, created_at, symbol, role, analyst, action, confidence, outcome, detail,
    CAST(price AS REAL) AS price, quote_age_seconds, quote_source, model, prompt_hash, reasoning, reused_decision_id,
    latency_ms, prompt_tokens, completion_tokens, request_id, replay_of
    FROM ai_decisions"""


def _m9_kill_switch_history_and_alert_state(db: sqlite_utils.Database) -> None:
    """Version 9: every change of the kill switch (who: a person or the tool,
    why, when, with ``--flatten`` or not; the tool's changes name their cycle),
    and what the alerts remember (when each kind was last sent, for the
    10-minute limit, and small marks: the cycles' health, the last daily summary).
    A switch already on or set when this runs becomes the first row
    (``changed_by`` ``unknown``: who set it was not recorded then)."""
    db["kill_switch_changes"].create(
        {
            "id": int,
            "changed_at": str,
            "active": int,
            "changed_by": str,  # person | tool | unknown
            "reason": str,
            "flatten": int,
            "cycle_id": str,
        },
        pk="id",
        foreign_keys=[("cycle_id", "cycles", "cycle_id")],
    )
    db.execute(
        "INSERT INTO kill_switch_changes (changed_at, active, changed_by, reason, flatten)"
        " SELECT kill_switch_changed_at, kill_switch_active, 'unknown', kill_switch_reason, kill_switch_flatten"
        " FROM agent_status WHERE id = 1 AND (kill_switch_changed_at IS NOT NULL OR kill_switch_active = 1)"
    )
    db["alert_state"].create(
        {"key": str, "sent_at": str, "value": str, "held_back": int, "updated_at": str},
        pk="key",
        not_null={"held_back"},
        defaults={"held_back": 0},
    )


SHIPPED = [_m1_contract_tables, _m2_audit_cache_and_simulator, _m3_abort_kind, _m4_protective_exits, _m5_daily_bars, _m6_numeric_views_and_cheap_foreign_keys, _m7_spans_and_history_indexes, _m8_analyst_scorecard, _m9_kill_switch_history_and_alert_state]  # in order: versions 1 to 9
