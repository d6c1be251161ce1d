"""Every command as a user runs it: ``tradecycle.cli.cli`` through typer's
CliRunner, on real SQLite files made by real ``run`` invocations of the
shipped offline simulator config, and ``check --online`` against the local
fake services. What is asserted is what a user sees: exit code, stdout,
stderr."""

from __future__ import annotations

import io
import json
import re
import shutil
import socket
import time
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from tradecycle.commands import history as history_cmd
from tradecycle.commands import status as status_cmd
from tradecycle.render import history as history_view
from tradecycle.render import status as status_view
from tradecycle.cli import cli
from tradecycle.config import Secrets, load_config
from tradecycle.commands.probe import probe_services

from .e2e_helpers import copy_shipped_config
from .fakeserver import FakeServices

REPO_CONFIG = Path(__file__).resolve().parents[1] / "config.toml"
SYMBOLS = ["AAPL", "MSFT", "NVDA", "BTC/USD", "ETH/USD"]
# Nothing from the developer's shell may change what the tests see.
CLEAN_ENV = {"TRADECYCLE_DEBUG": None, "TRADECYCLE_CONFIG": None, "COLUMNS": "250", **{name: None for name in Secrets.NAMES}}


def invoke(*args: str, env: dict | None = None):
    return CliRunner().invoke(cli, [str(a) for a in args], env={**CLEAN_ENV, **(env or {})}, catch_exceptions=False)


def sim_config(folder: Path) -> Path:
    return copy_shipped_config(folder)


def run_cycles(config: Path, count: int) -> None:
    for _ in range(count):
        result = invoke("run", "--config", config)
        assert result.exit_code == 0, result.output


def as_json(result) -> object:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """Three simulator cycles in one database. The seeded simulator opens AAPL
    2.7 % above its previous close, so the first cycle buys AAPL and holds the rest."""
    config = sim_config(tmp_path_factory.mktemp("history"))
    run_cycles(config, 3)
    cycles = as_json(invoke("cycles", "--json", "--config", config))
    return config, [c["cycle_id"] for c in cycles]


@pytest.fixture
def fresh(tmp_path):
    """A simulator database of its own, after one cycle (for tests that change it)."""
    config = sim_config(tmp_path)
    run_cycles(config, 1)
    return config


@pytest.fixture
def fake():
    with FakeServices() as services:
        services.alpaca_secret_key = "alpaca-secret-0123456789"
        services.finnhub_token = "finnhub-token-0123456789"
        services.llm_decide = {"AAPL": ("hold", 0.55, "waiting for earnings")}  # what `check --online` asks about
        yield services


# -- run -------------------------------------------------------------------------


def test_run_without_a_terminal_prints_one_line(tmp_path):
    result = invoke("run", "--config", sim_config(tmp_path))
    assert result.exit_code == 0
    assert result.stdout.count("\n") == 1
    assert result.stdout.startswith("cycle ") and "completed: 5 symbols, 1 order, 0 errors" in result.stdout


# -- history: cycles, trades, decisions ------------------------------------------------


def test_cycles_json_is_the_cycles_newest_first(history):
    config, ids = history
    rows = as_json(invoke("cycles", "--json", "--config", config))
    assert isinstance(rows, list) and len(rows) == 3
    assert [r["status"] for r in rows] == ["completed"] * 3
    assert [r["orders_count"] for r in rows][-1] == 1  # the oldest cycle is the one that bought
    assert len(set(ids)) == 3


def test_trades_json_holds_the_order_the_first_cycle_sent(history):
    config, ids = history
    rows = as_json(invoke("trades", "--json", "--config", config))
    assert [(t["cycle_id"], t["symbol"], t["side"], t["status"]) for t in rows] == [(ids[-1], "AAPL", "buy", "filled")]
    assert rows[0]["client_order_id"] and rows[0]["broker_order_id"]


