"""End to end, the safety rules of the contract: the real ``tradecycle`` CLI in a
subprocess against the local fake services. Kill switch, daily loss and
blocked accounts, position and exposure limits, the run lock, at-most-once
orders across timeouts and a killed process, an unusable database, and
secrets that never leave the process."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest

from .e2e_helpers import E2E, describe, e2e, fake, wait_for  # noqa: F401  (fixtures)

BUY_BOTH = {"AAPL": ("buy", 0.9, "breakout"), "BTC/USD": ("buy", 0.9, "momentum")}


def _finish(proc, timeout: float = 20):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


# -- 10: the kill switch ---------------------------------------------------------------------


def test_kill_switch_on_from_the_cli_stops_every_order_until_turned_off(e2e):
    e2e.fake.llm_decide = dict(BUY_BOTH)
    on = e2e.cli("killswitch", "on", "--reason", "x")
    assert on.returncode == 0 and "ON" in on.stdout and "x" in on.stdout, describe(on)

    result = e2e.run()
    assert e2e.fake.count("alpaca", "POST", "/v2/orders") == 0
    assert e2e.fake.count("openai") == 0  # a skipped cycle asks nobody
    assert e2e.last_cycle()["status"] == "skipped"
    assert "kill switch" in result.stdout

    off = e2e.cli("killswitch", "off")
    assert off.returncode == 0 and "off" in off.stdout, describe(off)
    e2e.run()
    assert {b["symbol"] for b in e2e.posted_orders()} == {"AAPL", "BTC/USD"}


def test_kill_switch_turned_on_while_the_analyst_thinks_stops_the_cycles_orders(e2e):
    e2e.fake.llm_decide = dict(BUY_BOTH)
    e2e.fake.fail("openai", "delay", seconds=2)
    proc = e2e.start("run")
    try:
        wait_for(lambda: e2e.fake.count("openai", "POST", "/chat/completions") >= 1, what="the analysis to start")
        started = time.monotonic()
        on = e2e.cli("killswitch", "on", "--reason", "stop now", timeout=5)
        took = time.monotonic() - started
        assert on.returncode == 0, describe(on)
        assert took < 1.5, f"killswitch on took {took:.2f}s while a cycle ran"
        assert proc.poll() is None, "the cycle should still be waiting on the analyst"
        code, out, err = _finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0, f"{code}\n{out}\n{err}"
    assert e2e.fake.count("alpaca", "POST", "/v2/orders") == 0
    outcomes = {s: d["outcome"] for s, d in e2e.decisions().items()}
    assert outcomes == {"AAPL": "kill_switch", "BTC/USD": "kill_switch"}
    assert e2e.trades() == []

    e2e.fake.reset_faults()
    assert e2e.cli("killswitch", "off").returncode == 0
    e2e.run()
    assert {b["symbol"] for b in e2e.posted_orders()} == {"AAPL", "BTC/USD"}


# -- 11: daily loss and a blocked account ---------------------------------------------------------


@pytest.mark.parametrize(
    "account, reason_words",
    [
        ({"equity": "94000", "last_equity": "100000", "cash": "94000"}, ("loss",)),
        ({"trading_blocked": True}, ("blocked",)),
    ],
    ids=["daily-loss-6pct", "trading-blocked"],
)
def test_an_account_that_must_not_trade_trips_the_kill_switch(e2e, account, reason_words):
    e2e.fake.llm_decide = dict(BUY_BOTH)
    with e2e.fake.lock:
        e2e.fake.account.update(account)
    result = e2e.run()

    # Cron mails stderr: the person learns at once why trading stopped.
    assert "kill switch turned on" in result.stderr
    assert all(word in result.stderr.lower() for word in reason_words)
    assert len(result.stdout.strip().splitlines()) == 1
    assert e2e.fake.count("alpaca", "POST", "/v2/orders") == 0
    assert e2e.trades() == []
    switch = e2e.kill_switch()
    assert switch["kill_switch_active"] == 1
    assert all(word in switch["kill_switch_reason"].lower() for word in reason_words), switch
    assert {d["outcome"] for d in e2e.decisions().values()} == {"kill_switch"}
    assert e2e.fake.count("openai") == 0

    status = e2e.cli("status", "--json")
    assert status.returncode == 0, describe(status)
    data = json.loads(status.stdout)
    assert data["kill_switch"]["active"] is True
    assert all(word in data["kill_switch"]["reason"].lower() for word in reason_words)

    # Only a person turns it off: the next cycle stays skipped.
    with e2e.fake.lock:
        e2e.fake.account.update({"equity": "100000", "last_equity": "100000", "cash": "100000", "trading_blocked": False})
    e2e.run()
    assert e2e.fake.count("alpaca", "POST", "/v2/orders") == 0
    assert e2e.last_cycle()["status"] == "skipped"


# -- 12: position count and exposure limits ------------------------------------------------------


def _hold_positions(e2e: E2E, values: list[Decimal], cash: Decimal) -> None:
    """Positions in symbols outside the universe worth ``values``; equity = cash + sum(values)."""
    fake = e2e.fake
    with fake.lock:
        for index, value in enumerate(values):
            fake.add_position(f"ZZ{index:02d}", "10", str(value / 10), str(value / 10))
        fake.account["cash"] = str(cash)
        fake._recompute_account()


def test_fifteen_open_positions_block_a_new_buy(e2e):
    _hold_positions(e2e, [Decimal(1000)] * 15, cash=Decimal(85000))
    e2e.fake.llm_decide = dict(BUY_BOTH) | {f"ZZ{i:02d}": ("hold", 0.5, "wait") for i in range(15)}
    e2e.run()

    assert e2e.fake.count("alpaca", "POST", "/v2/orders") == 0
    outcomes = {s: d["outcome"] for s, d in e2e.decisions().items()}
    assert {s: outcomes[s] for s in ("AAPL", "BTC/USD")} == {"AAPL": "max_positions_reached", "BTC/USD": "max_positions_reached"}
    # The fifteen held symbols outside the universe are analysed too (sell or hold only); the LLM held them.
    assert {outcomes[f"ZZ{i:02d}"] for i in range(15)} == {"hold"}


def test_an_order_held_for_review_still_counts_and_is_not_bought_again(e2e):
    """Alpaca's ``pending_review`` (and any state we never met) counts as open."""
    e2e.fake.new_order_status = "pending_review"
    e2e.fake.llm_decide = {"AAPL": ("buy", 0.9, "breakout")}
    e2e.configure(universe={"stocks": ["AAPL"], "crypto": []})
    for _ in range(3):
        e2e.run()

    assert e2e.fake.count("alpaca", "POST", "/v2/orders") == 1
    assert [t["status"] for t in e2e.trades()] == ["pending_review"]
    outcomes = [r["outcome"] for r in e2e.rows("SELECT outcome FROM ai_decisions ORDER BY id")]
    assert outcomes == ["ordered", "position_too_large", "position_too_large"]


