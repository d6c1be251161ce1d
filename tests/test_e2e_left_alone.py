"""End to end against the fake server (issue 23): no buy back within the
cooldown after a stop-out, the stop-loss guard after the third stop-out, the
heartbeat at a local receiver, and status when cron stopped. Through the
real CLI; asserted: the requests that reached the fakes, rows, output."""

from __future__ import annotations

import json
import sqlite3

from .e2e_helpers import describe, e2e, fake  # noqa: F401  (fixtures)


def log_events(e2e, name: str) -> list[dict]:
    lines = e2e.log_path.read_text(encoding="utf-8").splitlines()
    return [event for event in map(json.loads, lines) if event.get("event") == name]


def test_a_stop_out_followed_by_a_buy_signal_sends_no_buy_within_the_cooldown(e2e):
    e2e.configure(universe={"stocks": ["AAPL"], "crypto": []})
    e2e.fake.fill_orders = True
    e2e.fake.set_price("AAPL", "182")
    with e2e.fake.lock:
        e2e.fake.add_position("AAPL", "10", "200", "182")
    e2e.fake.llm_decide = {"AAPL": ("buy", 0.95, "the dip is a gift")}
    e2e.run()  # the stop-loss sells
    e2e.run()
    e2e.run()  # the signal is still there: no buy back within risk.reentry_cooldown_minutes

    assert [(o["symbol"], o["side"]) for o in e2e.posted_orders()] == [("AAPL", "sell")]
    assert e2e.fake.count("openai") == 0  # no LLM call spent on a buy that would be refused
    rows = e2e.rows("SELECT outcome, detail, repeats FROM ai_decisions ORDER BY id")
    assert [(r["outcome"], r["repeats"]) for r in rows] == [("stop_loss", 0), ("cooldown", 1)]
    assert "no buy of AAPL until" in rows[1]["detail"] and "risk.reentry_cooldown_minutes = 240" in rows[1]["detail"]
    shown = e2e.cli("explain", "last")
    assert "cooldown" in shown.stdout, describe(shown)


def test_the_guard_pauses_buys_after_the_third_stop_out_with_one_event_and_one_alert(e2e):
    stocks = ["AAPL", "MSFT", "NVDA"]
    e2e.configure(universe={"stocks": stocks, "crypto": ["BTC/USD"]})
    e2e.env = {**e2e.env, "TRADECYCLE_ALERT_URLS": e2e.fake.alert_url()}
    e2e.fake.fill_orders = True
    with e2e.fake.lock:
        for symbol, entry in zip(stocks, ("200", "450", "150")):
            low = f"{float(entry) * 0.9:.2f}"
            e2e.fake.set_price(symbol, low)
            e2e.fake.add_position(symbol, "10", entry, low)
    e2e.fake.llm_decide = {"BTC/USD": ("buy", 0.95, "breakout")}
    e2e.run()  # three stop-outs: the third trips the guard, and the BTC buy after them is refused
    e2e.run()

    orders = e2e.posted_orders()
    assert sorted((o["symbol"], o["side"]) for o in orders) == [("AAPL", "sell"), ("MSFT", "sell"), ("NVDA", "sell")]
    btc = e2e.rows("SELECT outcome, detail, repeats FROM ai_decisions WHERE symbol = 'BTC/USD' ORDER BY id")
    assert [r["outcome"] for r in btc] == ["stop_guard", "stop_guard"]  # refused after the sells, then not even asked
    assert "3 stop-outs within 1440 minutes" in btc[0]["detail"]
    assert e2e.fake.count("openai") == 1  # asked in the first cycle only (before the stop-outs went out)
    events = log_events(e2e, "risk.stop_guard")
    assert len(events) == 1 and "every buy paused until" in events[0]["message"]
    guard_alerts = [a for a in e2e.fake.alerts() if "stop-loss guard" in a["title"]]
    assert len(guard_alerts) == 1 and "Sells and protective exits go on" in guard_alerts[0]["message"]