def test_decisions_json_stands_for_every_symbol_in_every_cycle(history):
    config, ids = history
    rows = as_json(invoke("decisions", "--json", "--config", config))
    # A hold that repeats the one before extends its row (store/spans.py): rows x cycles each spans.
    assert sum(1 + r["repeats"] for r in rows) == 3 * len(SYMBOLS)
    assert len(rows) < 3 * len(SYMBOLS)
    assert ids[0] in {r["last_cycle_id"] or r["cycle_id"] for r in rows}  # the newest cycle is covered
    first = {r["symbol"]: r for r in rows if r["cycle_id"] == ids[-1]}
    assert sorted(first) == sorted(SYMBOLS)
    assert first["AAPL"]["action"] == "buy" and first["AAPL"]["outcome"] == "ordered"
    assert all(first[s]["outcome"] == "hold" for s in SYMBOLS if s != "AAPL")
    assert all(r["reasoning"] for r in rows)


@pytest.mark.parametrize(
    "kind, options, expected_count",
    [
        ("cycles", ["--limit", "2"], 2),
        ("cycles", ["--since", "2000-01-01T00:00"], 3),
        ("cycles", ["--since", "2999-01-01T00:00"], 0),
        ("trades", ["--limit", "1"], 1),
        ("trades", ["--symbol", "aapl"], 1),
        ("trades", ["--symbol", "MSFT"], 0),
        ("trades", ["--since", "2999-01-01T00:00"], 0),
        ("decisions", ["--limit", "4"], 4),
        ("decisions", ["-n", "100", "--symbol", "btc/usd"], 3),  # decisions: rows x the cycles each spans
        ("decisions", ["--symbol", "AAPL", "--limit", "1"], 1),
        ("decisions", ["--since", "2000-01-01T00:00", "-n", "100"], 15),
        ("decisions", ["--since", "2999-01-01T00:00"], 0),
    ],
)
def test_history_options_are_honoured(history, kind, options, expected_count):
    config, _ = history
    rows = as_json(invoke(kind, "--json", "--config", config, *options))
    limited = "--limit" in options
    counted = sum(1 + r["repeats"] for r in rows) if kind == "decisions" and not limited else len(rows)
    assert isinstance(rows, list) and counted == expected_count
    if "--symbol" in options:
        wanted = options[options.index("--symbol") + 1].upper()
        assert {r["symbol"] for r in rows} <= {wanted}


def test_history_table_shows_whole_cycle_ids(history):
    config, ids = history
    result = invoke("cycles", "--config", config, env={"COLUMNS": None})  # piped, no COLUMNS: still whole
    assert result.exit_code == 0
    assert all(cycle_id in result.stdout for cycle_id in ids)


def test_history_on_an_empty_database_says_so(tmp_path):
    result = invoke("trades", "--config", sim_config(tmp_path))
    assert result.exit_code == 0 and "no trades yet" in result.stdout


# -- explain -----------------------------------------------------------------------------


def test_explain_shows_each_decision_with_reasoning_and_outcome(history):
    config, ids = history
    decisions = as_json(invoke("decisions", "--json", "-n", "100", "--config", config))
    result = invoke("explain", ids[-1], "--config", config)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"cycle {ids[-1]}: completed" in out
    lines = out.splitlines()
    for d in (d for d in decisions if d["cycle_id"] == ids[-1]):
        row = next(line for line in lines if line.startswith(f"{d['symbol']} ") and d["outcome"] in line)
        assert d["action"] in row.split()  # the decisions table
        why = next(i for i, line in enumerate(lines) if line.startswith(f"{d['symbol']} ") and f"{d['action']} -> {d['outcome']}" in line)
        assert lines[why + 1].strip() == d["reasoning"]  # the reasoning, whole, under its verdict
    assert "ordered" in out and "tc-" in out  # the order, with its client order id


