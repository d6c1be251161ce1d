"""The versioned schema. Append-only: never edit a migration that has shipped;
add a new function here and at the end of ``MIGRATIONS`` (the first nine live in
``migrations_1_to_9.py``). ``PRAGMA user_version`` holds
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

from tradecycle.infra.errors import DatabaseUnusable
from tradecycle.store.db import Database
from tradecycle.store.migrations_1_to_9 import SHIPPED  # versions 1 to 9, as shipped, never edited
from tradecycle.store.schema_record import _m_decision_provenance, _m_record_chain

if TYPE_CHECKING:
    import sqlite_utils


def _m_broker_held_stops(db: sqlite_utils.Database) -> None:
    """Broker-held stops (cycle/stops.py): each trade's order type (``market``,
    ``stop``, ``stop_limit``; older rows were all market orders), the stop's
    trigger price, a stop-limit's limit price and the order's time in force,
    an index to find a symbol's stop orders; the same for the simulator's orders."""
    db.execute("ALTER TABLE trades ADD COLUMN order_type TEXT NOT NULL DEFAULT 'market'")
    for column in ("stop_price", "limit_price", "time_in_force"):
        db["trades"].add_column(column, str)
    db["trades"].create_index(["order_type", "symbol"], index_name="idx_trades_order_type_symbol")
    db.execute("ALTER TABLE sim_orders ADD COLUMN order_type TEXT NOT NULL DEFAULT 'market'")  # the simulator's stops
    for column in ("stop_price", "limit_price", "time_in_force"):
        db["sim_orders"].add_column(column, str)
    db.execute("DROP VIEW IF EXISTS trades_v")
    db.execute(f"CREATE VIEW trades_v AS {STOP_TRADES_VIEW}")


# trades_v as migration 6 made it, plus the order type and a stop's prices.
STOP_TRADES_VIEW = """SELECT id, cycle_id, created_at, symbol, side, order_type, status, dry_run,
    CAST(quantity AS REAL) AS quantity, CAST(notional_usd AS REAL) AS notional_usd, CAST(price AS REAL) AS price,
    CAST(stop_price AS REAL) AS stop_price, CAST(limit_price AS REAL) AS limit_price, time_in_force,
    CAST(filled_qty AS REAL) AS filled_qty, CAST(filled_avg_price AS REAL) AS filled_avg_price,
    CAST(filled_qty AS REAL) * CAST(filled_avg_price AS REAL) AS filled_value_usd,
    client_order_id, broker_order_id, executed_at, updated_at, notes
    FROM trades"""


def _m_backtests(db: sqlite_utils.Database) -> None:
    """``tradecycle backtest``: one row per run, the history its sources fetched and the
    model replies by exact request (the tables as shipped: ``store/backtests.py``)."""
    from .backtests import create_tables

    create_tables(db)


def _m_every_money_column_in_the_views(db: sqlite_utils.Database) -> None:
    """The ``_v`` views made again with every money column of their table as REAL
    (``cycles.equity``, ``trades.fee_usd`` were missing; see store/views.py)."""
    from tradecycle.store.views import EVERY_MONEY_COLUMN

    for name, select in EVERY_MONEY_COLUMN.items():
        db.execute(f"DROP VIEW IF EXISTS {name}")
        db.execute(f"CREATE VIEW {name} AS {select}")


def _m_broker_state_at_start(db: sqlite_utils.Database) -> None:
    """When a cycle first compared the broker with this database (``agent_status.broker_first_seen_at``)
    and what the broker already held then (``broker_state_at_start``, or NULL: cycle/adopt.py).
    A database with cycles already was compared long ago: marked with its first cycle's time."""
    db["agent_status"].add_column("broker_first_seen_at", str)
    db["agent_status"].add_column("broker_state_at_start", str)
    db.execute("UPDATE agent_status SET broker_first_seen_at = (SELECT MIN(started_at) FROM cycles) WHERE id = 1")


def _m_quotes_found_by_time(db: sqlite_utils.Database) -> None:
    """Quotes lose their index on ``cycle_id`` (about a tenth of the shipped config's daily growth,
    a twentieth of a year's database): ``explain`` finds a cycle's quotes on ``fetched_at``,
    near the cycle's time (store/spans.py, ``covering``), as retention and ``score`` do."""
    db.execute("DROP INDEX IF EXISTS idx_quotes_cycle_id")


MIGRATIONS: list[Callable[["sqlite_utils.Database"], None]] = [
    *SHIPPED,
    _m_broker_held_stops,
    _m_backtests,
    _m_every_money_column_in_the_views,
    _m_broker_state_at_start,
    _m_decision_provenance,
    _m_record_chain,
    _m_quotes_found_by_time,
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

