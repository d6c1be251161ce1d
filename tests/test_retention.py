"""Retention: history older than ``database.keep_days`` goes in small
transactions spread over cycles, the file shrinks, and the kill switch never
waits on a prune."""

from __future__ import annotations

import itertools
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from tradecycle.store import Database, Store, open_database, retention
from tradecycle.infra.times import iso

from .e2e_helpers import clean_env, run_cli

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
OLD, RECENT = NOW - timedelta(days=200), NOW - timedelta(days=1)
BEFORE = NOW - timedelta(days=90)
FILLER = "Price consolidating near support; no catalyst in the headlines. " * 4


def seed(path, cycles: int, per_cycle: int = 15, at: datetime = OLD) -> None:
    """Rows the way cycles write them, in bulk: ``cycles`` old cycles with a
    decision and a quote per symbol, a filled trade and a headline each."""
    rows = {"cycles": [], "ai_decisions": [], "quotes": [], "trades": [], "news": []}
    for c in range(cycles):
        when = iso(at + timedelta(minutes=c))
        cycle_id = f"old-{c}"
        rows["cycles"].append((cycle_id, when, when, "completed", 0))
        rows["trades"].append((cycle_id, "AAPL", "buy", "filled", f"tc-old-{c}", when))
        rows["news"].append(("AAPL", f"n{c}", FILLER, when, when))
        for s in range(per_cycle):
            rows["ai_decisions"].append((cycle_id, f"S{s}", "hold", "hold", FILLER, when, '{"headlines": []}'))
            rows["quotes"].append((cycle_id, f"S{s}", "100.00", when, "fake", when))
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO cycles (cycle_id, started_at, finished_at, status, dry_run) VALUES (?,?,?,?,?)", rows["cycles"])
    conn.executemany("INSERT INTO trades (cycle_id, symbol, side, status, client_order_id, created_at) VALUES (?,?,?,?,?,?)", rows["trades"])
    conn.executemany("INSERT INTO news (symbol, news_id, headline, published_at, fetched_at) VALUES (?,?,?,?,?)", rows["news"])
    conn.executemany("INSERT INTO ai_decisions (cycle_id, symbol, action, outcome, reasoning, created_at, inputs) VALUES (?,?,?,?,?,?,?)",
                     rows["ai_decisions"])
    conn.executemany("INSERT INTO quotes (cycle_id, symbol, price, as_of, source, fetched_at) VALUES (?,?,?,?,?,?)", rows["quotes"])
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def counts(db: Database) -> dict[str, int]:
    return {t: db.one(f"SELECT count(*) AS n FROM {t}")["n"] for t in ("cycles", "ai_decisions", "quotes", "trades", "news")}


def older_database(folder):
    """A database made before this version: tables already there, so no auto_vacuum."""
    path = folder / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE filler (x)")
    conn.close()
    return path


def prune_until_done(store: Store) -> int:
    """Prune as successive cycles would; returns how many cycles it took."""
    for cycles in itertools.count(1):
        report = store.prune(BEFORE)
        if report.done:
            return cycles


def test_prune_keeps_recent_history_open_orders_running_cycles_and_spans_still_growing(db, store):
    seed(db.path, cycles=3)
    store.start_cycle("recent", RECENT, False)
    store.record_decision({"cycle_id": "recent", "symbol": "AAPL", "action": "hold", "outcome": "hold", "created_at": iso(RECENT)})
    store.start_cycle("dead", OLD, False)  # still 'running': a later cycle must see it to reconcile it
    store.insert_trade({"cycle_id": "old-0", "symbol": "MSFT", "side": "buy", "status": "accepted",
                        "client_order_id": "old-open", "created_at": iso(OLD)})
    # A market_closed row begun long ago and extended a minute ago stays whole.
    db.execute("UPDATE ai_decisions SET outcome = 'market_closed', repeats = 9, last_seen_at = ? WHERE id = 1", (iso(RECENT),))

    report = store.prune(BEFORE)

    assert report.done
    assert report.deleted == {"ai_decisions": 44, "quotes": 45, "trades": 3, "cycles": 3, "news": 3}
    assert {r["cycle_id"] for r in db.query("SELECT cycle_id FROM cycles")} == {"recent", "dead"}
    assert [r["id"] for r in db.query("SELECT id FROM ai_decisions ORDER BY id")][0] == 1
    assert db.one("SELECT count(*) AS n FROM ai_decisions")["n"] == 2
    assert [r["client_order_id"] for r in db.query("SELECT client_order_id FROM trades")] == ["old-open"]
    assert store.prune(BEFORE).rows == 0


