"""Opening the database while another process writes to it (a first cron run
racing another, or ``killswitch`` racing a run)."""

from __future__ import annotations

import sqlite3
import threading

from tradecycle.store import Database


def test_opening_waits_for_a_writer_instead_of_failing_on_the_wal_switch(tmp_path):
    path = tmp_path / "tradecycle.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE t (x)")
    other.execute("BEGIN IMMEDIATE")  # a writer in the middle of a transaction, rollback-journal mode
    other.execute("INSERT INTO t VALUES (1)")
    timer = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    timer.start()
    try:
        db = Database(path, busy_timeout_seconds=5)
    finally:
        timer.join()
        other.close()
    try:
        assert db.journal_mode == "wal"
        assert db.one("SELECT count(*) AS n FROM t") == {"n": 1}
    finally:
        db.close()
