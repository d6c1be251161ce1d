"""``tradecycle backtest`` as a user runs it: the CLI (typer's CliRunner, or a
real process), a config file, real SQLite files, the fake model server. What is
asserted is what a user sees: exit code, the lines printed, rows written, the
requests that reached the fake (or that none did)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tradecycle.cli import cli
from tradecycle.config import Secrets

from .e2e_helpers import clean_env
from .fakeserver import FakeServices
from .fakeserver.config import to_toml

REPO_CONFIG = Path(__file__).resolve().parents[1] / "config.toml"
CLEAN_ENV = {"TRADECYCLE_DEBUG": None, "TRADECYCLE_CONFIG": None, "COLUMNS": "250", **{name: None for name in Secrets.NAMES}}


def invoke(*args: str, env: dict | None = None):
    return CliRunner().invoke(cli, [str(a) for a in args], env={**CLEAN_ENV, **(env or {})}, catch_exceptions=False)


def write_config(folder: Path, **sections) -> Path:
    base = {"universe": {"stocks": [], "crypto": ["BTC/USD"]}, "database": {"path": "live.db"},
            "log": {"path": "tradecycle.jsonl"}}
    for key, value in sections.items():
        base[key] = {**base.get(key, {}), **value}
    path = folder / "config.toml"
    path.write_text(to_toml(base), encoding="utf-8")
    return path


def rows(db: Path, sql: str) -> list[dict]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql)]
    finally:
        conn.close()


def llm_calls(fake: FakeServices) -> int:
    return fake.count("openai", "POST")


@pytest.fixture
def fake():
    with FakeServices() as services:
        yield services


# -- a first try ---------------------------------------------------------------


def test_the_shipped_config_backtests_the_last_month_offline_and_report_draws_it(tmp_path):
    shutil.copy(REPO_CONFIG, tmp_path / "config.toml")
    today = datetime.now(UTC).date()
    env = clean_env({})
    cmd = [sys.executable, "-m", "tradecycle.cli"]
    result = subprocess.run([*cmd, "backtest", "--from", str(today - timedelta(days=30)), "--to", str(today)],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "at most 0 LLM calls" in result.stderr.splitlines()[0]
    closing = result.stdout.splitlines()[0]
    assert closing.startswith("backtest completed: ") and "return " in closing and "buy-and-hold " in closing
    assert "max drawdown " in closing and " trades, 0 LLM calls" in closing
    out = tmp_path / "backtest.db"
    run = rows(out, "SELECT * FROM backtests")[0]
    assert run["status"] == "completed" and run["source"] == "sim" and run["contaminated"] == 0
    assert run["cycles"] == run["total_cycles"] > 20 and run["llm_calls"] == 0
    assert not (tmp_path / "tradecycle.db").exists()  # the live database is never touched
    drawn = subprocess.run([*cmd, "report", "--db", str(out), "--out", "bt.html"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=60)
    assert drawn.returncode == 0, drawn.stderr
    assert f"({run['cycles']} cycles" in drawn.stdout and (tmp_path / "bt.html").stat().st_size > 10_000


# -- the models' training cutoff, and their replies kept ------------------------


def _llm_config(tmp_path: Path, fake: FakeServices, **ai) -> Path:
    return write_config(tmp_path, ai={"provider": "openai", "base_url": fake.openai_url, "model": fake.llm_model, **ai})


def test_a_model_is_never_asked_about_a_day_on_or_before_its_training_cutoff(tmp_path, fake):
    config = _llm_config(tmp_path, fake, training_cutoff="2025-02-15")
    result = invoke("backtest", "--from", "2025-02-10", "--to", "2025-02-20", "--config", config)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "ai.training_cutoff = 2025-02-15" in result.stderr and "2025-02-10" in result.stderr
    assert llm_calls(fake) == 0 and not (tmp_path / "backtest.db").exists()

    unset = _llm_config(tmp_path, fake)
    result = invoke("backtest", "--from", "2025-02-10", "--to", "2025-02-20", "--config", unset)
    assert result.exit_code == 2 and "ai.training_cutoff: not set" in result.stderr

    shadowed = write_config(tmp_path, ai={"provider": "openai", "base_url": fake.openai_url, "model": fake.llm_model,
                                          "training_cutoff": "2024-01-01",
                                          "shadow": [{"provider": "openai", "model": fake.llm_model,
                                                      "training_cutoff": "2025-02-12"}]})
    result = invoke("backtest", "--from", "2025-02-10", "--to", "2025-02-20", "--config", shadowed)
    assert result.exit_code == 2 and "ai.shadow.0.training_cutoff = 2025-02-12" in result.stderr
    assert llm_calls(fake) == 0


def test_allow_contaminated_runs_and_marks_the_run(tmp_path, fake):
    config = _llm_config(tmp_path, fake, training_cutoff="2025-02-15")
    result = invoke("backtest", "--from", "2025-02-10", "--to", "2025-02-14", "--allow-contaminated", "--config", config)
    assert result.exit_code == 0, result.stderr
    assert "CONTAMINATED (--allow-contaminated): ai.training_cutoff = 2025-02-15" in result.stderr
    assert result.stdout.splitlines()[0].endswith("[CONTAMINATED]")
    run = rows(tmp_path / "backtest.db", "SELECT contaminated, llm_calls FROM backtests")[0]
    assert run["contaminated"] == 1 and run["llm_calls"] == llm_calls(fake) > 0
    drawn = invoke("report", "--db", tmp_path / "backtest.db", "--out", tmp_path / "r.html", "--config", config)
    assert drawn.exit_code == 0, drawn.stderr
    page = (tmp_path / "r.html").read_text()
    assert "Backtest of 2025-02-10 to 2025-02-14 at 1d on sim history (completed)" in page
    assert '<span class="on">CONTAMINATED</span>' in page


def test_running_the_same_backtest_again_asks_the_model_nothing(tmp_path, fake):
    fake.llm_decide = {"BTC/USD": ("buy", 0.8, "Momentum")}
    config = _llm_config(tmp_path, fake, training_cutoff="2020-01-01")
    first = invoke("backtest", "--from", "2025-02-01", "--to", "2025-02-11", "--config", config)
    assert first.exit_code == 0, first.stderr
    asked = llm_calls(fake)
    assert asked > 0 and f" {asked} LLM calls (0 reused)" in first.stdout
    decided = rows(tmp_path / "backtest.db", "SELECT created_at, action, outcome FROM ai_decisions ORDER BY created_at")
    second = invoke("backtest", "--from", "2025-02-01", "--to", "2025-02-11", "--config", config)
    assert second.exit_code == 0, second.stderr
    assert llm_calls(fake) == asked  # not one more request
    assert f" 0 LLM calls ({asked} reused)" in second.stdout
    again = rows(tmp_path / "backtest.db", "SELECT created_at, action, outcome FROM ai_decisions ORDER BY created_at")
    assert again == decided
    runs = rows(tmp_path / "backtest.db", "SELECT id, status, llm_calls FROM backtests ORDER BY id")
    assert [(r["status"], r["llm_calls"]) for r in runs] == [("completed", asked), ("completed", 0)]


def test_max_llm_calls_stops_before_a_cycle_that_could_pass_it_and_resume_continues(tmp_path, fake):
    config = _llm_config(tmp_path, fake, training_cutoff="2020-01-01")
    stopped = invoke("backtest", "--from", "2025-02-01", "--to", "2025-02-11", "--max-llm-calls", "3", "--config", config)
    assert stopped.exit_code == 1
    assert "at most 3 LLM calls" in stopped.stderr
    assert stopped.stdout.startswith("backtest stopped at --max-llm-calls: 3/10 cycles")
    assert "--resume" in stopped.stdout
    assert llm_calls(fake) == 3
    resumed = invoke("backtest", "--from", "2025-02-01", "--to", "2025-02-11", "--resume", "--config", config)
    assert resumed.exit_code == 0, resumed.stderr
    assert "resuming after cycle 3" in resumed.stderr and resumed.stdout.startswith("backtest completed: 10/10 cycles")
    run = rows(tmp_path / "backtest.db", "SELECT status, cycles, llm_calls FROM backtests")
    assert run == [{"status": "completed", "cycles": 10, "llm_calls": llm_calls(fake)}]
    assert rows(tmp_path / "backtest.db", "SELECT COUNT(*) AS n FROM cycles")[0]["n"] == 10


# -- csv files and bad input ---------------------------------------------------


def daily_csv(path: Path, first: date, days: int, start: float = 100.0) -> None:
    lines = ["Date,Open,High,Low,Close,Volume"]
    price = start
    for k in range(days):
        close = round(price * (1.004 if k % 5 else 0.99), 2)
        lines.append(f"{first + timedelta(days=k)},{price},{max(price, close) * 1.01:.2f},{min(price, close) * 0.99:.2f},{close},1000")
        price = close
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_a_csv_folder_backtests_at_its_daily_bars(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    daily_csv(data / "BTC-USD.csv", date(2024, 1, 1), 150)
    config = write_config(tmp_path, market_data={"provider": "csv", "csv": {"path": "data"}})
    result = invoke("backtest", "--from", "2024-04-01", "--to", "2024-05-01", "--config", config)
    assert result.exit_code == 0, result.stderr
    out = tmp_path / "backtest.db"
    cycles = rows(out, "SELECT started_at FROM cycles ORDER BY started_at")
    assert len(cycles) == 30 and cycles[0]["started_at"] == "2024-04-01T00:00:00Z"
    # The cycle at a day's midnight sees the close of the day before, never the day it starts.
    quote = rows(out, "SELECT price FROM quotes WHERE fetched_at = '2024-04-01T00:00:00Z'")[0]
    line = (data / "BTC-USD.csv").read_text().splitlines()[1 + 90]  # 2024-03-31, the 91st day
    assert line.startswith("2024-03-31,") and quote["price"] == line.split(",")[4]
    assert rows(out, "SELECT source FROM backtests")[0]["source"] == "csv"


def test_an_intraday_csv_gives_a_longer_interval_by_merging_its_bars(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    lines = ["timestamp,open,high,low,close,volume"]
    start = datetime(2024, 3, 1, tzinfo=UTC)
    for k in range(4 * 24 * 3):
        t = start + timedelta(minutes=15 * k)
        lines.append(f"{t:%Y-%m-%dT%H:%M:%SZ},{100 + k / 10},{101 + k / 10},{99 + k / 10},{100.05 + k / 10},5")
    (data / "BTC-USD.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = write_config(tmp_path, market_data={"provider": "csv", "csv": {"path": "data"}})
    result = invoke("backtest", "--from", "2024-03-02", "--to", "2024-03-03", "--interval", "1h", "--config", config)
    assert result.exit_code == 0, result.stderr
    out = tmp_path / "backtest.db"
    cycles = rows(out, "SELECT started_at FROM cycles ORDER BY started_at")
    assert len(cycles) == 24 and cycles[1]["started_at"] == "2024-03-02T01:00:00Z"
    # At 01:00 the last 15-minute bar closed is 00:45-01:00: k = 99, close 100.05 + 9.9.
    quote = rows(out, "SELECT price FROM quotes WHERE fetched_at = '2024-03-02T01:00:00Z'")[0]
    assert quote["price"] == "109.95"
    bad = invoke("backtest", "--from", "2024-03-02", "--to", "2024-03-03", "--interval", "1m", "--config", config)
    assert bad.exit_code == 2 and "BTC-USD.csv has bars of 15 min; --interval must be a multiple of it" in bad.stderr


BAD_FILES = {
    "missing column": ("date,open,high,low,volume\n2024-01-01,1,2,1,5\n", "BTC-USD.csv: no 'close' column"),
    "unsorted": ("date,open,high,low,close,volume\n2024-01-02,1,2,1,1,5\n2024-01-01,1,2,1,1,5\n",
                 "BTC-USD.csv line 3: date 2024-01-01 comes before the row above"),
    "duplicate": ("date,open,high,low,close,volume\n2024-01-01,1,2,1,1,5\n2024-01-01,1,2,1,1,5\n",
                  "BTC-USD.csv line 3: date 2024-01-01 repeats the row above"),
    "nan": ("date,open,high,low,close,volume\n2024-01-01,1,2,1,NaN,5\n", "BTC-USD.csv line 2: close is NaN"),
    "negative": ("date,open,high,low,close,volume\n2024-01-01,1,2,-1,1,5\n", "BTC-USD.csv line 2: low -1 is not a positive price"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_csv_stops_with_one_line_naming_the_file_and_line_and_leaves_the_live_database_alone(tmp_path, case):
    data = tmp_path / "data"
    data.mkdir()
    content, message = BAD_FILES[case]
    (data / "BTC-USD.csv").write_text(content, encoding="utf-8")
    live = tmp_path / "live.db"
    live.write_bytes(b"untouched")
    config = write_config(tmp_path, market_data={"provider": "csv", "csv": {"path": "data"}})
    result = invoke("backtest", "--from", "2024-01-01", "--to", "2024-02-01", "--config", config)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert live.read_bytes() == b"untouched" and not (tmp_path / "backtest.db").exists()


def test_bad_usage_is_one_line_and_exit_2(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    daily_csv(data / "BTC-USD.csv", date(2024, 1, 1), 60)
    csv_config = write_config(tmp_path, market_data={"provider": "csv", "csv": {"path": "data"}},
                              universe={"crypto": ["BTC/USD", "ETH/USD"]})
    cases = [
        (["--from", "2024-02-01", "--to", "2024-01-01"], "--from 2024-02-01 must be before --to 2024-01-01"),
        (["--from", "2024-01-10", "--to", "2024-02-01", "--interval", "5m"], "--interval 5m: use one of 1d, 1h, 15m, 1m"),
        (["--from", "2024-01-10", "--to", "2024-02-01"], "ETH/USD: no file ETH-USD.csv in"),
        (["--from", "2024-01-10", "--to", "2024-02-01", "--out", str(tmp_path / "live.db")], "is the live database"),
    ]
    for args, message in cases:
        result = invoke("backtest", *args, "--config", csv_config)
        assert result.exit_code == 2, (args, result.stdout)
        assert result.stderr.count("\n") == 1 and message in result.stderr, (args, result.stderr)
    one = write_config(tmp_path, market_data={"provider": "csv", "csv": {"path": "data"}})
    result = invoke("backtest", "--from", "2024-01-10", "--to", "2024-02-01", "--interval", "1h", "--config", one)
    assert result.exit_code == 2 and "BTC-USD.csv has daily bars; --interval 1d is the only one it can give" in result.stderr
    result = invoke("backtest", "--from", "2024-05-10", "--to", "2024-06-01", "--config", one)
    assert result.exit_code == 2 and "BTC/USD: BTC-USD.csv has no bar between 2024-05-10 and 2024-06-01" in result.stderr
    live = write_config(tmp_path, market_data={"provider": "live"})
    result = invoke("backtest", "--from", "2024-05-10", "--to", "2024-06-01", "--config", live,
                    env={"FINNHUB_API_KEY": "k"})
    assert result.exit_code == 2 and 'market_data.provider: "live" has no history' in result.stderr
    assert not (tmp_path / "live.db").exists() and not (tmp_path / "backtest.db").exists()


def test_a_live_cycle_refuses_the_csv_provider(tmp_path):
    config = write_config(tmp_path, market_data={"provider": "csv"})
    result = invoke("run", "--config", config)
    assert result.exit_code == 2 and '"csv" serves `tradecycle backtest` only' in result.stderr


# -- sessions --------------------------------------------------------------------


def test_stocks_trade_only_in_sessions_holidays_and_half_days_included(tmp_path):
    config = write_config(tmp_path, universe={"stocks": ["AAPL"], "crypto": []})
    result = invoke("backtest", "--from", "2024-11-27", "--to", "2024-12-03", "--interval", "1h", "--config", config)
    assert result.exit_code == 0, result.stderr
    times = [r["started_at"] for r in rows(tmp_path / "backtest.db", "SELECT started_at FROM cycles ORDER BY started_at")]
    days = sorted({t[:10] for t in times})
    assert days == ["2024-11-27", "2024-11-29", "2024-12-02"]  # Thanksgiving (28th) and the weekend: no session
    assert max(t for t in times if t.startswith("2024-11-29")) == "2024-11-29T18:00:00Z"  # the half day closes at 13:00 ET
    assert max(t for t in times if t.startswith("2024-12-02")) == "2024-12-02T21:00:00Z"
    assert min(t for t in times if t.startswith("2024-12-02")) == "2024-12-02T15:30:00Z"  # the first hour after 9:30 ET


def test_a_cycle_and_the_kill_switch_never_load_the_calendar_library(tmp_path):
    code = ("import sys; from tradecycle.cli import cli; import tradecycle.cycle.run, tradecycle.commands.run\n"
            f"cli(['killswitch', '--db', {str(tmp_path / 'x.db')!r}], standalone_mode=False)\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'exchange_calendars', 'pandas'}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, env=clean_env({}))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_json_prints_the_run_for_scripts(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    daily_csv(data / "BTC-USD.csv", date(2024, 1, 1), 100)
    config = write_config(tmp_path, market_data={"provider": "csv", "csv": {"path": "data"}}, backtest={"fee_bps": 10})
    result = invoke("backtest", "--from", "2024-03-01", "--to", "2024-04-01", "--json", "--config", config)
    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["status"] == "completed" and shown["cycles"] == shown["total_cycles"] == 31
    assert set(shown["results"]) >= {"return_percent", "buy_and_hold_percent", "max_drawdown_percent", "trades", "llm_calls"}
    stored = rows(tmp_path / "backtest.db", "SELECT results, parameters FROM backtests")[0]
    assert json.loads(stored["results"]) == shown["results"]
    assert json.loads(stored["parameters"])["fee_bps"] == "10"


def test_ctrl_c_finishes_the_cycle_under_way_and_resume_completes_the_run(tmp_path):
    import signal
    import time

    config = write_config(tmp_path)  # the simulator's history, one coin
    args = [sys.executable, "-m", "tradecycle.cli", "backtest", "--from", "2025-02-01", "--to", "2025-02-04",
            "--interval", "15m", "--config", str(config)]
    proc = subprocess.Popen(args, cwd=tmp_path, env=clean_env({}), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    out = tmp_path / "backtest.db"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(0.2)
        try:
            if out.exists() and rows(out, "SELECT cycles FROM backtests")[0]["cycles"] >= 10:
                break
        except (sqlite3.Error, IndexError):
            continue
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1, stderr
    assert stdout.startswith("backtest interrupted: ") and "--resume" in stdout
    run = rows(out, "SELECT status, cycles, total_cycles FROM backtests")[0]
    assert run["status"] == "interrupted" and 10 <= run["cycles"] < run["total_cycles"] == 288
    # Consistent: every cycle begun was finished, and the run's count is the table's.
    assert rows(out, "SELECT COUNT(*) AS n FROM cycles WHERE status != 'completed'")[0]["n"] == 0
    assert rows(out, "SELECT COUNT(*) AS n FROM cycles")[0]["n"] == run["cycles"]
    resumed = subprocess.run([*args, "--resume"], cwd=tmp_path, env=clean_env({}), capture_output=True, text=True,
                             timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.startswith("backtest completed: 288/288 cycles")
    assert rows(out, "SELECT COUNT(*) AS n FROM cycles")[0]["n"] == 288


def test_history_ends_at_todays_midnight(tmp_path):
    config = write_config(tmp_path)
    today = datetime.now(UTC).date()
    result = invoke("backtest", "--from", str(today - timedelta(days=3)), "--to", str(today + timedelta(days=1)),
                    "--config", config)
    assert result.exit_code == 2 and f"is after today ({today} UTC)" in result.stderr


def test_the_backtest_keys_are_checked_and_named(tmp_path):
    for sections, message in (
        ({"ai": {"training_cutoff": "2024-13-01"}}, "ai.training_cutoff: must be a date like 2024-06-30"),
        ({"backtest": {"slippage_bps": -1}}, "backtest.slippage_bps: must be >= 0"),
        ({"backtest": {"fee_bps": 2000}}, "backtest.fee_bps: must be <= 1000"),
        ({"backtest": {"spread_bps": 1}}, "backtest.spread_bps: unknown key"),
    ):
        config = write_config(tmp_path, **sections)
        result = invoke("backtest", "--from", "2025-01-01", "--to", "2025-01-10", "--config", config)
        assert result.exit_code == 2 and message in result.stderr, result.stderr
        assert not (tmp_path / "backtest.db").exists()


def test_out_never_takes_a_live_agents_database_and_resume_only_continues_the_same_backtest(tmp_path):
    config = write_config(tmp_path)
    assert invoke("run", "--config", config).exit_code == 0  # the live agent's database: live.db
    copy = tmp_path / "copy.db"
    shutil.copy(tmp_path / "live.db", copy)
    before = copy.read_bytes()
    result = invoke("backtest", "--from", "2025-01-01", "--to", "2025-01-05", "--out", copy, "--config", config)
    assert result.exit_code == 2 and "holds cycles that are not a backtest's" in result.stderr
    assert copy.read_bytes() == before

    assert invoke("backtest", "--from", "2025-01-01", "--to", "2025-01-05", "--config", config).exit_code == 0
    again = invoke("backtest", "--from", "2025-01-01", "--to", "2025-01-05", "--resume", "--config", config)
    assert again.exit_code == 2 and "holds a completed backtest" in again.stderr
    other = invoke("backtest", "--from", "2025-01-01", "--to", "2025-01-08", "--resume", "--config", config)
    assert other.exit_code == 2 and "--resume:" in other.stderr


def test_a_stock_csv_trades_at_the_session_close_and_leaves_out_bars_outside_the_sessions(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    daily_csv(data / "AAPL.csv", date(2024, 1, 1), 200)  # every calendar day, weekends and holidays included
    lines = ["timestamp,open,high,low,close,volume"]
    for k in range(24 * 4):  # 2024-07-03 from midnight UTC, 15-minute bars around the clock
        t = datetime(2024, 7, 3, tzinfo=UTC) + timedelta(minutes=15 * k)
        lines.append(f"{t:%Y-%m-%dT%H:%M:%SZ},{50 + k},{51 + k},{49 + k},{50.5 + k},10")
    (data / "MSFT.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = write_config(tmp_path, universe={"stocks": ["AAPL"], "crypto": []},
                          market_data={"provider": "csv", "csv": {"path": "data"}})
    result = invoke("backtest", "--from", "2024-06-28", "--to", "2024-07-09", "--config", config)
    assert result.exit_code == 0, result.stderr
    times = [r["started_at"] for r in rows(tmp_path / "backtest.db", "SELECT started_at FROM cycles ORDER BY started_at")]
    # Sessions only (not the weekend, not the 4th of July), each at its close: 16:00 New York is 20:00Z in summer,
    # 13:00 on the half day of the 3rd.
    assert times == ["2024-06-28T20:00:00Z", "2024-07-01T20:00:00Z", "2024-07-02T20:00:00Z", "2024-07-03T17:00:00Z",
                     "2024-07-05T20:00:00Z", "2024-07-08T20:00:00Z"]
    intraday = write_config(tmp_path, universe={"stocks": ["MSFT"], "crypto": []},
                            market_data={"provider": "csv", "csv": {"path": "data"}})
    result = invoke("backtest", "--from", "2024-07-03", "--to", "2024-07-04", "--interval", "15m", "--config", intraday)
    assert result.exit_code == 0, result.stderr
    times = [r["started_at"] for r in rows(tmp_path / "backtest.db", "SELECT started_at FROM cycles ORDER BY started_at")]
    assert times[0] == "2024-07-03T13:45:00Z" and times[-1] == "2024-07-03T17:00:00Z" and len(times) == 14


def test_broker_held_stops_are_placed_expire_with_their_session_and_fill_when_a_bar_goes_through(tmp_path):
    # A 5 % stop: the simulator's calibrated market (about 2 % a day) reaches it within the three months.
    config = write_config(tmp_path, universe={"stocks": ["AAPL", "MSFT", "NVDA"], "crypto": []},
                          risk={"broker_held_stops": True, "stop_loss_percent": 5})
    result = invoke("backtest", "--from", "2026-09-01", "--to", "2026-12-01", "--config", config)
    assert result.exit_code == 0, result.stderr
    out = tmp_path / "backtest.db"
    stops = rows(out, "SELECT status, COUNT(*) AS n FROM trades WHERE order_type = 'stop' GROUP BY status")
    by_status = {r["status"]: r["n"] for r in stops}
    assert by_status.get("expired", 0) > 5  # fractional shares: day stops, one a session
    assert by_status.get("filled", 0) >= 1
    filled = rows(out, "SELECT t.stop_price, t.filled_avg_price, t.executed_at FROM trades t"
                       " WHERE t.order_type = 'stop' AND t.status = 'filled'")[0]
    assert float(filled["filled_avg_price"]) <= float(filled["stop_price"])  # at the stop (less slippage) or a gap's open
    exits = rows(out, "SELECT outcome, model FROM ai_decisions WHERE model = 'broker-stop'")
    assert exits and all(e["outcome"] == "stop_loss" for e in exits)