def test_a_backlog_is_spread_over_cycles_in_small_transactions(db):
    seed(db.path, cycles=10, per_cycle=10)  # 100 decisions, 100 quotes
    ticks = itertools.count()
    clock = lambda: next(ticks) * 0.05  # noqa: E731  each look at the clock: 50 ms later

    first = retention.prune(db, iso(BEFORE), budget_seconds=0.2, batch_rows=10, clock=clock, sleep=lambda s: None)

    assert not first.done and first.transactions == 3 and first.deleted == {"ai_decisions": 30}
    assert counts(db)["ai_decisions"] == 70
    reports = [first]
    while not reports[-1].done:
        reports.append(retention.prune(db, iso(BEFORE), budget_seconds=0.2, batch_rows=10, clock=clock, sleep=lambda s: None))
    assert len(reports) > 5
    assert counts(db) == dict.fromkeys(("cycles", "ai_decisions", "quotes", "trades", "news"), 0)


def test_pruned_pages_go_back_to_the_file_system(tmp_path):
    path = tmp_path / "t.db"
    open_database(path).close()
    seed(path, cycles=400)
    grown = path.stat().st_size
    db = open_database(path)
    assert db.one("PRAGMA auto_vacuum")["auto_vacuum"] == 2  # incremental, from the start
    prune_until_done(Store(db))
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert path.stat().st_size < grown / 4
    db.close()


def test_an_older_database_is_switched_to_incremental_vacuum_once_its_data_is_small(tmp_path):
    path = older_database(tmp_path)
    db = open_database(path)
    assert db.one("PRAGMA auto_vacuum")["auto_vacuum"] == 0
    db.close()
    seed(path, cycles=50)
    db = open_database(path)

    report = retention.prune(db, iso(BEFORE), clock=lambda: 0.0)  # a clock that stands still: the budget never runs out

    assert report.switched and db.one("PRAGMA auto_vacuum")["auto_vacuum"] == 2
    db.close()


@pytest.mark.parametrize("table, column, condition", retention.TARGETS)
def test_every_prune_batch_finds_its_rows_through_an_index(db, table, column, condition):
    sql = retention.delete_statement(table, column, condition)
    plan = [row["detail"] for row in db.query("EXPLAIN QUERY PLAN " + sql, {"before": "x", "batch": 1})]
    assert any(f"INDEX idx_{table}_{column} ({column}<?)" in step for step in plan), plan
    assert f"SCAN {table}" not in plan, plan  # no full table scan


def test_killswitch_on_during_the_first_prune_of_a_big_database_succeeds(tmp_path):
    """The prune runs in this process as back-to-back cycles would; `killswitch on`
    runs in another. The kill switch gets in between two small transactions:
    it is recorded, and it finishes while the prune is still going."""
    path = tmp_path / "big.db"
    open_database(path).close()
    seed(path, cycles=4000)  # 60,000 decisions and as many quotes, 200 days old
    started, finished = threading.Event(), {}
    pruned_cycles: list[int] = []

    def prune() -> None:
        db = Database(path)
        started.set()
        pruned_cycles.append(prune_until_done(Store(db)))
        finished["prune"] = time.monotonic()
        db.close()

    worker = threading.Thread(target=prune)
    worker.start()
    started.wait()
    result = run_cli(["killswitch", "on", "--reason", "stop during prune", "--db", str(path)], clean_env({}))
    finished["killswitch"] = time.monotonic()
    worker.join(timeout=120)

    assert result.returncode == 0, result.stderr
    assert "on" in result.stdout
    assert finished["killswitch"] < finished["prune"], "the kill switch waited for the whole prune"
    db = open_database(path)
    assert Store(db).kill_switch().reason == "stop during prune"
    assert counts(db) == dict.fromkeys(("cycles", "ai_decisions", "quotes", "trades", "news"), 0)
    assert pruned_cycles[0] > 1  # the backlog took several cycles' budgets
    db.close()


def test_vacuum_switches_an_older_database_once_and_refuses_while_a_cycle_runs(tmp_path):
    from tradecycle.infra.lock import FileLock, lock_path_for

    path = older_database(tmp_path)
    open_database(path).close()
    env = clean_env({})
    cycle_lock = FileLock(lock_path_for(path))
    assert cycle_lock.acquire()
    busy = run_cli(["vacuum", "--db", str(path)], env)
    cycle_lock.release()
    done = run_cli(["vacuum", "--db", str(path)], env)

    assert busy.returncode == 1 and "a cycle is running" in busy.stderr
    assert done.returncode == 0, done.stderr
    assert "shrinks as history is pruned" in done.stdout
    db = open_database(path)
    assert db.one("PRAGMA auto_vacuum")["auto_vacuum"] == 2
    db.close()
