"""The whole cycle with injected fakes and a real SQLite file: what reached the
broker, the rows written, the outcome of every symbol."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tradecycle.cycle.run import client_order_id, run_cycle
from tradecycle.infra.errors import OrderRejected, ServiceUnavailable
from tradecycle.models import Account

from .fakes import FakeBroker, FakeClock, FakeLock, FakeNews, FakeQuotes, ScriptedAnalyst, position, services, settings


def decisions(db, cycle_id=None):
    rows = db.query("SELECT symbol, action, outcome, detail, reasoning FROM ai_decisions ORDER BY id")
    return {r["symbol"]: r for r in rows}


def test_buy_reaches_the_broker_sized_by_the_tool_and_is_recorded(db, store, log):
    broker = FakeBroker(equity="100000")
    svc = services(broker=broker, analyst=ScriptedAnalyst({"AAPL": ("buy", 0.9)}))
    report = run_cycle(svc, store, settings(), log)

    assert report.status == "completed" and report.orders == 1
    [order] = broker.orders
    assert (order.symbol, order.side, order.notional_usd) == ("AAPL", "buy", Decimal("10000.00"))
    assert order.client_order_id == client_order_id(report.cycle_id, "AAPL")
    [trade] = db.query("SELECT * FROM trades")
    assert trade["status"] == "accepted" and trade["broker_order_id"] == broker.known[order.client_order_id].broker_order_id
    assert decisions(db)["AAPL"]["outcome"] == "ordered"
    [cycle] = db.query("SELECT * FROM cycles")
    assert (cycle["status"], cycle["dry_run"], cycle["finished_at"] is not None) == ("completed", 0, True)
    assert all(e.get("cycle_id") == report.cycle_id for e in log.events)


def test_dry_run_records_would_be_orders_and_sends_none(db, store, log):
    broker = FakeBroker()
    svc = services(broker=broker, analyst=ScriptedAnalyst({"AAPL": ("buy", 0.9)}))
    report = run_cycle(svc, store, settings(dry_run=True), log)

    assert broker.orders == []
    [trade] = db.query("SELECT status, dry_run, notional_usd FROM trades")
    assert trade == {"status": "dry_run", "dry_run": 1, "notional_usd": "10000.00"}
    assert decisions(db)["AAPL"]["outcome"] == "dry_run"
    assert db.one("SELECT dry_run FROM cycles")["dry_run"] == 1
    assert "would-be order" in report.summary_line()


def test_kill_switch_on_at_start_skips_the_cycle(db, store, log):
    store.set_kill_switch(True, "maintenance", FakeClock().now())
    broker = FakeBroker()
    analyst = ScriptedAnalyst({"AAPL": ("buy", 0.9)})
    report = run_cycle(services(broker=broker, analyst=analyst), store, settings(), log)

    assert report.status == "skipped" and "maintenance" in report.error
    assert broker.orders == [] and analyst.seen == []
    assert db.one("SELECT status FROM cycles")["status"] == "skipped"


def test_kill_switch_turned_on_between_orders_stops_the_rest(db, store, log):
    broker = FakeBroker(prices={})
    quotes = FakeQuotes({"AAPL": "200", "MSFT": "400", "NVDA": "100"}, FakeClock())
    # The switch is flipped (as `tradecycle killswitch on` would) right after the first order.
    sent = []

    def flip_after_first(intent):
        sent.append(intent.symbol)
        if len(sent) == 1:
            store.set_kill_switch(True, "stop now", FakeClock().now())

    broker.before_order = flip_after_first
    analyst = ScriptedAnalyst({s: ("buy", 0.9) for s in ("AAPL", "MSFT", "NVDA")})
    report = run_cycle(services(broker=broker, quotes=quotes, analyst=analyst), store, settings(stocks=("AAPL", "MSFT", "NVDA")), log)

    assert [o.symbol for o in broker.orders] == ["AAPL"]
    outcomes = {s: r["outcome"] for s, r in decisions(db).items()}
    assert outcomes == {"AAPL": "ordered", "MSFT": "kill_switch", "NVDA": "kill_switch"}
    assert report.status == "completed"


def test_another_cycle_holding_the_lock_means_no_row_and_no_order(db, store, log):
    broker = FakeBroker()
    report = run_cycle(services(broker=broker, lock=FakeLock(free=False), analyst=ScriptedAnalyst({"AAPL": ("buy", 0.9)})), store, settings(), log)
    assert report.status == "locked"
    assert db.query("SELECT * FROM cycles") == [] and broker.orders == []


@pytest.mark.parametrize(
    "quotes, clock_open, script, outcome",
    [
        ({"AAPL": ("200", "2")}, True, ("buy", 0.5), "low_confidence"),
        ({"AAPL": ("200", "2")}, True, ("hold", 0.9), "hold"),
        ({"AAPL": ("200", "2")}, True, ("sell", 0.9), "no_position"),
        ({}, True, ("buy", 0.9), "no_quote"),
        ({"AAPL": ("200", "2")}, False, ("buy", 0.9), "market_closed"),
    ],
)
def test_outcome_of_each_refusal(db, store, log, quotes, clock_open, script, outcome):
    clock = FakeClock()
    broker = FakeBroker(clock_open=clock_open)
    analyst = ScriptedAnalyst({"AAPL": script})
    run_cycle(services(broker=broker, quotes=FakeQuotes(quotes, clock), analyst=analyst, clock=clock), store, settings(), log)
    assert decisions(db)["AAPL"]["outcome"] == outcome
    assert broker.orders == []
    if outcome in ("no_quote", "market_closed"):
        assert analyst.seen == []  # no AI call is spent on a symbol that cannot trade


def test_stale_quote_never_trades(db, store, log):
    clock = FakeClock()
    broker = FakeBroker()
    quotes = FakeQuotes({"AAPL": "200"}, clock, age_seconds=600)
    run_cycle(services(broker=broker, quotes=quotes, clock=clock, analyst=ScriptedAnalyst({"AAPL": ("buy", 0.9)})), store, settings(), log)
    row = decisions(db)["AAPL"]
    assert row["outcome"] == "stale_quote" and "600s old" in row["detail"]
    assert broker.orders == []


def test_quote_source_down_uses_a_recent_stored_price(db, store, log):
    clock = FakeClock()
    broker = FakeBroker()
    analyst = ScriptedAnalyst({"AAPL": ("hold", 0.5)})
    run_cycle(services(broker=broker, quotes=FakeQuotes({"AAPL": "200"}, clock), clock=clock, analyst=analyst), store, settings(), log)
    clock.advance(60)
    down = FakeQuotes({"AAPL": ServiceUnavailable("finnhub", "HTTP 429: API limit reached")}, clock)
    analyst.script["AAPL"] = ("buy", 0.9)
    report = run_cycle(services(broker=broker, quotes=down, clock=clock, analyst=analyst), store, settings(), log)

    assert report.status == "completed"
    assert [o.symbol for o in broker.orders] == ["AAPL"]
    row = db.one("SELECT quote_source, price FROM ai_decisions ORDER BY id DESC LIMIT 1")
    assert row == {"quote_source": "cache", "price": "200"}
    assert any("using the stored price" in note for note in report.notes)


def test_broker_unreachable_aborts_before_any_decision(db, store, log):
    broker = FakeBroker()
    broker.fail_account = ServiceUnavailable("alpaca", "cannot connect (connection refused)")
    analyst = ScriptedAnalyst({"AAPL": ("buy", 0.9)})
    report = run_cycle(services(broker=broker, analyst=analyst), store, settings(), log)
    assert report.status == "aborted" and "broker unreachable" in report.error
    assert broker.orders == [] and analyst.seen == []
    assert db.one("SELECT status, error FROM cycles")["status"] == "aborted"


class BuggyBroker(FakeBroker):
    """A bug, not an outage: the clock comes back as nothing, and the cycle crashes on it."""

    def get_clock(self):
        return None


def test_three_critical_errors_in_a_row_trip_the_kill_switch(db, store, log):
    broker = BuggyBroker()
    for n in range(3):
        report = run_cycle(services(broker=broker), store, settings(), log)
        assert report.status == "aborted" and "unexpected error" in report.error
        assert store.kill_switch().active is (n == 2)
    switch = store.kill_switch()
    assert "3 critical errors in a row" in switch.reason
    assert [r["abort_kind"] for r in db.query("SELECT abort_kind FROM cycles")] == ["critical"] * 3


def test_a_broker_outage_aborts_each_cycle_but_never_latches_the_kill_switch(db, store, log):
    broker = FakeBroker()
    broker.fail_account = ServiceUnavailable("alpaca", "down")
    clock = FakeClock()
    for _ in range(5):
        report = run_cycle(services(broker=broker, clock=clock), store, settings(), log)
        assert report.status == "aborted" and "broker unreachable" in report.error
        clock.advance(60)
    assert store.kill_switch().active is False
    assert {r["abort_kind"] for r in db.query("SELECT abort_kind FROM cycles")} == {"outage"}
    from tradecycle.store import reads

    outage = reads.outage(db)
    assert (outage["cycles"], outage["since"]) == (5, "2026-11-25T15:00:00Z") and "alpaca: down" in outage["error"]
    # The broker comes back: the cycle completes and the outage is over.
    broker.fail_account = None
    assert run_cycle(services(broker=broker, clock=clock), store, settings(), log).status == "completed"
    assert reads.outage(db) is None


def test_daily_loss_trips_the_kill_switch_and_sends_nothing(db, store, log):
    broker = FakeBroker(equity="94000", last_equity="100000")
    analyst = ScriptedAnalyst({"AAPL": ("buy", 0.9)})
    run_cycle(services(broker=broker, analyst=analyst), store, settings(), log)
    switch = store.kill_switch()
    assert switch.active and switch.reason == "daily loss limit: -6.0% (limit 5%)"
    assert broker.orders == [] and analyst.seen == []
    assert decisions(db)["AAPL"]["outcome"] == "kill_switch"


def test_blocked_account_trips_the_kill_switch(db, store, log):
    broker = FakeBroker()
    broker.account = Account(Decimal(100000), Decimal(100000), Decimal(100000), Decimal(100000), trading_blocked=True)
    run_cycle(services(broker=broker, analyst=ScriptedAnalyst({"AAPL": ("buy", 0.9)})), store, settings(), log)
    assert store.kill_switch().active and broker.orders == []


def test_limits_hold_across_orders_in_one_cycle(db, store, log):
    # 48 % exposure already: new buys may add at most 2 % of equity in all.
    held = [position(s, "8000") for s in ("A", "B", "C", "D", "E", "F")]  # 6 x 8 % = 48 %
    broker = FakeBroker(equity="100000", cash="52000", positions=held)
    quotes = FakeQuotes({"AAPL": "200", "MSFT": "400"}, FakeClock())
    analyst = ScriptedAnalyst({"AAPL": ("buy", 0.9), "MSFT": ("buy", 0.9)})
    run_cycle(services(broker=broker, quotes=quotes, analyst=analyst), store, settings(stocks=("AAPL", "MSFT")), log)
    assert sum(o.notional_usd for o in broker.orders) <= Decimal(2000)
    assert [o.notional_usd for o in broker.orders] == [Decimal("2000.00")]
    assert decisions(db)["MSFT"]["outcome"] == "exposure_limit_exceeded"


def test_max_positions_reached(db, store, log):
    held = [position(f"S{i}", "1000") for i in range(15)]
    broker = FakeBroker(positions=held)
    run_cycle(services(broker=broker, analyst=ScriptedAnalyst({"AAPL": ("buy", 0.9)})), store, settings(), log)
    assert broker.orders == [] and decisions(db)["AAPL"]["outcome"] == "max_positions_reached"


def test_sell_closes_the_whole_position(db, store, log):
    broker = FakeBroker(positions=[position("AAPL", "5000", qty="25")])
    run_cycle(services(broker=broker, analyst=ScriptedAnalyst({"AAPL": ("sell", 0.8)})), store, settings(), log)
    [order] = broker.orders
    assert (order.side, order.qty, order.notional_usd) == ("sell", Decimal(25), None)


def test_rejected_order_is_recorded_and_the_cycle_goes_on(db, store, log):
    broker = FakeBroker()
    broker.reject["AAPL"] = OrderRejected("alpaca", "insufficient buying power", 403)
    quotes = FakeQuotes({"AAPL": "200", "MSFT": "400"}, FakeClock())
    analyst = ScriptedAnalyst({"AAPL": ("buy", 0.9), "MSFT": ("buy", 0.9)})
    report = run_cycle(services(broker=broker, quotes=quotes, analyst=analyst), store, settings(stocks=("AAPL", "MSFT")), log)
    assert report.status == "completed"
    trades = {t["symbol"]: t for t in db.query("SELECT symbol, status, notes FROM trades")}
    assert trades["AAPL"] == {"symbol": "AAPL", "status": "rejected", "notes": "insufficient buying power"}
    assert trades["MSFT"]["status"] == "accepted"
    assert decisions(db)["AAPL"]["outcome"] == "rejected"


def test_order_is_not_sent_when_its_trade_row_cannot_be_written(db, store, log):
    broker = FakeBroker()
    analyst = ScriptedAnalyst({"AAPL": ("buy", 0.9)})
    # The disk fails under the trade row: the INSERT fails, so the order must not leave.
    db.execute("CREATE TRIGGER no_trades BEFORE INSERT ON trades BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END")
    report = run_cycle(services(broker=broker, analyst=analyst), store, settings(), log)
    assert broker.orders == []
    assert report.status == "aborted" and "unusable" in report.error


def test_dead_cycle_is_marked_and_its_order_reconciled(db, store, log):
    clock = FakeClock()
    broker = FakeBroker()
    # A cycle that died right after its order left: row still running, trade still submitting.
    store.start_cycle("dead-1", clock.now(), False)
    store.insert_trade({"cycle_id": "dead-1", "symbol": "AAPL", "side": "buy", "status": "submitting", "client_order_id": "tc-dead-AAPL"})
    store.insert_trade({"cycle_id": "dead-1", "symbol": "MSFT", "side": "buy", "status": "submitting", "client_order_id": "tc-dead-MSFT"})
    from tradecycle.models import OrderResult

    broker.known["tc-dead-AAPL"] = OrderResult("tc-dead-AAPL", "broker-1", "filled", "AAPL", "buy")
    run_cycle(services(broker=broker, clock=clock), store, settings(), log)

    assert db.one("SELECT status FROM cycles WHERE cycle_id = 'dead-1'")["status"] == "aborted"
    trades = {t["client_order_id"]: (t["status"], t["broker_order_id"]) for t in db.query("SELECT * FROM trades")}
    assert trades == {"tc-dead-AAPL": ("filled", "broker-1"), "tc-dead-MSFT": ("not_sent", None)}
    assert broker.orders == []  # nothing re-sent


def test_news_is_fetched_once_per_refresh_window_and_failures_do_not_stop_the_cycle(db, store, log):
    clock = FakeClock()
    news = FakeNews({"AAPL": ["Apple beats estimates"]})
    analyst = ScriptedAnalyst()
    for _ in range(3):
        run_cycle(services(news=news, clock=clock, analyst=analyst), store, settings(), log)
        clock.advance(60)
    assert news.calls == ["AAPL"]
    assert [h.headline for h in analyst.seen[-1][0].headlines] == ["Apple beats estimates"]
    clock.advance(15 * 60)
    failing = FakeNews(fail=ServiceUnavailable("finnhub", "HTTP 503"))
    report = run_cycle(services(news=failing, clock=clock, analyst=analyst), store, settings(), log)
    assert report.status == "completed" and any("news for AAPL unavailable" in n for n in report.notes)


def test_time_budget_spent_means_no_new_orders(db, store, log):
    broker = FakeBroker()
    analyst = ScriptedAnalyst({"AAPL": ("buy", 0.9)})
    report = run_cycle(services(broker=broker, analyst=analyst, deadline_seconds=0), store, settings(), log)
    assert broker.orders == [] and report.status == "completed"
    assert decisions(db)["AAPL"]["outcome"] == "time_budget"


def test_keep_days_prunes_old_history_at_the_end_of_a_cycle(db, store, log):
    from datetime import timedelta

    clock = FakeClock()
    store.start_cycle("ancient", clock.now() - timedelta(days=90), False)
    db.execute("UPDATE cycles SET status = 'completed' WHERE cycle_id = 'ancient'")
    report = run_cycle(services(clock=clock), store, settings(keep_days=30), log)
    assert [r["cycle_id"] for r in db.query("SELECT cycle_id FROM cycles")] == [report.cycle_id]
    assert any(e["event"] == "history.pruned" for e in log.events)


# -- orders whose fate is not final ------------------------------------------------------


def test_open_orders_from_earlier_cycles_count_against_the_limits(db, store, log):
    """Orders accepted but not filled yet: a second and third cycle must not buy again past 10 %."""
    clock = FakeClock()
    broker = FakeBroker()  # accepts, never fills: positions stay empty
    analyst = ScriptedAnalyst({"AAPL": ("buy", 0.9)})
    for _ in range(3):
        run_cycle(services(broker=broker, analyst=analyst, clock=clock), store, settings(), log)
        clock.advance(60)
    assert [o.notional_usd for o in broker.orders] == [Decimal("10000.00")]
    outcomes = [r["outcome"] for r in db.query("SELECT outcome, repeats FROM ai_decisions ORDER BY id") for _ in range(1 + r["repeats"])]
    assert outcomes == ["ordered", "position_too_large", "position_too_large"]  # the repeat extends its row


def test_a_partly_filled_order_counts_what_it_may_still_buy(db, store, log):
    from tradecycle.models import OrderResult

    clock = FakeClock()
    broker = FakeBroker()
    analyst = ScriptedAnalyst({"AAPL": ("buy", 0.9)})
    run_cycle(services(broker=broker, analyst=analyst, clock=clock), store, settings(), log)
    [order] = broker.orders
    # 40 shares of the 50 filled: the position shows 8000, the order may still buy 2000.
    broker.known[order.client_order_id] = OrderResult(order.client_order_id, broker.known[order.client_order_id].broker_order_id,
                                                      "partially_filled", "AAPL", "buy", Decimal(40), Decimal(200))
    broker.positions["AAPL"] = position("AAPL", "8000", qty="40")
    clock.advance(60)
    run_cycle(services(broker=broker, analyst=analyst, clock=clock), store, settings(), log)
    assert len(broker.orders) == 1
    assert db.one("SELECT status, filled_qty FROM trades")["status"] == "partially_filled"


def test_an_order_the_broker_never_received_is_resent_once_only_if_the_kill_switch_allows(db, store, log):
    from tradecycle.infra.errors import OrderNotReceived

    broker = FakeBroker()
    attempts = []

    def lost_then_stop(intent):
        attempts.append(intent.client_order_id)
        if len(attempts) == 1:
            store.set_kill_switch(True, "typed while the order was lost", FakeClock().now())
            raise OrderNotReceived("alpaca", "order did not arrive (connection reset)")

    broker.before_order = lost_then_stop
    run_cycle(services(broker=broker, analyst=ScriptedAnalyst({"AAPL": ("buy", 0.9)})), store, settings(), log)
    assert len(attempts) == 1 and broker.orders == []
    trade = db.one("SELECT status, notes FROM trades")
    # Not final: the lost attempt may still land, so the next cycle looks it up first.
    assert trade["status"] == "unknown" and "typed while the order was lost" in trade["notes"]
    assert decisions(db)["AAPL"]["outcome"] == "kill_switch"


def test_a_lost_order_that_lands_late_is_found_by_the_next_cycle(db, store, log):
    from tradecycle.infra.errors import OrderNotReceived
    from tradecycle.models import OrderResult

    clock = FakeClock()
    broker = FakeBroker()

    def lost(intent):
        # The answer is lost, the broker does not show it yet, and the kill switch goes on meanwhile.
        broker.before_order = None
        store.set_kill_switch(True, "stop", clock.now())
        raise OrderNotReceived("alpaca", "order did not arrive (no answer within 10s)")

    broker.before_order = lost
    run_cycle(services(broker=broker, analyst=ScriptedAnalyst({"AAPL": ("buy", 0.9)}), clock=clock), store, settings(), log)
    assert db.one("SELECT status FROM trades")["status"] == "unknown"

    # It landed after all. A person turns the switch off; the next cycle finds the order first.
    cid = db.one("SELECT client_order_id FROM trades")["client_order_id"]
    broker.known[cid] = OrderResult(cid, "late-1", "filled", "AAPL", "buy")
    store.set_kill_switch(False, None, clock.now())
    clock.advance(60)
    run_cycle(services(broker=broker, analyst=ScriptedAnalyst(), clock=clock), store, settings(), log)
    assert db.one("SELECT status, broker_order_id FROM trades") == {"status": "filled", "broker_order_id": "late-1"}
def test_an_order_the_broker_never_received_is_resent_once_with_the_same_id(db, store, log):
    from tradecycle.infra.errors import OrderNotReceived

    broker = FakeBroker()
    attempts = []

    def lost_once(intent):
        attempts.append(intent.client_order_id)
        if len(attempts) == 1:
            raise OrderNotReceived("alpaca", "order did not arrive")

    broker.before_order = lost_once
    run_cycle(services(broker=broker, analyst=ScriptedAnalyst({"AAPL": ("buy", 0.9)})), store, settings(), log)
    assert len(attempts) == 2 and attempts[0] == attempts[1]
    assert len(broker.orders) == 1 and decisions(db)["AAPL"]["outcome"] == "ordered"


def test_an_order_of_unknown_fate_is_resolved_before_the_next_cycle_decides(db, store, log):
    from tradecycle.infra.errors import OrderUncertain

    clock = FakeClock()
    broker = FakeBroker()
    analyst = ScriptedAnalyst({"AAPL": ("buy", 0.9)})
    broker.reject["AAPL"] = OrderUncertain("alpaca", "order may have been placed (no answer within 10s)")
    run_cycle(services(broker=broker, analyst=analyst, clock=clock), store, settings(), log)
    assert db.one("SELECT status FROM trades")["status"] == "unknown"

    # It did land. The next cycle finds it first, and counts it: no second buy.
    from tradecycle.models import OrderResult

    cid = db.one("SELECT client_order_id FROM trades")["client_order_id"]
    broker.known[cid] = OrderResult(cid, "landed-1", "accepted", "AAPL", "buy")
    del broker.reject["AAPL"]
    clock.advance(60)
    run_cycle(services(broker=broker, analyst=analyst, clock=clock), store, settings(), log)
    assert db.one("SELECT status, broker_order_id FROM trades WHERE client_order_id = ?", (cid,)) == {
        "status": "accepted", "broker_order_id": "landed-1"}
    assert broker.orders == []  # never a second AAPL buy


def test_when_the_broker_cannot_say_what_became_of_an_order_nothing_is_decided(db, store, log):
    clock = FakeClock()
    broker = FakeBroker()
    store.start_cycle("dead-1", clock.now(), False)
    store.insert_trade({"cycle_id": "dead-1", "symbol": "AAPL", "side": "buy", "status": "submitting", "client_order_id": "tc-dead-AAPL"})

    def lookup_down(cid):
        raise ServiceUnavailable("alpaca", "HTTP 503")

    broker.get_order_by_client_id = lookup_down
    analyst = ScriptedAnalyst({"AAPL": ("buy", 0.9)})
    for _ in range(2):  # the dead cycle stays unresolved: every cycle aborts before deciding
        report = run_cycle(services(broker=broker, analyst=analyst, clock=clock), store, settings(), log)
        assert report.status == "aborted" and "cannot tell what became of an earlier order" in report.error
        clock.advance(60)
    assert analyst.seen == [] and broker.orders == []
    assert db.one("SELECT status FROM trades")["status"] == "submitting"
    assert db.one("SELECT status FROM cycles WHERE cycle_id = 'dead-1'")["status"] == "running"


def test_a_refused_sell_frees_no_room_for_the_buy_after_it(db, store, log):
    # 45 % invested: AAPL 5 %, the rest 40 %. Selling AAPL would make room for a 10 % MSFT buy.
    held = [position("AAPL", "5000", qty="25")] + [position(s, "10000") for s in ("A", "B", "C", "D")]
    broker = FakeBroker(equity="100000", cash="55000", positions=held)
    broker.reject["AAPL"] = OrderRejected("alpaca", "insufficient qty available", 403)
    quotes = FakeQuotes({"AAPL": "200", "MSFT": "400"}, FakeClock())
    analyst = ScriptedAnalyst({"AAPL": ("sell", 0.9), "MSFT": ("buy", 0.9)})
    run_cycle(services(broker=broker, quotes=quotes, analyst=analyst), store, settings(stocks=("AAPL", "MSFT")), log)
    assert broker.orders == []
    row = decisions(db)["MSFT"]
    assert row["outcome"] == "exposure_limit_exceeded" and "after the orders before it" in row["detail"]


def test_a_price_that_grew_stale_before_its_order_is_not_traded(db, store, log):
    clock = FakeClock()
    quotes = FakeQuotes({"AAPL": "200"}, clock, age_seconds=250)
    analyst = ScriptedAnalyst({"AAPL": ("buy", 0.9)}, on_analyse=lambda: clock.advance(100))  # a slow analysis
    broker = FakeBroker()
    run_cycle(services(broker=broker, quotes=quotes, analyst=analyst, clock=clock), store, settings(), log)
    assert broker.orders == [] and decisions(db)["AAPL"]["outcome"] == "stale_quote"


def test_a_quote_dated_in_the_future_is_not_trusted(db, store, log):
    clock = FakeClock()
    broker = FakeBroker()
    quotes = FakeQuotes({"AAPL": "200"}, clock, age_seconds=-600)  # the source's clock is ten minutes ahead
    run_cycle(services(broker=broker, quotes=quotes, clock=clock, analyst=ScriptedAnalyst({"AAPL": ("buy", 0.9)})), store, settings(), log)
    row = decisions(db)["AAPL"]
    assert row["outcome"] == "stale_quote" and "in the future" in row["detail"]
    assert broker.orders == []


def test_refused_broker_credentials_are_named_as_such(db, store, log):
    from tradecycle.infra.errors import BadResponse

    broker = FakeBroker()
    broker.fail_account = BadResponse("alpaca", "HTTP 401: unauthorized.", 401)
    report = run_cycle(services(broker=broker), store, settings(), log)
    assert report.status == "aborted" and "refused our credentials" in report.error and "APCA_API_KEY_ID" in report.error


def test_an_open_order_the_broker_no_longer_knows_stops_counting(db, store, log):
    """After a paper-account reset the broker answers 404 for an order it once took:
    it will never fill, so it must not block that symbol for ever."""
    clock = FakeClock()
    store.start_cycle("old", clock.now(), False)
    store.insert_trade({"cycle_id": "old", "symbol": "AAPL", "side": "buy", "status": "new", "notional_usd": "10000.00",
                        "price": "200", "client_order_id": "tc-old-AAPL", "broker_order_id": "gone-1"})
    db.execute("UPDATE cycles SET status = 'completed'")
    broker = FakeBroker()
    clock.advance(60)
    run_cycle(services(broker=broker, analyst=ScriptedAnalyst({"AAPL": ("buy", 0.9)}), clock=clock), store, settings(), log)
    assert db.one("SELECT status FROM trades WHERE client_order_id = 'tc-old-AAPL'")["status"] == "missing"
    assert [o.notional_usd for o in broker.orders] == [Decimal("10000.00")]


def test_a_closed_market_says_market_closed_even_for_an_old_last_trade(db, store, log):
    clock = FakeClock()
    broker = FakeBroker(clock_open=False)
    quotes = FakeQuotes({"AAPL": "200"}, clock, age_seconds=16 * 3600)  # last trade yesterday afternoon
    run_cycle(services(broker=broker, quotes=quotes, clock=clock), store, settings(), log)
    assert decisions(db)["AAPL"]["outcome"] == "market_closed"


def test_an_order_not_at_the_broker_yet_counts_as_bought_until_the_grace_passes(db, store, log):
    from tradecycle.infra.errors import OrderUncertain

    clock = FakeClock()
    broker = FakeBroker()
    analyst = ScriptedAnalyst({"AAPL": ("buy", 0.9)})
    broker.reject["AAPL"] = OrderUncertain("alpaca", "no answer within 10s; lookup failed")
    run_cycle(services(broker=broker, analyst=analyst, clock=clock), store, settings(), log)
    del broker.reject["AAPL"]

    clock.advance(30)  # the broker does not show it yet: it may still land
    run_cycle(services(broker=broker, analyst=analyst, clock=clock), store, settings(), log)
    assert db.one("SELECT status FROM trades")["status"] == "unknown"
    assert broker.orders == [] and decisions(db)["AAPL"]["outcome"] == "position_too_large"

    clock.advance(120)  # long enough: it never arrived, and the symbol may be bought again
    run_cycle(services(broker=broker, analyst=analyst, clock=clock), store, settings(), log)
    statuses = [r["status"] for r in db.query("SELECT status FROM trades ORDER BY id")]
    assert statuses == ["not_sent", "accepted"] and len(broker.orders) == 1


@pytest.mark.parametrize("resend_error", [
    ServiceUnavailable("alpaca", "cannot connect (connection refused)"),
    OrderRejected("alpaca", "insufficient buying power", 403),
], ids=["resend-unreachable", "resend-refused"])
def test_a_resend_that_fails_leaves_the_lost_first_attempt_to_be_looked_up(db, store, log, resend_error):
    from tradecycle.infra.errors import OrderNotReceived

    broker = FakeBroker()
    attempts = []

    def lost_then_fails(intent):
        attempts.append(intent.client_order_id)
        raise OrderNotReceived("alpaca", "order did not arrive") if len(attempts) == 1 else resend_error

    broker.before_order = lost_then_fails
    run_cycle(services(broker=broker, analyst=ScriptedAnalyst({"AAPL": ("buy", 0.9)})), store, settings(), log)
    assert len(attempts) == 2
    trade = db.one("SELECT status, notes FROM trades")
    assert trade["status"] == "unknown" and "resend failed" in trade["notes"]  # not final: the first may land
    assert decisions(db)["AAPL"]["outcome"] == "error"