def test_a_held_position_is_sold_while_the_quote_feed_is_down(e2e):
    e2e.configure(universe={"stocks": ["AAPL"], "crypto": []})
    with e2e.fake.lock:
        e2e.fake.add_position("AAPL", "12", "180", "190")
    e2e.fake.fail("finnhub", "status", status=500)
    e2e.fake.llm_decide = {"AAPL": ("sell", 0.9, "cut the loss")}
    e2e.run()

    [order] = e2e.posted_orders()
    assert (order["symbol"], order["side"], order["qty"]) == ("AAPL", "sell", "12")
    row = e2e.decisions()["AAPL"]
    assert (row["outcome"], row["quote_source"], row["price"]) == ("ordered", "position", "190")


def test_new_orders_keep_total_exposure_within_the_limit(e2e):
    e2e.configure(universe={"stocks": ["AAPL", "MSFT", "NVDA"], "crypto": ["BTC/USD", "ETH/USD"]})
    _hold_positions(e2e, [Decimal(9600)] * 5, cash=Decimal(52000))  # 48 % of 100 000
    assert Decimal(e2e.fake.account["equity"]) == Decimal(100000)
    e2e.fake.llm_decide = {s: ("buy", 0.9, "buy everything") for s in ("AAPL", "MSFT", "NVDA", "BTC/USD", "ETH/USD")}
    e2e.run()

    bought = sum(Decimal(b["notional"]) for b in e2e.posted_orders())
    assert 0 < bought <= Decimal(2000)
    assert Decimal(48000) + bought <= Decimal(100000) * Decimal("0.50")
    outcomes = [d["outcome"] for d in e2e.decisions().values()]
    assert outcomes.count("ordered") == len(e2e.posted_orders())
    assert "exposure_limit_exceeded" in outcomes


