"""Pruning history older than ``database.keep_days``: a little every cycle.

The kill switch must never wait long for a prune (``killswitch`` gives up
after the 5 s busy timeout). So a prune is many small write transactions,
each deleting at most ``BATCH_ROWS`` rows found through an index on the
table's time column (never a table scan), with a short pause between them
so that a waiting writer gets in. A cycle spends at most
``BUDGET_SECONDS`` on it; a large backlog (turning ``keep_days`` on for a
database a year old) is cleared over the following cycles.

Freed pages go back to the file system with ``PRAGMA incremental_vacuum``, a
few at a time, so the file shrinks. That needs ``auto_vacuum = INCREMENTAL``,
which a database made by this version has from the start (store/db.py). An
older database can only be switched by one ``VACUUM``, which rewrites the
whole file and holds the write lock meanwhile: it is done here only while the
live data is at most ``SWITCH_MAX_BYTES`` (a fraction of a second); a larger
one stays as it is (its free pages are reused, so it stops growing) until
someone runs ``tradecycle vacuum``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tradecycle.models import FINAL_TRADE_STATUSES  # only trades in a final state go
from tradecycle.store import chain
from tradecycle.store.db import Database

BATCH_ROWS = 250  # rows per write transaction: a few milliseconds on a year's database
BUDGET_SECONDS = 0.2  # per cycle, deletes and vacuum together
PAUSE_SECONDS = 0.005  # between transactions, so that `killswitch on` is never starved
VACUUM_PAGES = 128  # pages handed back per transaction (512 KB at 4 KB pages): under 0.15 s on a year's database
SWITCH_MAX_BYTES = 16 * 1024 * 1024  # live data small enough to switch an old database in one VACUUM

_FINAL = ", ".join(f"'{s}'" for s in FINAL_TRADE_STATUSES)
_NOT_EXTENDED_SINCE = "AND (+last_seen_at IS NULL OR +last_seen_at < :before)"  # a span still growing stays
# (table, indexed time column, what else must hold for a row to go), oldest data first. A unary
# "+" keeps SQLite from walking another index (trades.status, say: most trades are filled).
TARGETS = (
    ("ai_decisions", "created_at", _NOT_EXTENDED_SINCE),
    # A request goes once no decision points at it (one request may serve a main and its shadows).
    ("ai_requests", "created_at",
     "AND NOT EXISTS (SELECT 1 FROM ai_decisions d WHERE d.request_id = ai_requests.request_id)"),
    ("quotes", "fetched_at", _NOT_EXTENDED_SINCE),
    ("trades", "created_at", f"AND +status IN ({_FINAL})"),
    ("cycles", "started_at", "AND +status != 'running'"),
    ("news", "published_at", ""),
)


def delete_statement(table: str, column: str, condition: str) -> str:
    """One batch: the oldest ``:batch`` rows older than ``:before``, found on the index of ``column``."""
    return f"DELETE FROM {table} WHERE rowid IN ({_batch(table, column, condition, 'rowid')})"


def select_statement(table: str, column: str, condition: str) -> str:
    """The rows of the next batch, read before the write lock is taken, so that the delete finds them in memory."""
    return _batch(table, column, condition, "*")


def _batch(table: str, column: str, condition: str, what: str) -> str:
    return f"SELECT {what} FROM {table} WHERE {column} < :before {condition} ORDER BY {column} LIMIT :batch"


def due_statement(table: str, column: str, condition: str) -> str:
    """Whether anything is left to delete, on the same index."""
    return f"SELECT 1 AS due FROM {table} WHERE {column} < :before {condition} LIMIT 1"


@dataclass
class PruneReport:
    deleted: dict[str, int] = field(default_factory=dict)
    transactions: int = 0
    done: bool = False  # nothing left to delete or hand back: the backlog is cleared
    pages_freed: int = 0  # handed back to the file system
    switched: bool = False  # an old database switched to incremental vacuum

    @property
    def rows(self) -> int:
        return sum(self.deleted.values())


def prune(
    db: Database,
    before: str,
    *,
    budget_seconds: float = BUDGET_SECONDS,
    batch_rows: int = BATCH_ROWS,
    chain_batch: int = chain.CHAIN_BATCH_LINKS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> PruneReport:
    """Delete history older than ``before`` (ISO text) for at most
    ``budget_seconds``, then hand freed pages back. Open orders and spans
    still being extended are kept. Every decision and trade deleted gets a
    deletion link, and once all old rows are gone the chain's old links go
    (store/chain.py), ``chain_batch`` a transaction. Raises DatabaseUnusable like any write."""
    report = PruneReport()
    ends_at = clock() + max(budget_seconds, 0.0)
    params = {"before": before, "batch": batch_rows}
    report.done = all(_prune_table(db, target, params, report, ends_at, clock, sleep) for target in TARGETS)
    if report.done:  # the rows are gone: now the links older than them, leaving a checkpoint
        report.done = _prune_chain(db, before, chain_batch, report, ends_at, clock, sleep)
    _give_back_pages(db, report, ends_at, clock)
    report.deleted = {t: n for t, n in report.deleted.items() if n}
    return report


def _prune_table(db: Database, target: tuple[str, str, str], params: dict, report: PruneReport, ends_at: float,
                 clock: Callable[[], float], sleep: Callable[[float], None]) -> bool:
    """Delete ``target``'s old rows a batch at a time until none is left (True) or the time is up."""
    table, column, condition = target
    while db.one(due_statement(table, column, condition), params):  # a read: no lock taken
        if clock() >= ends_at:
            return False
        if report.transactions:
            sleep(PAUSE_SECONDS)  # a writer waiting on the lock gets in here
        db.query(select_statement(table, column, condition), params)  # read the batch first, without the lock
        with db.transaction():
            if table in chain.CHAINED:  # each row goes with a deletion link (store/chain.py)
                ids = [r["id"] for r in db.query(_batch(table, column, condition, "id"), params)]
                count = db.execute(f"DELETE FROM {table} WHERE id IN ({', '.join('?' for _ in ids)})", tuple(ids)).rowcount
                chain.append_deletions(db.conn, table, ids)
            else:
                count = db.execute(delete_statement(table, column, condition), params).rowcount
        report.transactions += 1
        report.deleted[table] = report.deleted.get(table, 0) + count
    return True


