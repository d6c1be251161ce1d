"""The database: versioned migrations that keep rows, WAL, clear failures."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tradecycle.infra.errors import DatabaseUnusable
from tradecycle.store import LATEST_VERSION, Database, Store, migrate, open_database, schema_version

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def test_a_database_made_by_the_first_schema_version_upgrades_without_losing_rows(tmp_path):
    path = tmp_path / "old.db"
    old = Database(path)
    assert migrate(old, up_to=1) == 1
    old.execute("UPDATE agent_status SET kill_switch_active = 1, kill_switch_reason = 'from v1' WHERE id = 1")
    old.execute("INSERT INTO cycles (cycle_id, started_at, status, dry_run) VALUES ('c1', '2026-01-01T00:00:00Z', 'completed', 0)")
    old.execute("INSERT INTO ai_decisions (cycle_id, symbol, action, confidence, reasoning, model, outcome) "
                "VALUES ('c1', 'AAPL', 'buy', 0.8, 'why', 'm', 'ordered')")
    old.execute("INSERT INTO trades (cycle_id, symbol, side, quantity, status, client_order_id) VALUES ('c1', 'AAPL', 'buy', '1', 'new', 'tc-1')")
    old.close()

    db = open_database(path)
    assert schema_version(db) == LATEST_VERSION
    store = Store(db)
    assert store.kill_switch().active and store.kill_switch().reason == "from v1"
    assert db.query("SELECT cycle_id, status FROM cycles") == [{"cycle_id": "c1", "status": "completed"}]
    assert db.one("SELECT reasoning, outcome, raw_reply FROM ai_decisions") == {"reasoning": "why", "outcome": "ordered", "raw_reply": None}
    # An old decision is the main analyst's; it predates the scorecard, so no analyst is named.
    assert db.one("SELECT role, analyst, request_id FROM decisions_v") == {"role": "main", "analyst": None, "request_id": None}
    assert [t["client_order_id"] for t in store.pending_trades()] == ["tc-1"]


def test_fresh_database_uses_wal_and_has_the_contract_tables(tmp_path):
    db = open_database(tmp_path / "t.db")
    assert db.journal_mode == "wal"
    names = set(db.utils.table_names())
    assert {"agent_status", "cycles", "ai_decisions", "trades", "positions"} <= names


def test_a_database_from_a_newer_tradecycle_is_refused(tmp_path):
    db = open_database(tmp_path / "t.db")
    db.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    db.close()
    with pytest.raises(DatabaseUnusable, match="newer than this tradecycle"):
        open_database(tmp_path / "t.db")


def test_corrupt_file_is_reported_as_unusable(tmp_path):
    path = tmp_path / "t.db"
    path.write_bytes(b"garbage" * 1000)
    with pytest.raises(DatabaseUnusable, match="corrupt"):
        open_database(path)


def test_missing_folder_is_reported(tmp_path):
    with pytest.raises(DatabaseUnusable, match="folder does not exist"):
        open_database(tmp_path / "nope" / "t.db")


def test_client_order_id_is_unique_so_an_order_cannot_be_recorded_twice(store):
    row = {"cycle_id": "c", "symbol": "AAPL", "side": "buy", "status": "submitting", "client_order_id": "tc-x"}
    store.insert_trade(row)
    with pytest.raises(DatabaseUnusable):
        store.insert_trade(row)


def test_kill_switch_round_trip(store):
    assert not store.kill_switch().active
    switch = store.set_kill_switch(True, "why", NOW)
    assert (switch.active, switch.reason, switch.changed_at) == (True, "why", "2026-11-25T15:00:00Z")
    assert store.set_kill_switch(False, None, NOW).active is False
