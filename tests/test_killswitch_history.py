"""The kill switch keeps a history: every change (who, why, when, with
--flatten or not) is a row in ``kill_switch_changes`` and a
``killswitch.changed`` log event; ``tradecycle killswitch`` with no argument
shows the last few in a table that fits 80 columns. (A change by the tool,
with its cycle, is in ``test_e2e_alerts.py``: a real cycle trips the limit.)"""

from __future__ import annotations

import io
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from tradecycle.render import status as status_view
from tradecycle.cli import cli
from tradecycle.infra.environment import Secrets
from tradecycle.store import Database, Store, kill_switch_changes, migrate, migrations_1_to_9, open_database, schema
from tradecycle.store.schema import LATEST_VERSION

REPO_CONFIG = Path(__file__).resolve().parents[1] / "config.toml"
CLEAN_ENV = {"TRADECYCLE_DEBUG": None, "TRADECYCLE_CONFIG": None, "COLUMNS": "80", **{name: None for name in Secrets.NAMES}}
NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], env=CLEAN_ENV, catch_exceptions=False)


def test_every_change_is_a_row_and_a_log_event_and_killswitch_shows_the_last_few(tmp_path):
    config = Path(shutil.copy(REPO_CONFIG, tmp_path / "config.toml"))
    assert invoke("killswitch", "on", "--reason", "maintenance window", "--config", config).exit_code == 0
    assert invoke("killswitch", "off", "--config", config).exit_code == 0
    assert invoke("killswitch", "on", "--flatten", "--reason", "get out of everything now", "--config", config).exit_code == 0

    db = open_database(tmp_path / "tradecycle.db")
    rows = kill_switch_changes(db)
    db.close()
    assert [(r["active"], r["changed_by"], r["reason"], r["flatten"], r["cycle_id"]) for r in rows] == [
        (1, "person", "get out of everything now", 1, None),
        (0, "person", None, 0, None),
        (1, "person", "maintenance window", 0, None),
    ]
    events = [json.loads(line) for line in (tmp_path / "tradecycle.jsonl").read_text().splitlines()]
    assert [(e["event"], e["active"], e["changed_by"], e["flatten"]) for e in events] == [
        ("killswitch.changed", True, "person", False),
        ("killswitch.changed", False, "person", False),
        ("killswitch.changed", True, "person", True),
    ]

    shown = invoke("killswitch", "--config", config)
    assert shown.exit_code == 0
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("kill switch ON since") and "get out of everything now" in lines[0]
    table = lines[next(i for i, line in enumerate(lines) if line.strip() == "last changes"):]
    assert all(len(line) <= 80 for line in table)
    assert table[1].split() == ["when", "(UTC)", "state", "by", "reason"]  # human headers; no empty cycle column
    body = [line.split() for line in table[3:]]
    assert [line[1:4] for line in body] == [["ON,", "flatten", "person"], ["off", "person"], ["ON", "person", "maintenance"]]


def test_a_change_by_the_tool_names_its_cycle_and_the_id_is_never_cut_at_80_columns(db):
    store = Store(db)
    store.start_cycle("2026-12-01T15:00Z-ab12", NOW, False)
    store.set_kill_switch(True, "3 critical errors in a row; last: unexpected error: KeyError('a very long key name')", NOW)
    out = io.StringIO()
    status_view.kill_switch_changes(kill_switch_changes(db), Console(file=out, width=80))
    [row] = [line for line in out.getvalue().splitlines() if line.startswith("2026")]
    assert "tool" in row and row.rstrip().endswith("2026-12-01T15:00Z-ab12") and len(row) <= 80
    assert "…" in row  # the long reason is cut, not the cycle id


def test_a_database_from_before_the_history_starts_it_with_the_switch_as_found(tmp_path):
    before = schema.MIGRATIONS.index(migrations_1_to_9._m9_kill_switch_history_and_alert_state)
    db = Database(tmp_path / "old.db")
    migrate(db, up_to=before)
    db.execute("UPDATE agent_status SET kill_switch_active = 1, kill_switch_reason = 'set long ago',"
               " kill_switch_changed_at = '2026-11-01T09:00:00Z' WHERE id = 1")
    assert migrate(db) == LATEST_VERSION
    assert kill_switch_changes(db) == [{"changed_at": "2026-11-01T09:00:00Z", "active": 1, "changed_by": "unknown",
                                        "reason": "set long ago", "flatten": 0, "cycle_id": None}]
    db.close()


def test_a_log_that_cannot_be_written_never_costs_the_flag(tmp_path):
    config = Path(shutil.copy(REPO_CONFIG, tmp_path / "config.toml"))
    (tmp_path / "tradecycle.jsonl").mkdir()  # the log path is a folder: appending fails
    result = invoke("killswitch", "on", "--config", config)
    assert result.exit_code == 0 and "kill switch ON" in result.stdout
    assert "note: could not write the log" in result.stderr
    db = open_database(tmp_path / "tradecycle.db")
    assert Store(db).kill_switch().active and kill_switch_changes(db)[0]["changed_by"] == "person"
    db.close()
