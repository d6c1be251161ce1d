"""The versioned schema. Append-only: never edit a migration that has shipped;
add a new function at the end of ``MIGRATIONS``. ``PRAGMA user_version`` holds
how many have been applied.

This follows the rule of sqlite-utils' ``Migrations`` (ordered, never edited,
one transaction each) with a plain version number instead of its bookkeeping
table, for two reasons: opening an up-to-date database, which every command
does, costs one pragma read and never imports sqlite-utils (``killswitch``
must start fast); and the check-and-apply happens inside one ``BEGIN
IMMEDIATE``, so two first runs racing on a new database cannot both apply a
migration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import DatabaseUnusable
from .db import Database

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


def _m3_spans_and_history_indexes(db: sqlite_utils.Database) -> None:
    """Version 3: a row that repeats the one before it is extended, not copied
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


MIGRATIONS: list[Callable[["sqlite_utils.Database"], None]] = [
    _m1_contract_tables,
    _m2_audit_cache_and_simulator,
    _m3_spans_and_history_indexes,
]
LATEST_VERSION = len(MIGRATIONS)


def schema_version(db: Database) -> int:
    return db.execute("PRAGMA user_version").fetchone()[0]


def migrate(db: Database, *, up_to: int = LATEST_VERSION) -> int:
    """Apply the missing migrations, each in its own transaction. Returns the version.

    A database newer than this program is refused rather than guessed at.
    """
    current = schema_version(db)
    if current > LATEST_VERSION:
        raise DatabaseUnusable(
            f"database {db.path} has schema version {current}, newer than this tradecycle ({LATEST_VERSION}): upgrade tradecycle"
        )
    for version in range(current + 1, up_to + 1):
        with db.transaction():
            if schema_version(db) >= version:  # another process applied it while we waited for the write lock
                continue
            MIGRATIONS[version - 1](db.utils)
            db.execute(f"PRAGMA user_version = {version}")
    return schema_version(db)