# -- 13: the run lock ---------------------------------------------------------------------------------


def test_two_runs_started_together_trade_once_and_one_reports_the_lock(e2e):
    e2e.fake.llm_decide = dict(BUY_BOTH)
    e2e.fake.fail("openai", "delay", seconds=1.5)  # keeps the first cycle inside its lock
    procs = [e2e.start("run"), e2e.start("run")]
    try:
        finished = [_finish(p) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()

    assert [code for code, _, _ in finished] == [0, 0], finished
    locked = [err for _, _, err in finished if "lock" in err]
    assert len(locked) == 1, finished
    symbols = [b["symbol"] for b in e2e.posted_orders()]
    assert sorted(symbols) == ["AAPL", "BTC/USD"]
    assert len(e2e.cycles()) == 1  # the run that found the lock never began


# -- 14, 15: an order is sent at most once ----------------------------------------------------------------


def test_an_order_answered_after_the_timeout_is_not_duplicated(e2e):
    e2e.configure(cycle={"order_timeout_seconds": 0.5})
    e2e.fake.llm_decide = dict(BUY_BOTH)
    e2e.fake.fail("/v2/orders", "late_accept", times=1, method="POST", seconds=2)
    e2e.run()
    [first_post, *_] = e2e.fake.calls("alpaca", "POST", "/v2/orders")
    assert first_post.fault == "late_accept"  # answered after the client gave up
    assert e2e.fake.count("alpaca", "GET", "/v2/orders:by_client_order_id") >= 1  # so it looked the order up
    e2e.fake.llm_decide = {"AAPL": ("hold", 0.9, "enough"), "BTC/USD": ("hold", 0.9, "enough")}
    e2e.run()  # a second cycle syncs whatever the first could not confirm

    at_broker = e2e.broker_orders()
    assert sorted(o["symbol"] for o in at_broker) == ["AAPL", "BTC/USD"]
    trades = {t["symbol"]: t for t in e2e.trades()}
    assert set(trades) == {"AAPL", "BTC/USD"}
    for order in at_broker:
        trade = trades[order["symbol"]]
        assert trade["client_order_id"] == order["client_order_id"]
        assert trade["broker_order_id"] == order["id"]
        assert trade["status"] == order["status"]


def test_a_cycle_killed_after_its_order_left_is_reconciled_by_the_next(e2e):
    e2e.configure(universe={"stocks": ["AAPL"], "crypto": []}, cycle={"order_timeout_seconds": 15})
    e2e.fake.llm_decide = {"AAPL": ("buy", 0.9, "breakout")}
    e2e.fake.fail("/v2/orders", "late_accept", times=1, method="POST", seconds=30)
    proc = e2e.start("run")
    try:
        wait_for(lambda: e2e.broker_orders(), what="the order to reach the broker")
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.communicate(timeout=5)
    [dead] = e2e.cycles()
    assert dead["status"] == "running"
    [trade] = e2e.trades()
    assert (trade["status"], trade["broker_order_id"]) == ("submitting", None)  # it died before it heard back

    e2e.fake.llm_decide = {"AAPL": ("hold", 0.9, "enough")}
    e2e.fake.clear_requests()
    result = e2e.run()

    # The dead cycle's order is looked up before the new cycle decides anything.
    paths = [r.subpath for r in e2e.fake.requests]
    lookup = paths.index("/v2/orders:by_client_order_id")
    assert e2e.fake.requests[lookup].query["client_order_id"] == trade["client_order_id"]
    assert lookup < paths.index("/chat/completions")
    [order] = e2e.broker_orders()
    [trade] = e2e.trades()
    assert trade["client_order_id"] == order["client_order_id"]
    assert trade["broker_order_id"] == order["id"]
    assert trade["status"] == order["status"]
    cycles = {c["cycle_id"]: c for c in e2e.cycles()}
    assert cycles[dead["cycle_id"]]["status"] == "aborted"
    assert [c["status"] for c in cycles.values()].count("completed") == 1, describe(result)
    assert e2e.posted_orders() == []  # the second cycle re-sent nothing


# -- 16: an unusable database -------------------------------------------------------------------------------


def test_a_corrupt_database_aborts_before_trading_and_the_kill_switch_says_it_failed(e2e):
    e2e.fake.llm_decide = dict(BUY_BOTH)
    e2e.db_path.write_bytes(b"this is not a database, just garbage bytes\x00\xff" * 200)

    result = e2e.run(expect=1)
    assert "corrupt" in result.stderr
    assert e2e.fake.requests == []  # nothing fetched, nothing asked, nothing ordered

    on = e2e.cli("killswitch", "on", "--reason", "panic")
    assert on.returncode == 1, describe(on)
    assert "could not record" in on.stderr
    assert "ON" not in on.stdout


# -- 17: secrets never leave the process ----------------------------------------------------------------------------

SECRETS = {
    "APCA_API_KEY_ID": "PKTESTKEYID987654321",
    "APCA_API_SECRET_KEY": "PKTESTSECRET123456789",
    "FINNHUB_API_KEY": "FHTESTSECRET123456789",
    "COINGECKO_API_KEY": "CGTESTSECRET123456789",
    "OPENAI_API_KEY": "sk-TESTSECRET123456789abc",
}


def test_no_secret_appears_in_output_log_or_database(e2e):
    fake = e2e.fake
    fake.alpaca_key_id, fake.alpaca_secret_key = SECRETS["APCA_API_KEY_ID"], SECRETS["APCA_API_SECRET_KEY"]
    fake.finnhub_token, fake.openai_api_key = SECRETS["FINNHUB_API_KEY"], SECRETS["OPENAI_API_KEY"]
    e2e.env = {**e2e.env, **SECRETS}
    e2e.configure(universe={"stocks": ["AAPL", "MSFT"], "crypto": ["BTC/USD"]})
    fake.llm_decide = {"AAPL": ("buy", 0.9, "breakout"), "MSFT": ("buy", 0.9, "cloud"), "BTC/USD": ("buy", 0.9, "momentum")}
    # Services that quote the credentials back in their errors (some do).
    fake.fail("/v2/orders", "status", times=1, method="POST", status=403,
              message=f"key {SECRETS['APCA_API_KEY_ID']} / {SECRETS['APCA_API_SECRET_KEY']} may not trade")
    refusals = [
        fake.fail("/finnhub/quote", "status", status=401, message=f"Invalid API key {SECRETS['FINNHUB_API_KEY']}"),
        fake.fail("openai", "status", status=401, message=f"Incorrect API key provided: {SECRETS['OPENAI_API_KEY']}"),
    ]

    outputs = [e2e.run()]
    with fake.lock:
        for fault in refusals:
            fake.faults.remove(fault)
    outputs += [e2e.run("--dry-run"), e2e.run()]
    # The echoing errors were exercised, and what they said was kept without the keys.
    assert "Incorrect API key provided" in e2e.rows("SELECT reasoning FROM ai_decisions WHERE symbol = 'BTC/USD'")[0]["reasoning"]
    assert "Invalid API key" in json.dumps(e2e.rows("SELECT summary FROM cycles"))
    rejected = [t for t in e2e.trades() if t["status"] == "rejected"]
    assert rejected and "may not trade" in rejected[0]["notes"], e2e.trades()
    assert any(t["status"] == "dry_run" for t in e2e.trades())
    assert fake.count("alpaca", "POST", "/v2/orders") >= 2
    for command in (["status"], ["status", "--json"], ["cycles"], ["cycles", "--json"], ["trades"], ["trades", "--json"],
                    ["decisions"], ["decisions", "--json"], ["explain", "last"], ["explain", "last", "--json"],
                    ["check"], ["killswitch"]):
        result = e2e.cli(*command)
        assert result.returncode == 0, describe(result)
        outputs.append(result)

    places = {f"`{' '.join(r.args[3:])}` output": (r.stdout + r.stderr).encode() for r in outputs}
    assert e2e.log_path.stat().st_size > 0
    for path in sorted(e2e.folder.iterdir()):
        if path.name.startswith("tradecycle") and path.suffix != ".toml":
            places[path.name] = path.read_bytes()
    assert "tradecycle.db" in places
    for where, data in places.items():
        for name, secret in SECRETS.items():
            assert secret.encode() not in data, f"{name} leaked into {where}"


# -- review: open orders count, a duplicate we cannot read stays pending -----------------------


def test_orders_that_have_not_filled_yet_are_not_bought_again(e2e):
    """The broker accepts but does not fill (a closed-market stock, a slow fill): three
    cycles must not stack three 10 % buys of the same symbol."""
    e2e.fake.llm_decide = {"AAPL": ("buy", 0.9, "breakout")}
    e2e.configure(universe={"stocks": ["AAPL"], "crypto": []})
    for _ in range(3):
        e2e.run()
    assert e2e.fake.count("alpaca", "POST", "/v2/orders") == 1
    outcomes = [r["outcome"] for r in e2e.rows("SELECT outcome FROM ai_decisions ORDER BY id")]
    assert outcomes == ["ordered", "position_too_large", "position_too_large"]


def test_a_duplicate_the_broker_cannot_show_stays_pending_and_is_not_bought_again(e2e):
    e2e.fake.llm_decide = {"AAPL": ("buy", 0.9, "breakout")}
    e2e.configure(universe={"stocks": ["AAPL"], "crypto": []})
    # The first answer is lost after the order landed; the lookups fail for a while.
    e2e.fake.fail("/v2/orders", "drop", times=1, accept=True, method="POST")
    e2e.fake.fail("/v2/orders:by_client_order_id", "status", times=6, status=503)  # the send's lookup and the sync's
    e2e.run()
    [trade] = e2e.trades()
    assert trade["status"] == "unknown"
    e2e.run()  # resolves it first (the lookup works again), then sees it open
    assert e2e.fake.count("alpaca", "POST", "/v2/orders") == 1
    [trade] = e2e.trades()
    assert trade["status"] == "new" and trade["broker_order_id"]


def test_status_shows_open_orders_and_counts_them_in_the_limits(e2e):
    e2e.fake.llm_decide = {"AAPL": ("buy", 0.9, "breakout")}
    e2e.configure(universe={"stocks": ["AAPL"], "crypto": []})
    e2e.run()
    data = json.loads(e2e.cli("status", "--json").stdout)
    [order] = data["open_orders"]
    assert (order["symbol"], order["side"], order["status"]) == ("AAPL", "buy", "new")
    assert data["positions"] == []
    assert data["limits"]["max_position_size_percent"]["used"] == pytest.approx(10.0, abs=0.01)
    assert "open orders" in e2e.cli("status").stdout


def test_a_broker_outage_aborts_every_cycle_never_latches_the_kill_switch_and_status_shows_it(e2e):
    e2e.fake.llm_decide = dict(BUY_BOTH)
    e2e.fake.fail("alpaca", "status", status=503)
    for _ in range(4):
        result = e2e.run(expect=1)
        assert "broker unreachable" in result.stderr + result.stdout
    assert e2e.kill_switch()["kill_switch_active"] == 0
    assert [c["abort_kind"] for c in e2e.cycles()] == ["outage"] * 4

    shown = e2e.cli("status")
    assert shown.returncode == 0 and "outage: 4 cycle(s) aborted since" in " ".join(shown.stdout.split()), describe(shown)
    data = json.loads(e2e.cli("status", "--json").stdout)
    assert data["outage"]["cycles"] == 4 and "alpaca" in data["outage"]["error"]

    # The broker is back: the next cycle trades, and the outage is over.
    e2e.fake.reset_faults()
    e2e.run()
    assert {b["symbol"] for b in e2e.posted_orders()} == {"AAPL", "BTC/USD"}
    assert json.loads(e2e.cli("status", "--json").stdout)["outage"] is None