def _prune_chain(db: Database, before: str, batch: int, report: PruneReport, ends_at: float,
                 clock: Callable[[], float], sleep: Callable[[float], None]) -> bool:
    """Drop the chain's links older than ``before``, a batch (and a checkpoint) per transaction."""
    while chain.prune_due(db, before, batch):
        if clock() >= ends_at:
            return False
        if report.transactions:
            sleep(PAUSE_SECONDS)
        dropped = chain.prune_batch(db, before, batch)
        report.transactions += 1
        if not dropped:  # the batch was edited: kept for `verify` to name, never pruned
            return True
        report.deleted["chain_links"] = report.deleted.get("chain_links", 0) + dropped
    return True


def _give_back_pages(db: Database, report: PruneReport, ends_at: float, clock: Callable[[], float]) -> None:
    mode = db.one("PRAGMA auto_vacuum")["auto_vacuum"]
    if mode == 0:
        if report.done and live_bytes(db) <= SWITCH_MAX_BYTES:
            switch_to_incremental(db)
            report.switched = True
        return
    while free := db.one("PRAGMA freelist_count")["freelist_count"]:
        if clock() >= ends_at:
            report.done = False  # pages left to hand back next cycle
            return
        db.run_to_completion(f"PRAGMA incremental_vacuum({VACUUM_PAGES})")
        report.pages_freed += min(free, VACUUM_PAGES)
        report.transactions += 1


def live_bytes(db: Database) -> int:
    """Bytes of the file that hold data (free pages left out)."""
    page_size = db.one("PRAGMA page_size")["page_size"]
    pages = db.one("PRAGMA page_count")["page_count"] - db.one("PRAGMA freelist_count")["freelist_count"]
    return pages * page_size


def switch_to_incremental(db: Database) -> None:
    """Rewrite the whole file once with ``auto_vacuum = INCREMENTAL`` (it then
    shrinks as history is pruned). Holds the write lock for as long as it takes."""
    db.execute("PRAGMA auto_vacuum = INCREMENTAL")
    db.execute("VACUUM")
