"""A new user's first minutes, through the real command line on the shipped
offline config: dry run, a few runs, the kill switch, bad configs, the lock."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tradecycle.cli import cli

from .e2e_helpers import copy_shipped_config

REPO = Path(__file__).resolve().parent.parent
CONTRACT_TABLES = {"agent_status", "cycles", "ai_decisions", "trades", "positions"}


@pytest.fixture
def home(tmp_path):
    """A folder with the shipped config.toml, as a user would have after cloning."""
    copy_shipped_config(tmp_path)  # its stocks open around the clock: these runs are at the wall clock's time
    return tmp_path


def invoke(home: Path, *args: str):
    return CliRunner().invoke(cli, [*args, "--config", str(home / "config.toml")])


def rows(home: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(home / "tradecycle.db") as conn:
        return conn.execute(sql).fetchall()


def test_first_dry_run_creates_the_database_beside_the_config(home, monkeypatch, tmp_path_factory):
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))  # the working directory does not matter
    result = invoke(home, "run", "--dry-run")
    assert result.exit_code == 0, result.output
    assert (home / "tradecycle.db").exists()
    tables = {name for (name,) in rows(home, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert CONTRACT_TABLES <= tables
    assert rows(home, "SELECT status, dry_run FROM cycles") == [("completed", 1)]
    assert len(rows(home, "SELECT * FROM ai_decisions")) == 5
    assert rows(home, "SELECT COUNT(*) FROM trades WHERE status != 'dry_run'") == [(0,)]
    assert rows(home, "SELECT COUNT(*) FROM sim_orders") == [(0,)]  # the simulated broker did not change


def test_runs_without_a_terminal_print_one_line_and_trade_within_ten(home):
    for _ in range(10):
        result = invoke(home, "run")
        assert result.exit_code == 0, result.output
        assert len(result.output.strip().splitlines()) <= 1
        assert result.output.startswith("cycle ") and " completed: " in result.output
        if rows(home, "SELECT COUNT(*) FROM trades WHERE status = 'filled'")[0][0]:
            break
    [(symbol, side, status)] = rows(home, "SELECT symbol, side, status FROM trades")[:1]
    assert side in ("buy", "sell") and status == "filled"
    assert rows(home, "SELECT COUNT(*) FROM positions")[0][0] >= 1


def test_kill_switch_stops_every_run_until_turned_off(home):
    on = invoke(home, "killswitch", "on", "--reason", "going on holiday")
    assert on.exit_code == 0 and "ON" in on.output and "going on holiday" in on.output
    for _ in range(3):
        result = invoke(home, "run")
        assert result.exit_code == 0 and "skipped" in result.output
    assert rows(home, "SELECT COUNT(*) FROM trades") == [(0,)]
    assert rows(home, "SELECT status FROM cycles") == [("skipped",)] * 3
    status = json.loads(invoke(home, "status", "--json").output)
    assert status["kill_switch"]["active"] is True and status["kill_switch"]["reason"] == "going on holiday"
    assert status["kill_switch"]["changed_at"]
    assert "ON" in invoke(home, "killswitch").output
    off = invoke(home, "killswitch", "off")
    assert off.exit_code == 0 and "off" in off.output
    assert json.loads(invoke(home, "status", "--json").output)["kill_switch"]["active"] is False
    assert "completed" in invoke(home, "run").output


def test_killswitch_works_when_the_rest_of_the_config_is_invalid(home):
    config = home / "config.toml"
    config.write_text(config.read_text().replace("max_positions_count = 15", "max_positions_count = -3"))
    assert invoke(home, "run").exit_code == 2
    result = invoke(home, "killswitch", "on")
    assert result.exit_code == 0 and "ON" in result.output


@pytest.mark.parametrize(
    "find, replace, key",
    [
        ("max_positions_count = 15", "max_positions_count = 15\nmax_position_count = 3", "risk.max_position_count: unknown key"),
        ("max_positions_count = 15", "max_positions_count = -1", "risk.max_positions_count: must be >= 1"),
        ("daily_loss_limit_percent = 5 ", "daily_loss_limit_percent = -5 ", "risk.daily_loss_limit_percent: must be > 0"),
        ("max_position_size_percent = 10 ", "max_position_size_percent = 250 ", "risk.max_position_size_percent: must be <= 100"),
        ("min_confidence = 0.6", "min_confidence = 1.5", "risk.min_confidence: must be <= 1"),
        ('base_url = "https://paper-api.alpaca.markets"', 'base_url = "https://api.alpaca.markets"', "broker.alpaca.base_url"),
        ('provider = "sim"                  # "sim" (offline', 'provider = "ibkr"                  # "sim" (offline', "broker.provider"),
        ("order_timeout_seconds = 10", "order_timeout_seconds = 0", "cycle.order_timeout_seconds: must be > 0"),
        # Orders are sized in USD: a pair priced in anything else is refused.
        ('crypto = ["BTC/USD", "ETH/USD"]', 'crypto = ["BTC/USD", "ETH/BTC"]', "universe.crypto: 'ETH/BTC' is not priced in USD"),
        ("min_order_percent = 1 ", "min_order_percent = 0 ", "risk.min_order_percent: must be > 0"),
        ('path = "tradecycle.db"', 'path = ""', "database.path: must be a file path"),
        ("max_quote_age_seconds = 300", "max_quote_age_seconds = true", "cycle.max_quote_age_seconds: must be a number or text"),
    ],
)
def test_bad_config_exits_2_naming_the_key_and_writes_nothing(home, find, replace, key):
    config = home / "config.toml"
    text = config.read_text()
    assert find in text
    config.write_text(text.replace(find, replace, 1))
    result = invoke(home, "run")
    assert result.exit_code == 2
    assert key in result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in home.iterdir()) == ["config.toml"]


def test_live_alpaca_url_is_refused_as_not_paper(home):
    config = home / "config.toml"
    config.write_text(config.read_text().replace("https://paper-api.alpaca.markets", "https://api.alpaca.markets"))
    result = invoke(home, "run", "--dry-run")
    assert result.exit_code == 2 and "paper" in result.output


def test_missing_config_file_exits_2(tmp_path):
    result = CliRunner().invoke(cli, ["run", "--config", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2 and "config file not found" in result.output


def test_corrupt_database_exits_1_before_any_order(home):
    (home / "tradecycle.db").write_bytes(b"this is not a database" * 100)
    result = invoke(home, "run")
    assert result.exit_code == 1
    assert "corrupt" in result.output and "Traceback" not in result.output
    killswitch = invoke(home, "killswitch", "on")
    assert killswitch.exit_code == 1 and "could not record the kill switch" in killswitch.output


def test_history_commands_print_json_arrays(home):
    invoke(home, "run", "--dry-run")
    for command in ("cycles", "trades", "decisions"):
        result = invoke(home, command, "--json", "--limit", "3")
        assert result.exit_code == 0
        assert isinstance(json.loads(result.output), list)
    decisions = json.loads(invoke(home, "decisions", "--json").output)
    assert {d["symbol"] for d in decisions} == {"AAPL", "MSFT", "NVDA", "BTC/USD", "ETH/USD"}


def run_while_another_process_holds(home: Path, holding_code: str, path: Path) -> subprocess.CompletedProcess:
    """``tradecycle run`` in a subprocess while a second process runs ``holding_code``
    (which prints a line once it holds what it holds, then sleeps)."""
    holder = subprocess.Popen([sys.executable, "-c", f"{holding_code}; print('held', flush=True); import time; time.sleep(30)", str(path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        return subprocess.run([sys.executable, "-m", "tradecycle.cli", "run", "--config", str(home / "config.toml")],
                              capture_output=True, text=True, timeout=60)
    finally:
        holder.kill()
        holder.wait()


def test_a_second_run_while_one_holds_the_lock_exits_0_without_a_cycle(home):
    """A real second process holds the lock (as a running cycle would)."""
    assert invoke(home, "run", "--dry-run").exit_code == 0
    flock = "import fcntl, sys; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX)"
    result = run_while_another_process_holds(home, flock, home / "tradecycle.db.lock")
    assert result.returncode == 0
    assert result.stdout == "" and "another cycle is running" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert rows(home, "SELECT COUNT(*) FROM cycles") == [(1,)]


def test_read_commands_never_create_a_database(home):
    for args in (("status",), ("status", "--json"), ("cycles",), ("trades", "--json"), ("decisions",)):
        result = invoke(home, *args)
        assert result.exit_code == 0, result.output
    assert "no database yet" in invoke(home, "status").output
    assert invoke(home, "explain", "last").exit_code == 1
    assert not (home / "tradecycle.db").exists()


def test_killswitch_says_which_database_it_wrote(home):
    shown = invoke(home, "killswitch")
    assert shown.exit_code == 0 and not (home / "tradecycle.db").exists()
    assert "there is no database at" in shown.output and "off" not in shown.output  # not "off": never set there
    result = invoke(home, "killswitch", "on", "--reason", "drill")
    assert result.exit_code == 0 and str(home / "tradecycle.db") in result.output
    assert "did not exist; it was created" in " ".join(result.output.split())  # a new database is pointed out
    again = invoke(home, "killswitch", "off")
    assert again.exit_code == 0 and "did not exist" not in again.output


def test_a_database_locked_past_the_busy_timeout_aborts_before_any_order(home):
    """Another program holds a write lock on the database for longer than the
    busy timeout: the cycle cannot record an order, so it sends none (exit 1)."""
    assert invoke(home, "run", "--dry-run").exit_code == 0
    exclusive = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None); c.execute('BEGIN EXCLUSIVE')"
    result = run_while_another_process_holds(home, exclusive, home / "tradecycle.db")
    assert result.returncode == 1
    assert "locked" in result.stderr and "Traceback" not in result.stderr
    assert rows(home, "SELECT COUNT(*) FROM sim_orders") == [(0,)]


def test_config_from_the_environment_and_database_from_db(home, tmp_path_factory, monkeypatch):
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    other = tmp_path_factory.mktemp("data") / "other.db"
    result = CliRunner().invoke(cli, ["run", "--dry-run", "--db", str(other)], env={"TRADECYCLE_CONFIG": str(home / "config.toml")})
    assert result.exit_code == 0, result.output
    assert other.exists() and not (home / "tradecycle.db").exists()
    with sqlite3.connect(other) as conn:
        assert conn.execute("SELECT COUNT(*) FROM cycles").fetchone() == (1,)
    shown = CliRunner().invoke(cli, ["cycles", "--json", "--db", str(other)], env={"TRADECYCLE_CONFIG": str(home / "config.toml")})
    assert len(json.loads(shown.output)) == 1


def test_two_paths_to_one_database_share_one_lock(home):
    assert invoke(home, "run", "--dry-run").exit_code == 0
    (home / "link.db").symlink_to(home / "tradecycle.db")
    flock = "import fcntl, sys; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX)"
    holder = subprocess.Popen([sys.executable, "-c", f"{flock}; print('held', flush=True); import time; time.sleep(30)",
                               str(home / "tradecycle.db.lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        result = subprocess.run([sys.executable, "-m", "tradecycle.cli", "run", "--config", str(home / "config.toml"),
                                 "--db", str(home / "link.db")], capture_output=True, text=True, timeout=60)
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 0 and "another cycle is running" in result.stderr
    assert rows(home, "SELECT COUNT(*) FROM cycles") == [(1,)]


def test_killswitch_records_the_flag_even_when_the_config_is_not_valid_toml(home):
    config = home / "config.toml"
    config.write_text(config.read_text().replace('path = "tradecycle.db"', 'path = "state.db"').replace(
        "max_positions_count = 15", "max_positions_count = 15x"))
    result = invoke(home, "killswitch", "on", "--reason", "broken config")
    assert result.exit_code == 0 and str(home / "state.db") in result.output
    assert invoke(home, "run").exit_code == 2  # the cycle itself refuses the broken config


def test_killswitch_that_cannot_find_its_config_says_so_with_exit_1(tmp_path):
    result = CliRunner().invoke(cli, ["killswitch", "on", "--config", str(tmp_path / "missing.toml")])
    assert result.exit_code == 1 and "could not record the kill switch" in result.output


@pytest.mark.parametrize("args, message", [
    (("cycles", "--since", "yesterday"), "not an ISO time"),
    (("cycles", "--symbol", "AAPL"), "No such option: --symbol"),  # a cycle has no symbol
])
def test_history_options_it_cannot_use_exit_2(home, args, message):
    result = invoke(home, *args)
    assert result.exit_code == 2 and message in result.output
