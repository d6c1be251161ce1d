"""End to end, what the broker knows that the cycle or the database does not:
an order that fills between the positions reply and the order-lookup reply
(the broker's replies reordered), orders sent while the database's WAL file
was removed (the process then killed), and a kill switch whose database was
deleted. The real ``tradecycle`` CLI against the fake services."""

from __future__ import annotations

import json
import os
import signal
import threading

from tradecycle.infra.environment import ALERT_URLS_ENV

from .e2e_helpers import describe, e2e, fake, wait_for  # noqa: F401  (fixtures)

AAPL_ONLY = {"stocks": ["AAPL"], "crypto": []}
FIVE = {"stocks": ["AAPL", "MSFT", "NVDA"], "crypto": ["BTC/USD", "ETH/USD"]}


def _buy(*symbols):
    return {s: ("buy", 0.9, "breakout") for s in symbols}


def _alert_titles(fake):
    return [a["title"] for a in fake.alerts()]


# -- 1. the fill race ----------------------------------------------------------------------------------


def test_an_order_filling_between_the_positions_and_the_lookup_replies_is_not_bought_again(e2e):
    e2e.configure(universe=AAPL_ONLY)
    e2e.fake.llm_decide = _buy("AAPL")
    e2e.run()  # $10,000 of AAPL (10 % of equity): accepted, not filled yet
    [order] = e2e.broker_orders()
    assert order["status"] in ("new", "accepted")

    # Next cycle: the positions reply is made, then the order fills, then every order reply
    # (the open-orders list, the recent-orders list, the lookup) is made.
    filled = threading.Event()
    e2e.fake.fail("/v2/positions", "hook", times=1, after=lambda req, reply: (e2e.fake.fill(order["client_order_id"]), filled.set()))
    e2e.fake.fail("/v2/orders", "hook", method="GET", before=lambda req: filled.wait(10))
    e2e.fake.clear_requests()
    result = e2e.run()

    assert filled.is_set()
    assert e2e.posted_orders() == [], "bought AAPL again: 20 % against a 10 % limit"
    decision = e2e.decisions()["AAPL"]
    assert decision["outcome"] == "position_too_large", describe(result)
    [trade] = e2e.trades()
    assert trade["status"] == "filled"
    # The positions were read again after the fill was seen (fetch, read again, sync).
    assert e2e.fake.count("alpaca", "GET", "/v2/positions") >= 2
    [held] = e2e.rows("SELECT symbol, qty FROM positions")
    assert held["symbol"] == "AAPL" and float(held["qty"]) > 0


# -- 2. orders the database lost -------------------------------------------------------------------------


def test_orders_sent_while_the_wal_was_lost_are_adopted_and_not_sent_again(e2e):
    e2e.configure(universe=FIVE)
    e2e.env[ALERT_URLS_ENV] = e2e.fake.alert_url()
    e2e.fake.llm_decide = _buy("AAPL")
    e2e.run()  # one order, written to the database and checkpointed when the process closed it
    assert len(e2e.trades()) == 1

    # The next cycle buys the other four. After its first order the WAL file (and its index) is
    # removed; the process writes on into the removed file and is killed at its fourth order.
    e2e.fake.llm_decide = _buy(*FIVE["stocks"], *FIVE["crypto"])
    proc = None
    posted = []

    def after_order(req, reply):
        posted.append(req.json["symbol"])
        if len(posted) == 1:
            for suffix in ("-wal", "-shm"):
                os.remove(f"{e2e.db_path}{suffix}")
        elif len(posted) == 4:
            os.kill(proc.pid, signal.SIGKILL)

    e2e.fake.fail("/v2/orders", "hook", method="POST", after=after_order)
    proc = e2e.start("run")
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert len(e2e.broker_orders()) == 5
    assert len(e2e.trades()) == 1  # the broker accepted 5 orders; the database knows of 1
    e2e.fake.reset_faults()

    e2e.fake.clear_requests()
    result = e2e.run()

    assert e2e.posted_orders() == [], "sent a second order where the broker already had one"
    trades = e2e.trades()
    assert len(trades) == 5
    adopted = [t for t in trades if (t["notes"] or "").startswith("adopted by cycle")]
    assert sorted(t["symbol"] for t in adopted) == ["BTC/USD", "ETH/USD", "MSFT", "NVDA"]
    by_id = {o["client_order_id"]: o for o in e2e.broker_orders()}
    for trade in adopted:
        order = by_id[trade["client_order_id"]]
        assert (trade["status"], trade["broker_order_id"], trade["notional_usd"]) == (order["status"], order["id"], order["notional"])
    # Counted against the limits: nothing is bought again.
    outcomes = {s: d["outcome"] for s, d in e2e.decisions(e2e.last_cycle()["cycle_id"]).items()}
    assert set(outcomes.values()) <= {"position_too_large", "exposure_limit_exceeded"}, describe(result)
    assert "adopted" in result.stdout + result.stderr or "adopted" in (e2e.last_cycle()["summary"] or "")
    assert any("missing from the database" in t for t in _alert_titles(e2e.fake))
    events = [json.loads(line) for line in e2e.log_path.read_text().splitlines()]
    assert sorted(e["symbol"] for e in events if e["event"] == "order.adopted") == ["BTC/USD", "ETH/USD", "MSFT", "NVDA"]


# -- 3. the kill switch outlives its database --------------------------------------------------------------


def test_the_kill_switch_outlives_a_deleted_database_and_the_new_one_says_what_the_broker_holds(e2e):
    e2e.configure(universe=FIVE)
    e2e.env[ALERT_URLS_ENV] = e2e.fake.alert_url()
    e2e.fake.fill_orders = True
    e2e.fake.llm_decide = _buy("AAPL", "BTC/USD")
    e2e.run()
    assert len(e2e.broker_orders()) == 2
    on = e2e.cli("killswitch", "on", "--reason", "going on holiday")
    assert on.returncode == 0, describe(on)

    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(f"{e2e.db_path}{suffix}"):
            os.remove(f"{e2e.db_path}{suffix}")
    e2e.fake.llm_decide = _buy(*FIVE["stocks"], *FIVE["crypto"])
    e2e.fake.clear_requests()
    skipped = e2e.run()

    assert e2e.posted_orders() == [] and e2e.fake.count("openai") == 0
    assert e2e.last_cycle()["status"] == "skipped" and "going on holiday" in skipped.stdout
    shown = e2e.cli("killswitch")
    assert "ON" in shown.stdout and "going on holiday" in shown.stdout
    status = json.loads(e2e.cli("status", "--json").stdout)
    assert status["kill_switch"]["active"] is True and status["kill_switch"]["file"].endswith("tradecycle.db.killswitch")

    assert e2e.cli("killswitch", "off").returncode == 0
    result = e2e.run()

    # The new database learns what the broker holds: said (note, status, alert, log), and counted.
    status = json.loads(e2e.cli("status", "--json").stdout)
    said = status["broker_state_at_start"]
    assert said and "2 position(s) (AAPL, BTC/USD)" in said and "2 order(s) of this tool" in said, describe(result)
    assert "this database is new" in e2e.cli("status").stdout
    assert "tradecycle: new database, existing broker account" in _alert_titles(e2e.fake)
    bought = sorted(b["symbol"] for b in e2e.posted_orders())
    assert "AAPL" not in bought and "BTC/USD" not in bought  # already at 10 % each
    outcomes = {s: d["outcome"] for s, d in e2e.decisions(e2e.last_cycle()["cycle_id"]).items()}
    assert outcomes["AAPL"] == outcomes["BTC/USD"] == "position_too_large"
