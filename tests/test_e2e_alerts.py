"""Alerts end to end: through apprise (``json://``) to the fake's local
webhook receiver (``tests/fakeserver/``, ``/alerts``), loopback only.

Cycles on a simulated clock (``tests/simulated.py``: the path of ``tradecycle
run``, the clock set to a Tuesday morning in New York so that no daily summary
is due) for the event counts and the 10-minute limit; the real CLI in a
subprocess for what a user sees: a failing channel changes nothing and leaks
no token, ``killswitch on`` announces itself, and no alert URL means apprise is
never loaded.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from typer.testing import CliRunner

from tradecycle.cli import cli
from tradecycle.infra.environment import ALERT_URLS_ENV

from .e2e_helpers import describe, e2e, fake, merge  # noqa: F401  (fixtures)
from .simulated import SimulatedCycles

TUESDAY_MORNING = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)  # 10:00 in New York: no daily summary due
QUIET = {"news": {"provider": "none"}, "universe": {"stocks": ["AAPL"], "crypto": []},
         "cycle": {"max_retries": 0, "analysis_timeout_seconds": 5, "order_timeout_seconds": 2, "max_cycle_seconds": 20}}
LOSS = {"equity": "94000", "last_equity": "100000", "cash": "94000"}
TOKEN = "s3cr3t-alert-token-7f3a9c2e"


def simulated(fake, tmp_path, **overrides) -> SimulatedCycles:
    sim = SimulatedCycles(fake, tmp_path, env={ALERT_URLS_ENV: fake.alert_url(TOKEN)}, **merge(QUIET, overrides))
    sim.clock.current = TUESDAY_MORNING
    return sim


def events(log_path, name: str) -> list[dict]:
    return [e for e in map(json.loads, log_path.read_text(encoding="utf-8").splitlines()) if e["event"] == name]


def test_tripping_the_daily_loss_limit_sends_exactly_one_alert_naming_the_reason(fake, tmp_path):
    sim = simulated(fake, tmp_path)
    with fake.lock:
        fake.account.update(LOSS)
    tripped = sim.run()
    assert tripped.halt_reason and "daily loss limit" in tripped.halt_reason

    [alert] = fake.alerts()
    assert alert["title"] == "tradecycle: kill switch ON" and alert["type"] == "failure"
    assert f"by the tool (cycle {tripped.cycle_id}): daily loss limit: -6.0% (limit 5%)" in alert["message"]
    # The change is on record: who, why, which cycle; and in the log.
    [change] = sim_rows(sim, "SELECT * FROM kill_switch_changes")
    assert (change["active"], change["changed_by"], change["cycle_id"]) == (1, "tool", tripped.cycle_id)
    assert "daily loss limit" in change["reason"]
    [logged] = events(sim.log_path, "killswitch.changed")
    assert (logged["changed_by"], logged["cycle_id"]) == ("tool", tripped.cycle_id)
    assert [e["kind"] for e in events(sim.log_path, "alert.sent")] == ["kill_switch_on"]

    sim.clock.advance(60)
    assert sim.run().status == "skipped"  # the switch stays on: nothing new to say
    assert len(fake.alerts()) == 1


def test_ten_aborted_cycles_then_a_completed_one_send_two_alerts(fake, tmp_path):
    sim = simulated(fake, tmp_path)
    fake.fail("alpaca", "status", status=503)
    for _ in range(10):  # 20 minutes of outage: longer than the 10-minute limit, still one alert
        assert sim.run().status == "aborted"
        sim.clock.advance(120)
    fake.reset_faults()
    recovered = sim.run()
    assert recovered.status == "completed"

    first, second = fake.alerts()
    assert first["title"] == "tradecycle: cycle aborted" and "broker unreachable" in first["message"]
    assert second["title"] == "tradecycle: cycles complete again" and recovered.cycle_id in second["message"]
    sim.clock.advance(60)
    assert sim.run().status == "completed" and len(fake.alerts()) == 2


def test_two_rejected_orders_a_minute_apart_send_one_alert(fake, tmp_path):
    sim = simulated(fake, tmp_path)
    fake.llm_decide = {"AAPL": ("buy", 0.9, "breakout")}
    fake.fail("/v2/orders", "status", method="POST", status=403, message="insufficient buying power")
    outcomes = []
    for minutes in (0, 1, 11):
        sim.clock.current = TUESDAY_MORNING.replace(minute=minutes)
        outcomes.append(sim.run().outcomes["AAPL"])
    assert outcomes == ["rejected"] * 3

    first, later = fake.alerts()  # minute 0; minute 1 held back; minute 11 sent, saying so
    assert first["title"] == "tradecycle: order rejected (AAPL)" and "insufficient buying power" in first["message"]
    assert "1 more alert of this kind held back by the 10-minute limit" in later["message"]
    assert [e["kind"] for e in events(sim.log_path, "alert.held_back")] == ["order_rejected"]


def test_a_failing_alert_url_changes_nothing_else_and_leaks_no_token(e2e):
    e2e.env[ALERT_URLS_ENV] = e2e.fake.alert_url(TOKEN)
    e2e.fake.fail("alerts", "status", status=500)
    e2e.fake.llm_decide = {"AAPL": ("buy", 0.9, "breakout")}
    with e2e.fake.lock:
        e2e.fake.account.update(LOSS)
    result = e2e.run()  # exit 0 asserted: the cycle completes as it would without alerts

    assert "kill switch turned on: daily loss limit" in result.stderr
    assert e2e.last_cycle()["status"] == "completed" and e2e.kill_switch()["kill_switch_active"] == 1
    assert e2e.fake.count("alerts") >= 1 and e2e.fake.alerts() == []  # tried, refused
    failed = [e for e in events(e2e.log_path, "alert.failed") if e["kind"] == "kill_switch_on"]
    assert len(failed) == 1 and "500" in failed[0]["error"]
    # The token is nowhere a user or a log reader could see it: output, log, database.
    stored = b"".join(p.read_bytes() for p in e2e.folder.glob("tradecycle.db*"))
    assert TOKEN not in result.stdout + result.stderr
    assert TOKEN not in e2e.log_path.read_text(encoding="utf-8")
    assert TOKEN.encode() not in stored


def test_killswitch_on_announces_itself_after_the_flag_is_recorded(e2e):
    e2e.env[ALERT_URLS_ENV] = e2e.fake.alert_url(TOKEN)
    on = e2e.cli("killswitch", "on", "--reason", "going on holiday")
    assert on.returncode == 0, describe(on)
    assert on.stdout.splitlines()[0].startswith("kill switch ON since") and "Alert sent." in on.stdout
    [alert] = e2e.fake.alerts()
    assert alert["title"] == "tradecycle: kill switch ON"
    assert "Turned on by a person: going on holiday." in alert["message"]

    again = e2e.cli("killswitch", "on", "--reason", "still on holiday")  # within 10 minutes: held back, and said
    assert again.returncode == 0 and "no alert sent: one of this kind went out less than 10 minutes ago" in again.stderr
    assert len(e2e.fake.alerts()) == 1
    shown = e2e.cli("killswitch", env=e2e.env | {"COLUMNS": "80"})
    assert shown.returncode == 0
    lines = shown.stdout.splitlines()
    table = lines[next(i for i, line in enumerate(lines) if line.strip() == "last changes"):]
    assert all(len(line) <= 80 for line in table)
    assert [line.split()[1:3] for line in table if line.startswith("20")] == [["ON", "person"], ["ON", "person"]]
    assert e2e.fake.alerts()[0]["message"] and TOKEN not in shown.stdout + again.stderr + on.stdout


def test_a_silent_alert_channel_never_holds_killswitch_on_for_long(e2e):
    e2e.env[ALERT_URLS_ENV] = e2e.fake.alert_url(TOKEN)
    e2e.fake.fail("alerts", "delay", seconds=60)
    on = e2e.cli("killswitch", "on", timeout=12)  # the channel would answer after 60 s: the command does not wait
    assert on.returncode == 0, describe(on)
    assert "the alert was not sent (no answer within" in on.stderr and "the kill switch is on all the same" in on.stderr
    assert e2e.kill_switch()["kill_switch_active"] == 1


def test_killswitch_off_is_announced_too(e2e):
    e2e.env[ALERT_URLS_ENV] = e2e.fake.alert_url(TOKEN)
    assert e2e.cli("killswitch", "off").returncode == 0
    [alert] = e2e.fake.alerts()
    assert alert["title"] == "tradecycle: kill switch off" and "trade normally again" in alert["message"]


def test_without_alert_urls_a_cycle_never_loads_apprise(e2e):
    result = e2e.cli("run", env=e2e.env | {"PYTHONPROFILEIMPORTTIME": "1"})
    assert result.returncode == 0, describe(result)
    imported = [line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")]
    assert "tradecycle.cycle.run" in imported  # the import report is there...
    assert not [m for m in imported if m.startswith("apprise") or m == "tradecycle.connectors.apprise_sender"]
    assert e2e.fake.count("alerts") == 0


def sim_rows(sim: SimulatedCycles, sql: str) -> list[dict]:
    import sqlite3

    with sqlite3.connect(sim.config.database_path) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql)]


def test_a_stop_loss_that_fires_is_announced_once(fake, tmp_path):
    sim = simulated(fake, tmp_path)
    fake.add_position("AAPL", "10", "200", current_price="150")
    fake.set_price("AAPL", "150")
    sold = sim.run()
    assert sold.outcomes["AAPL"] == "stop_loss"
    # The position was there before the database: that is said too (its own alert).
    [alert] = [a for a in fake.alerts() if "new database" not in a["title"]]
    assert alert["title"] == "tradecycle: protective exit (AAPL)"
    assert "AAPL: stop-loss: price 150 is 25.00% under the entry 200" in alert["message"]
    assert "sell sent: " in alert["message"] and sold.cycle_id in alert["message"]


def test_the_daily_summary_goes_once_a_day_after_the_us_close(fake, tmp_path):
    sim = simulated(fake, tmp_path)
    sim.clock.current = datetime(2026, 12, 1, 20, 59, tzinfo=UTC)  # 15:59 in New York
    sim.run()
    assert fake.alerts() == []
    for minute in (1, 2, 30):  # 16:01 sends it; 16:02 and 16:30 do not
        sim.clock.current = datetime(2026, 12, 1, 21, minute, tzinfo=UTC)
        sim.run()
    [summary] = fake.alerts()
    assert summary["title"] == "tradecycle: daily summary 2026-12-01"
    assert "Equity $100,000.00; P&L today" in summary["message"] and "Orders today: 0." in summary["message"]
    # The record's head as it stood after that cycle: kept in the alert's inbox, it later proves the record.
    kept = re.search(r"Record: chain head ([0-9a-f]{64}) \(link \d+, ", summary["message"]).group(1)
    checked = CliRunner().invoke(cli, ["verify", "--db", str(sim.config.database_path), "--head", kept, "--json"])
    assert checked.exit_code == 0 and json.loads(checked.stdout)["kept_head"]["found"]
    sim.clock.current = datetime(2026, 12, 2, 21, 1, tzinfo=UTC)  # the next weekday
    sim.run()
    assert [a["title"] for a in fake.alerts()][1:] == ["tradecycle: daily summary 2026-12-02"]


def test_a_url_apprise_does_not_know_is_named_by_position_and_the_others_still_get_the_alert(fake):
    from tradecycle.connectors.apprise_sender import AppriseSender
    from tradecycle.infra.environment import Secrets
    from tradecycle.infra.errors import AlertFailed

    secrets = Secrets({ALERT_URLS_ENV: f"nosuchscheme://{TOKEN},{fake.alert_url(TOKEN)}"})
    sender = AppriseSender(secrets.alert_urls(), secrets.values())
    try:
        sender.send("tradecycle: test", "hello", "info", 3)
    except AlertFailed as exc:
        message = str(exc)
    else:
        raise AssertionError("an unknown URL must not pass silently")
    assert message == "URL 1 of TRADECYCLE_ALERT_URLS not understood by apprise (the other: sent)"
    assert [a["message"] for a in fake.alerts()] == ["hello"]