def test_the_heartbeat_reaches_the_receiver_with_the_right_suffix(e2e):
    e2e.env = {**e2e.env, "TRADECYCLE_HEARTBEAT_URL": e2e.fake.heartbeat_url}
    e2e.fake.llm_decide = {"AAPL": ("hold", 0.5, "wait"), "BTC/USD": ("hold", 0.5, "wait")}
    e2e.run()
    fault = e2e.fake.fail("alpaca", "status", status=500)
    e2e.run(expect=1)  # the broker is down: aborted
    with e2e.fake.lock:
        e2e.fake.faults.remove(fault)
    assert e2e.cli("killswitch", "on", "--reason", "lunch").returncode == 0
    e2e.run()  # skipped

    pings = e2e.fake.pings()
    assert [p["kind"] for p in pings] == ["success", "fail", "success"]
    assert all(p["method"] == "POST" for p in pings)
    cycles = [c["cycle_id"] for c in e2e.rows("SELECT cycle_id FROM cycles ORDER BY started_at, rowid")]
    assert pings[0]["body"].startswith(f"cycle {cycles[0]} completed")
    assert pings[1]["body"].startswith(f"cycle {cycles[1]} aborted") and pings[1]["path"].endswith("/fail")
    assert pings[2]["body"].startswith(f"cycle {cycles[2]} skipped: kill switch is on (lunch)")
    log = e2e.log_path.read_text(encoding="utf-8")
    assert e2e.fake.heartbeat_url.rsplit("/", 1)[-1] not in log  # the check's token is a secret
    assert len(log_events(e2e, "heartbeat.sent")) == 3


def test_a_heartbeat_that_is_down_never_fails_the_cycle(e2e):
    e2e.env = {**e2e.env, "TRADECYCLE_HEARTBEAT_URL": e2e.fake.heartbeat_url}
    e2e.fake.fail("heartbeat", "status", times=1, status=503)
    result = e2e.run()
    assert "completed" in result.stdout
    [failed] = log_events(e2e, "heartbeat.failed")
    assert failed["error"] == "heartbeat: HTTP 503" and failed["level"] == "warning"


def test_check_online_pings_the_heartbeat_once(e2e):
    env = {**e2e.env, "TRADECYCLE_HEARTBEAT_URL": e2e.fake.heartbeat_url}
    e2e.fake.llm_decide = {"AAPL": ("hold", 0.5, "wait")}
    result = e2e.cli("check", "--online", "--json", env=env)
    assert result.returncode == 0, describe(result)
    [probe] = [s for s in json.loads(result.stdout)["services"] if s["service"] == "heartbeat"]
    assert probe["ok"] and probe["detail"] == "pinged: HTTP 200"
    assert [(p["kind"], p["body"]) for p in e2e.fake.pings()] == [("success", "tradecycle check --online")]


def test_status_says_when_no_cycle_has_run_for_three_minutes(e2e):
    e2e.fake.llm_decide = {"AAPL": ("hold", 0.5, "wait"), "BTC/USD": ("hold", 0.5, "wait")}
    e2e.run()
    fresh = json.loads(e2e.cli("status", "--json").stdout)["last_cycle"]
    assert fresh["age_seconds"] < 60 and fresh["stale"] is False
    with sqlite3.connect(e2e.db_path) as conn:  # as if cron stopped 47 minutes ago
        conn.execute("UPDATE cycles SET started_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-47 minutes')")
    stale = json.loads(e2e.cli("status", "--json").stdout)["last_cycle"]
    assert 47 * 60 <= stale["age_seconds"] < 48 * 60 and stale["stale"] is True
    shown = e2e.cli("status").stdout
    assert "no cycle has run for 47 min: is cron running?" in shown
    assert "(47 min ago)" in shown


def test_explain_shows_the_volatility_sizing_arithmetic(tmp_path):
    """Offline, through the CLI: the simulator has daily bars, so an ATR(14); the first cycle buys AAPL."""
    from .e2e_helpers import copy_shipped_config
    from .test_cli_commands import invoke

    config = copy_shipped_config(tmp_path)
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace('sizing = "fixed"', 'sizing = "volatility"').replace(
        "risk_per_trade_percent = 0.25", "risk_per_trade_percent = 0.1"), encoding="utf-8")
    assert invoke("run", "--config", config).exit_code == 0
    story = json.loads(invoke("explain", "last", "--json", "--config", config).stdout)
    [bought] = [d for d in story["decisions"] if d["outcome"] == "ordered"]
    atr = bought["inputs"]["indicators"]["atr_14"]
    assert f"volatility sizing: 0.1% of equity 100000.00 = 100.00 USD per ATR(14) {atr} -> " in bought["detail"]
    [trade] = story["trades"]
    assert trade["notional_usd"] in bought["detail"]  # what was ordered is what the arithmetic says
    shown = invoke("explain", "last", "--config", config).stdout
    assert "volatility sizing: 0.1% of equity" in " ".join(shown.split())
