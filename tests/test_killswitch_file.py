"""The kill switch also lives in a file beside the database
(``<database.path>.killswitch``): deleting or replacing the database never
turns it off. (End to end, against the fake broker: test_e2e_lost_state.py.)"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from tradecycle.cli import cli
from tradecycle.cycle.run import run_cycle
from tradecycle.store import kill_switch_changes, write_kill_switch

from .fakes import NOW, FakeBroker, FakeQuotes, FakeClock, ScriptedAnalyst, services, settings

REPO = Path(__file__).resolve().parent.parent


def invoke(home: Path, *args: str):
    return CliRunner().invoke(cli, [*args, "--config", str(home / "config.toml")])


def _file(db) -> Path:
    return db.path.with_name(db.path.name + ".killswitch")


def test_on_writes_the_file_and_off_removes_it(db):
    write_kill_switch(db, True, "maintenance", NOW, flatten=True)
    body = json.loads(_file(db).read_text())
    assert (body["active"], body["reason"], body["changed_at"], body["flatten"]) == (True, "maintenance", "2026-11-25T15:00:00Z", True)
    write_kill_switch(db, False, None, NOW)
    assert not _file(db).exists()


def test_on_while_on_keeps_the_files_reason_and_time_as_the_database_does(db):
    write_kill_switch(db, True, "maintenance", NOW)
    write_kill_switch(db, True, "still maintenance", NOW.replace(hour=16), flatten=True)
    body = json.loads(_file(db).read_text())
    assert (body["reason"], body["changed_at"], body["flatten"]) == ("maintenance", "2026-11-25T15:00:00Z", True)


def test_a_trip_by_the_tool_writes_the_file_too(db, store):
    store.set_kill_switch(True, "daily loss limit: -6.0% (limit 5%)", NOW)
    assert "daily loss limit" in json.loads(_file(db).read_text())["reason"]


def test_a_database_that_lost_the_switch_still_skips_and_learns_it_from_the_file(db, store, log):
    _file(db).write_text(json.dumps({"active": True, "reason": "going on holiday", "changed_at": "2026-11-24T09:00:00Z"}))
    broker, analyst = FakeBroker(), ScriptedAnalyst({"AAPL": ("buy", 0.9)})
    report = run_cycle(services(broker=broker, analyst=analyst), store, settings(), log)

    assert report.status == "skipped" and "going on holiday" in report.error
    assert broker.orders == [] and analyst.seen == []
    row = db.one("SELECT kill_switch_active, kill_switch_reason, kill_switch_changed_at FROM agent_status")
    assert row["kill_switch_active"] == 1 and row["kill_switch_changed_at"] == "2026-11-24T09:00:00Z"
    assert "from the kill switch file" in row["kill_switch_reason"]
    [change] = kill_switch_changes(db)
    assert (change["changed_by"], change["cycle_id"]) == ("tool", report.cycle_id)


def test_a_file_made_by_hand_even_empty_stops_trading(db, store, log):
    _file(db).write_text("")
    broker = FakeBroker()
    report = run_cycle(services(broker=broker, analyst=ScriptedAnalyst({"AAPL": ("buy", 0.9)})), store, settings(), log)
    assert report.status == "skipped" and str(_file(db)) in report.error
    assert broker.orders == []


def test_a_file_that_appears_during_the_cycle_stops_its_next_order(db, store, log):
    quotes = FakeQuotes({"AAPL": "200", "MSFT": "400"}, FakeClock())
    broker = FakeBroker()
    broker.before_order = lambda intent: _file(db).write_text("") if intent.symbol == "AAPL" else None
    analyst = ScriptedAnalyst({"AAPL": ("buy", 0.9), "MSFT": ("buy", 0.9)})
    report = run_cycle(services(broker=broker, quotes=quotes, analyst=analyst), store, settings(stocks=("AAPL", "MSFT")), log)
    assert [o.symbol for o in broker.orders] == ["AAPL"]
    assert report.outcomes == {"AAPL": "ordered", "MSFT": "kill_switch"}


# -- the command -----------------------------------------------------------------------------------


def test_killswitch_on_outlives_the_deleted_database(tmp_path):
    shutil.copy(REPO / "config.toml", tmp_path / "config.toml")
    assert invoke(tmp_path, "killswitch", "on", "--reason", "going on holiday").exit_code == 0
    assert (tmp_path / "tradecycle.db.killswitch").exists()
    for name in ("tradecycle.db", "tradecycle.db-wal", "tradecycle.db-shm"):
        (tmp_path / name).unlink(missing_ok=True)

    shown = invoke(tmp_path, "killswitch")
    assert shown.exit_code == 0 and "ON" in shown.output and "going on holiday" in shown.output
    run = invoke(tmp_path, "run")
    assert run.exit_code == 0 and "skipped" in run.output and "going on holiday" in run.output
    with sqlite3.connect(tmp_path / "tradecycle.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM trades").fetchone() == (0,)
        assert conn.execute("SELECT kill_switch_active FROM agent_status").fetchone() == (1,)

    off = invoke(tmp_path, "killswitch", "off")
    assert off.exit_code == 0 and not (tmp_path / "tradecycle.db.killswitch").exists()
    assert "completed" in invoke(tmp_path, "run").output


def test_killswitch_on_with_a_corrupt_database_still_writes_the_file_and_says_so(tmp_path):
    shutil.copy(REPO / "config.toml", tmp_path / "config.toml")
    (tmp_path / "tradecycle.db").write_bytes(b"this is not a database" * 100)
    result = invoke(tmp_path, "killswitch", "on", "--reason", "panic")
    assert result.exit_code == 1
    assert "could not record the kill switch" in result.output
    assert "tradecycle.db.killswitch says on all the same" in result.output
    assert json.loads((tmp_path / "tradecycle.db.killswitch").read_text())["reason"] == "panic"
