"""The small messages a new user meets: help, version, plain usage errors, what
an empty or filtered result says, where a bad config path came from, and
``--since`` read with its UTC offset."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from rich.console import Console

from tradecycle import __version__
from tradecycle.render.run import cycle_report
from tradecycle.cycle.run import run_cycle

from .fakes import FakeClock, services, settings
from .test_cli_commands import as_json, invoke, run_cycles, sim_config


def test_cycles_help_does_not_offer_symbol_but_trades_help_does():
    cycles, trades = invoke("cycles", "--help"), invoke("trades", "--help")
    assert cycles.exit_code == trades.exit_code == 0
    assert "--symbol" not in cycles.stdout and "--symbol" in trades.stdout


@pytest.mark.parametrize("command", ["cycles", "trades", "decisions"])
def test_since_help_says_a_time_without_offset_is_utc(command):
    out = " ".join(invoke(command, "--help").stdout.split())
    assert "UTC unless it carries an offset" in out


@pytest.mark.parametrize("args", [["--version"]])
def test_version(args):
    result = invoke(*args)
    assert result.exit_code == 0 and result.stdout == f"tradecycle {__version__}\n"


@pytest.mark.parametrize("args", [["-h"], ["status", "-h"], ["killswitch", "-h"]])
def test_dash_h_is_help(args):
    result = invoke(*args)
    assert result.exit_code == 0 and result.stdout.startswith("Usage: tradecycle")


def test_killswitch_maybe_is_one_plain_line_exit_2_and_changes_nothing(tmp_path):
    config = sim_config(tmp_path)
    result = invoke("killswitch", "maybe", "--config", config)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == "tradecycle: killswitch 'maybe': say on or off (or nothing, to show it)\n"
    assert not (tmp_path / "tradecycle.db").exists()  # nothing recorded, nothing created


def test_check_on_the_offline_config_says_no_keys_are_needed(tmp_path):
    result = invoke("check", "--config", sim_config(tmp_path))
    assert result.exit_code == 0
    assert "no keys needed: every provider runs offline" in result.stdout
    assert "not set" not in result.stdout


def test_check_on_a_live_config_still_lists_the_keys(tmp_path):
    config = sim_config(tmp_path)
    config.write_text(config.read_text().replace('provider = "sim"                  # "sim" (offline', 'provider = "alpaca" # ', 1))
    result = invoke("check", "--config", config, env={"APCA_API_KEY_ID": "k" * 8, "APCA_API_SECRET_KEY": "s" * 8})
    assert result.exit_code == 0, result.output
    assert "APCA_API_KEY_ID: set (required)" in result.stdout and "no keys needed" not in result.stdout


@pytest.fixture
def one_cycle(tmp_path):
    config = sim_config(tmp_path)
    run_cycles(config, 1)
    return config


@pytest.mark.parametrize(
    "command, options, message",
    [
        ("trades", ["--symbol", "MSFT"], "no trades match --symbol MSFT"),
        ("decisions", ["--since", "2999-01-01"], "no decisions match --since 2999-01-01"),
        ("cycles", ["--since", "2999-01-01T00:00"], "no cycles match --since 2999-01-01T00:00"),
    ],
)
def test_an_empty_filtered_result_says_no_match(one_cycle, command, options, message):
    result = invoke(command, *options, "--config", one_cycle)
    assert result.exit_code == 0 and result.stdout == message + "\n"


def test_an_empty_unfiltered_result_says_yet(tmp_path):
    assert invoke("trades", "--config", sim_config(tmp_path)).stdout == "no trades yet\n"


@pytest.mark.parametrize("command", [["status"], ["run"], ["cycles"], ["killswitch", "on"]])
def test_a_missing_config_from_tradecycle_config_says_so(tmp_path, command):
    missing = tmp_path / "nowhere.toml"
    result = invoke(*command, env={"TRADECYCLE_CONFIG": str(missing)})
    assert result.exit_code in (1, 2)  # killswitch: could not record the flag (1); the rest: bad config (2)
    assert result.stderr.count("\n") == 1
    assert str(missing) in result.stderr and "the path came from $TRADECYCLE_CONFIG" in result.stderr


def test_an_invalid_config_from_tradecycle_config_names_the_file_and_the_variable(tmp_path):
    config = sim_config(tmp_path)
    config.write_text(config.read_text().replace("max_positions_count = 15", "max_positions_count = 0"))
    from_env = invoke("run", env={"TRADECYCLE_CONFIG": str(config)})
    assert from_env.exit_code == 2
    assert "risk.max_positions_count" in from_env.stderr and f"config {config}: the path came from $TRADECYCLE_CONFIG" in from_env.stderr
    given = invoke("run", "--config", config, env={"TRADECYCLE_CONFIG": str(config)})
    assert given.exit_code == 2 and "TRADECYCLE_CONFIG" not in given.stderr  # --config named it: nothing to explain


def test_a_skipped_run_on_a_terminal_prints_the_line_and_no_empty_table(store, log):
    store.set_kill_switch(True, "maintenance", FakeClock().now())
    report = run_cycle(services(), store, settings(), log)
    assert report.status == "skipped"
    console = Console(width=80, record=True, file=io.StringIO(), force_terminal=True)
    cycle_report(report, console=console)
    assert console.export_text() == report.summary_line() + "\n"
    assert "maintenance" in report.summary_line()


# -- --since honours the offset ------------------------------------------------------------

CYCLE_TIMES = ["2026-12-01T22:06:00", "2026-12-01T22:07:12", "2026-12-01T22:30:00", "2026-12-01T23:00:00"]


@pytest.fixture
def timed_cycles(db, store, log):
    """Four cycles at known UTC times, run by the real cycle with fakes; -> their ids, oldest first."""
    ids = []
    for at in CYCLE_TIMES:
        clock = FakeClock(datetime.fromisoformat(at).replace(tzinfo=UTC))
        ids.append(run_cycle(services(clock=clock), store, settings(), log).cycle_id)
    return db.path, ids


@pytest.mark.parametrize(
    "since",
    [
        "2026-12-01T23:07:12+01:00",  # the case: 22:07:12Z
        "2026-12-01T17:07:12-05:00",
        "2026-12-01T22:07:12Z",
        "2026-12-01T22:07:12",  # no offset: UTC
    ],
)
def test_since_honours_the_offset(timed_cycles, since):
    path, ids = timed_cycles
    rows = as_json(invoke("cycles", "--since", since, "--json", "--db", path))
    assert [r["cycle_id"] for r in rows] == ids[:0:-1]  # the three at or after 22:07:12Z, newest first
    assert all(r["started_at"] >= "2026-12-01T22:07:12Z" for r in rows)


@pytest.mark.parametrize("args", [["status"], ["explain", "last"], ["cycles", "--json"]])
def test_a_reader_that_stops_early_is_not_an_error(one_cycle, args):
    """`tradecycle status | head -1`: the pipe closes early; that is not a failure."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "tradecycle.cli", *args, "--config", str(one_cycle)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # gone before the command writes a byte (it takes a few hundred ms to start)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=20) == 0 and "Traceback" not in err and "Broken pipe" not in err, err