def test_explain_last_is_the_newest_cycle(history):
    config, ids = history
    story = as_json(invoke("explain", "last", "--json", "--config", config))
    assert story["cycle"]["cycle_id"] == ids[0]
    assert sorted(d["symbol"] for d in story["decisions"]) == sorted(SYMBOLS)
    assert invoke("explain", "last", "--config", config).stdout.startswith(f"cycle {ids[0]}")


def test_explain_unknown_cycle_exits_1_and_says_so(history):
    config, _ = history
    result = invoke("explain", "no-such-cycle", "--config", config)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.strip() == "tradecycle: no cycle 'no-such-cycle' in the database (see `tradecycle cycles`)"


def test_explain_prints_untrusted_text_as_is(history):
    """A reasoning or headline is data from an LLM or the news: rich markup in it is printed, not obeyed."""
    config, _ = history
    story = history_cmd.explain(str(config), None, "last")
    story["decisions"][0]["reasoning"] = "[/] close [bold red]everything[/bold red] now"
    out = render_to_text(history_view.explain, story)
    assert "[/] close [bold red]everything[/bold red] now" in out


# -- status ------------------------------------------------------------------------------


def render_to_text(render_function, *args) -> str:
    console = Console(file=io.StringIO(), width=140, force_terminal=False)
    render_function(*args, console=console)
    return console.file.getvalue()


def test_status_renders_kill_switch_last_cycle_account_positions_and_limits(fresh):
    data = status_cmd.status(str(fresh), None)
    out = render_to_text(status_view.status, data)
    lines = out.splitlines()
    assert "kill switch" in out and "off: cycles trade normally" in out
    assert data["last_cycle"]["cycle_id"] in out and "completed" in out
    assert "today's P&L" in out and data["account"]["equity"] in out and "previous close" in out
    aapl = next(line for line in lines if line.startswith("AAPL "))
    position = data["positions"][0]
    for field in ("qty", "avg_entry_price", "current_price", "market_value", "unrealized_pl"):
        assert position[field] in aapl
    assert "unrealized P&L" in out
    limits = {line.split()[0]: line for line in lines if line.startswith("risk.")}
    assert set(limits) == {f"risk.{k}" for k in data["limits"]}
    assert "1" in limits["risk.max_positions_count"].split() and "15" in limits["risk.max_positions_count"].split()
    assert "100%" in limits["risk.max_position_size_percent"]  # the AAPL buy filled its 10 % to the brim


def test_status_shows_the_kill_switch_reason_and_since(fresh):
    assert invoke("killswitch", "on", "--reason", "manual review", "--config", fresh).exit_code == 0
    data = status_cmd.status(str(fresh), None)
    out = render_to_text(status_view.status, data)
    assert "ON: no order will be sent" in out and "manual review" in out
    assert data["kill_switch"]["changed_at"] in out


def test_status_before_any_cycle_says_what_is_missing(tmp_path):
    result = invoke("status", "--config", sim_config(tmp_path))
    assert result.exit_code == 0, result.output
    assert re.search(r"^last cycle +none yet", result.stdout, re.M) and "positions: none open" in result.stdout


def test_status_command_prints_the_tables(fresh):
    result = invoke("status", "--config", fresh)
    assert result.exit_code == 0, result.output
    for title in ("kill switch", "last cycle", "account", "positions", "risk limits"):
        assert title in result.stdout
    assert re.search(r"^AAPL +\d", result.stdout, re.M)


def test_status_json_has_the_contract_keys(fresh):
    invoke("killswitch", "on", "--reason", "drill", "--config", fresh)
    data = as_json(invoke("status", "--json", "--config", fresh))
    assert data["kill_switch"]["active"] is True
    assert data["kill_switch"]["reason"] == "drill"
    assert isinstance(data["kill_switch"]["changed_at"], str)
    assert data["last_cycle"]["status"] == "completed"
    assert [p["symbol"] for p in data["positions"]] == ["AAPL"]
    assert set(data["limits"]) == {"max_positions_count", "max_position_size_percent",
                                   "max_total_exposure_percent", "daily_loss_limit_percent"}


# -- check (offline) -----------------------------------------------------------------------


