"""End to end against the fake Alpaca: protective exits and the kill switch's
clean-up, through the real CLI."""

from __future__ import annotations

import json

from .e2e_helpers import describe, e2e, fake  # noqa: F401  (fixtures)


def test_a_stop_loss_sells_though_the_llm_says_buy_and_fires_once(e2e):
    e2e.configure(universe={"stocks": ["AAPL"], "crypto": []})
    e2e.fake.set_price("AAPL", "182")
    with e2e.fake.lock:
        e2e.fake.add_position("AAPL", "10", "200", "182")
    e2e.fake.llm_decide = {"AAPL": ("buy", 0.99, "buy the dip")}
    e2e.run()
    e2e.run()  # the sell is accepted but not filled yet: it is not sent again

    [order] = e2e.posted_orders()
    assert (order["symbol"], order["side"], order["qty"]) == ("AAPL", "sell", "10")
    outcomes = [r["outcome"] for r in e2e.rows("SELECT outcome FROM ai_decisions ORDER BY id")]
    assert outcomes == ["stop_loss", "no_position"]
    assert e2e.fake.count("openai") == 0  # the LLM is not asked about a position the tool is closing

    data = json.loads(e2e.cli("status", "--json").stdout)
    [position] = data["positions"]
    assert position["stop_loss_price"] == "184.00" and position["stop_loss_distance_percent"] == 1.1


def test_killswitch_flatten_cancels_sells_everything_and_the_next_cycle_sends_nothing(e2e):
    e2e.configure(universe={"stocks": ["AAPL"], "crypto": ["BTC/USD"]})
    with e2e.fake.lock:
        e2e.fake.add_position("AAPL", "10", "180", "190")
    e2e.fake.llm_decide = {"AAPL": ("hold", 0.5, "wait"), "BTC/USD": ("buy", 0.9, "momentum")}
    e2e.run()  # buys BTC; the fake leaves the order open (not filled)
    [buy] = e2e.posted_orders()
    assert buy["symbol"] == "BTC/USD"

    on = e2e.cli("killswitch", "on", "--flatten", "--reason", "going on holiday")
    assert on.returncode == 0 and "sells every position" in on.stdout, describe(on)
    e2e.run()
    deletes = e2e.fake.calls("alpaca", "DELETE")
    assert len(deletes) == 1  # the open BTC buy
    sells = [o for o in e2e.posted_orders() if o["side"] == "sell"]
    assert [(o["symbol"], o["qty"]) for o in sells] == [("AAPL", "10")]
    assert e2e.decisions()["AAPL"]["outcome"] == "flatten"

    e2e.fake.clear_requests()
    e2e.run()
    assert e2e.fake.calls("alpaca", "POST") == [] and e2e.fake.calls("alpaca", "DELETE") == []
    assert e2e.last_cycle()["status"] == "skipped"


def test_killswitch_on_cancels_open_buys_and_sells_nothing(e2e):
    e2e.configure(universe={"stocks": ["AAPL"], "crypto": ["BTC/USD"]})
    with e2e.fake.lock:
        e2e.fake.add_position("AAPL", "10", "180", "190")
    e2e.fake.llm_decide = {"AAPL": ("hold", 0.5, "wait"), "BTC/USD": ("buy", 0.9, "momentum")}
    e2e.run()
    assert e2e.cli("killswitch", "on").returncode == 0
    e2e.fake.clear_requests()
    e2e.run()
    e2e.run()
    assert len(e2e.fake.calls("alpaca", "DELETE")) == 1
    assert e2e.fake.calls("alpaca", "POST") == []
    assert [o["status"] for o in e2e.broker_orders()] == ["canceled"]