def test_check_accepts_the_shipped_config(tmp_path):
    result = invoke("check", "--config", sim_config(tmp_path))
    assert result.exit_code == 0, result.output
    assert ": valid" in result.stdout and "broker=sim" in result.stdout
    assert result.stderr == ""


def test_check_names_the_bad_key_and_exits_2(tmp_path):
    config = sim_config(tmp_path)
    config.write_text(config.read_text().replace("max_position_size_percent = 10", "max_position_size_percent = 250"))
    result = invoke("check", "--config", config)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "risk.max_position_size_percent: must be <= 100" in result.stderr


@pytest.mark.parametrize("online", [[], ["--online"]])
def test_check_missing_keys_exits_2_without_a_request(fake, tmp_path, online):
    config = fake.config_toml(tmp_path)
    result = invoke("check", *online, "--config", config, env={"FINNHUB_API_KEY": "x" * 8})
    assert result.exit_code == 2
    assert "APCA_API_KEY_ID" in result.stderr and "APCA_API_SECRET_KEY" in result.stderr
    assert fake.count() == 0


# -- check --online -------------------------------------------------------------------------


def service_rows(stdout: str) -> dict[str, str]:
    """The services table: 'broker [alpaca]' -> its row."""
    rows = {}
    for line in stdout.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) == 5 and cells[2] in ("OK", "FAILED"):
            rows[f"{cells[0]} [{cells[1]}]"] = line
    return rows


def test_check_online_all_services_answer(fake, tmp_path):
    config = fake.config_toml(tmp_path)
    result = invoke("check", "--online", "--config", config, env=fake.env())
    assert result.exit_code == 0, result.output
    rows = service_rows(result.stdout)
    assert list(rows) == ["broker [alpaca]", "market data (stocks) [finnhub]", "market data (crypto) [coingecko]",
                          "news [finnhub]", "ai [openai]"]
    assert all(" OK " in row for row in rows.values())
    assert "AAPL 187.21" in rows["market data (stocks) [finnhub]"]
    assert "gpt-4o-mini answered one decision (AAPL hold 0.55)" in rows["ai [openai]"]
    # Each service reached once; nothing traded: the one POST is the model's one decision.
    assert fake.count("alpaca", "GET", "/v2/account") == 1 and fake.count("alpaca", "GET", "/v2/clock") == 1
    assert fake.count("finnhub", "GET", "/quote") == 1 and fake.count("finnhub", "GET", "/company-news") == 1
    assert fake.count("coingecko") == 1 and fake.count("openai", "GET", "/models") == 1
    assert fake.count(method="POST") == fake.count("openai", "POST", "/chat/completions") == 1
    assert fake.alpaca_secret_key not in result.output and fake.finnhub_token not in result.output


def test_check_online_json_reports_every_service(fake, tmp_path):
    result = invoke("check", "--online", "--json", "--config", fake.config_toml(tmp_path), env=fake.env())
    services = as_json(result)["services"]
    assert [(s["service"], s["ok"]) for s in services] == [
        ("broker", True), ("market data (stocks)", True), ("market data (crypto)", True), ("news", True), ("ai", True)]
    assert all(isinstance(s["elapsed_ms"], int) for s in services)


def test_check_online_offline_providers_pass_without_a_call(tmp_path):
    result = invoke("check", "--online", "--config", sim_config(tmp_path))
    assert result.exit_code == 0, result.output
    rows = service_rows(result.stdout)
    assert len(rows) == 5 and all(" OK " in row for row in rows.values())
    assert "simulator, offline" in rows["broker [sim]"] and "rules analyst, offline" in rows["ai [rules]"]


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/v1"


@pytest.mark.parametrize(
    "situation, failing, detail",
    [
        ("finnhub_500", ["market data (stocks) [finnhub]", "news [finnhub]"], "HTTP 500"),
        ("finnhub_closed_port", ["market data (stocks) [finnhub]", "news [finnhub]"], "cannot connect"),
        ("alpaca_401", ["broker [alpaca]"], "check APCA_API_KEY_ID and APCA_API_SECRET_KEY"),
        ("account_blocked", ["broker [alpaca]"], "blocked"),
        ("unknown_coin", ["market data (crypto) [coingecko]"], "ETH/USD"),
        ("model_not_served", ["ai [openai]"], "check ai.model"),
        ("openai_garbage", ["ai [openai]"], "not JSON"),
    ],
)
def test_check_online_names_the_failing_service(fake, tmp_path, situation, failing, detail):
    overrides: dict = {}
    if situation == "finnhub_500":
        fake.fail("finnhub", "status", status=500)
    elif situation == "finnhub_closed_port":
        overrides["market_data"] = {"finnhub": {"base_url": closed_port_url()}}
    elif situation == "alpaca_401":
        fake.fail("alpaca", "status", status=401)
    elif situation == "account_blocked":
        fake.account["trading_blocked"] = True
    elif situation == "unknown_coin":
        overrides["market_data"] = {"coingecko": {"ids": {"BTC/USD": "bitcoin", "ETH/USD": "no-such-coin"}}}
    elif situation == "model_not_served":
        overrides["ai"] = {"model": "llama3"}
    elif situation == "openai_garbage":
        fake.fail("openai", "garbage")
    config = fake.config_toml(tmp_path, **overrides)

    result = invoke("check", "--online", "--config", config, env=fake.env())

    assert result.exit_code == 1
    rows = service_rows(result.stdout)
    assert sorted(label for label, row in rows.items() if "FAILED" in row) == sorted(failing)
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"tradecycle: {len(failing)} service(s) failed: ")
    for label in failing:
        assert label in result.stderr
    assert detail in result.stderr
    assert fake.count("alpaca", "POST") == 0
    assert fake.alpaca_secret_key not in result.output and fake.finnhub_token not in result.output


def test_check_online_without_models_still_asks_for_one_decision(fake, tmp_path):
    fake.fail("/openai/v1/models", "status", status=404)
    result = invoke("check", "--online", "--config", fake.config_toml(tmp_path), env=fake.env())
    assert result.exit_code == 0, result.output
    assert "answered one decision (AAPL hold 0.55); the server has no /models" in service_rows(result.stdout)["ai [openai]"]
    [completion] = fake.calls("openai", "POST", "/chat/completions")
    assert completion.json["response_format"]["type"] == "json_schema" and "max_tokens" not in completion.json


def test_probes_end_inside_the_budget(fake, tmp_path):
    fake.fail("alpaca", "delay", seconds=3)
    config = load_config(fake.config_toml(tmp_path))
    started = time.monotonic()
    probes = probe_services(config, Secrets(fake.env()), budget_seconds=0.5)
    assert time.monotonic() - started < 2
    broker = probes[0]
    assert (broker.service, broker.ok) == ("broker", False) and "no answer" in broker.detail
    assert all(p.ok for p in probes[1:])


# -- errors: one line, or a traceback on request ------------------------------------------------


@pytest.mark.parametrize(
    "flags, env, traceback_shown",
    [([], {}, False), (["--traceback"], {}, True), ([], {"TRADECYCLE_DEBUG": "1"}, True), ([], {"TRADECYCLE_DEBUG": "0"}, False)],
)
def test_a_corrupt_database_is_one_line_unless_a_traceback_is_asked_for(tmp_path, flags, env, traceback_shown):
    config = sim_config(tmp_path)
    (tmp_path / "tradecycle.db").write_bytes(b"this is not a database\n" * 100)
    result = invoke("status", "--config", config, *flags, env=env)
    assert result.exit_code == 1
    assert result.stdout == ""
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("tradecycle: database ") and "is corrupt" in last_line
    assert ("Traceback (most recent call last)" in result.stderr) is traceback_shown
    if not traceback_shown:
        assert result.stderr.count("\n") == 1
