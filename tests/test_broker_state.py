"""What the broker holds that the database does not say: orders of ours the
database lost (adopted), a new database meeting an account that traded
before, and positions whose quantity, price and value contradict each other.
Injected fakes and a real SQLite file; end to end in test_e2e_lost_state.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from tradecycle.commands.alerts import NEW_DATABASE, ORDERS_ADOPTED, cycle_alerts
from tradecycle.cycle.adopt import CLOCK_MARGIN, LOOKBACK, recent_since, sent_by_cycle
from tradecycle.cycle.orders import client_order_id
from tradecycle.cycle.run import run_cycle
from tradecycle.infra.errors import ServiceUnavailable
from tradecycle.models import ExitRules, OrderResult, Position
from tradecycle.rules.risk import position_problem
from tradecycle.store import Database, migrate, open_database, schema

from .fakes import NOW, FakeBroker, FakeClock, FakeQuotes, ScriptedAnalyst, position, services, settings

BOTH = ("AAPL", "MSFT")


def _outcomes(db, cycle_id):
    rows = db.query("SELECT symbol, outcome, detail FROM ai_decisions WHERE cycle_id = ? ORDER BY id", (cycle_id,))
    return {r["symbol"]: (r["outcome"], r["detail"]) for r in rows}


def _two_open_buys(store, log, clock, broker):
    """A first cycle buys AAPL and MSFT; the broker accepts both, fills neither."""
    quotes = FakeQuotes({"AAPL": "200", "MSFT": "400"}, clock)
    analyst = ScriptedAnalyst({s: ("buy", 0.9) for s in BOTH})
    first = run_cycle(services(broker=broker, quotes=quotes, analyst=analyst, clock=clock), store, settings(stocks=BOTH), log)
    assert len(broker.orders) == 2
    return first, quotes, analyst


# -- 2. orders the database lost ----------------------------------------------------------------


def test_orders_the_database_lost_are_adopted_counted_and_never_sent_twice(db, store, log):
    clock, broker = FakeClock(), FakeBroker()
    first, quotes, analyst = _two_open_buys(store, log, clock, broker)
    db.execute("DELETE FROM trades")  # the rows are lost (a restored backup, a removed WAL)
    clock.advance(60)
    report = run_cycle(services(broker=broker, quotes=quotes, analyst=analyst, clock=clock), store, settings(stocks=BOTH), log)

    assert len(broker.orders) == 2, "bought again what the broker already holds open"
    assert {s: o for s, (o, _) in _outcomes(db, report.cycle_id).items()} == {"AAPL": "position_too_large", "MSFT": "position_too_large"}
    rows = db.query("SELECT cycle_id, symbol, status, notional_usd, client_order_id, broker_order_id, notes FROM trades ORDER BY symbol")
    assert [(r["cycle_id"], r["symbol"], r["status"], r["notional_usd"]) for r in rows] == [
        (first.cycle_id, "AAPL", "accepted", "10000.00"), (first.cycle_id, "MSFT", "accepted", "10000.00")]
    assert all(r["notes"].startswith(f"adopted by cycle {report.cycle_id}") for r in rows)
    assert [r["client_order_id"] for r in rows] == [client_order_id(first.cycle_id, s) for s in BOTH]
    assert len(report.adopted) == 2 and any("adopted" in n for n in report.notes)
    assert sorted(e["symbol"] for e in log.events if e["event"] == "order.adopted") == ["AAPL", "MSFT"]
    [alert] = [a for a in cycle_alerts(report, {}) if a.kind == ORDERS_ADOPTED]
    assert "AAPL" in alert.body and "MSFT" in alert.body

    clock.advance(60)  # adopted once: the next cycle finds nothing new
    again = run_cycle(services(broker=broker, quotes=quotes, analyst=analyst, clock=clock), store, settings(stocks=BOTH), log)
    assert again.adopted == () and len(broker.orders) == 2
    assert db.one("SELECT COUNT(*) AS n FROM trades")["n"] == 2


def test_an_adopted_order_that_filled_counts_through_the_positions_read_again(db, store, log):
    clock, broker = FakeClock(), FakeBroker()
    _, quotes, analyst = _two_open_buys(store, log, clock, broker)
    for cid, order in list(broker.known.items()):  # both filled; the positions reply the fetch gets predates it
        broker.known[cid] = replace(order, status="filled", filled_qty=Decimal(50 if order.symbol == "AAPL" else 25),
                                    filled_avg_price=Decimal(200 if order.symbol == "AAPL" else 400))
    db.execute("DELETE FROM trades")
    calls = []
    filled = {"AAPL": position("AAPL", "10000", "50"), "MSFT": position("MSFT", "10000", "25")}
    broker.get_positions = lambda: calls.append(1) or (list(filled.values()) if len(calls) > 1 else [])
    clock.advance(60)
    report = run_cycle(services(broker=broker, quotes=quotes, analyst=analyst, clock=clock), store, settings(stocks=BOTH), log)

    assert len(broker.orders) == 2
    assert set(report.outcomes.values()) == {"position_too_large"}
    assert {r["status"] for r in db.query("SELECT status FROM trades")} == {"filled"}


def test_orders_of_anyone_else_are_left_alone(db, store, log):
    broker = FakeBroker()
    broker.known["manual-order-1"] = OrderResult("manual-order-1", "b-1", "accepted", "AAPL", "buy", notional=Decimal(5000))
    broker.known["tc-not-one-of-ours"] = OrderResult("tc-not-one-of-ours", "b-2", "filled", "AAPL", "buy")
    report = run_cycle(services(broker=broker), store, settings(), log)
    assert report.adopted == ()
    assert db.query("SELECT * FROM trades") == []


def test_a_listing_that_fails_means_no_buy_but_a_sell_still_goes(db, store, log):
    broker = FakeBroker(positions=[position("MSFT", "4000")])
    broker.fail_listing = ServiceUnavailable("fake", "GET /v2/orders timed out")
    quotes = FakeQuotes({"AAPL": "200", "MSFT": "400"}, FakeClock())
    analyst = ScriptedAnalyst({"AAPL": ("buy", 0.9), "MSFT": ("sell", 0.9)})
    report = run_cycle(services(broker=broker, quotes=quotes, analyst=analyst), store, settings(stocks=BOTH), log)

    assert [(o.symbol, o.side) for o in broker.orders] == [("MSFT", "sell")]
    outcome, detail = _outcomes(db, report.cycle_id)["AAPL"]
    assert outcome == "unverified" and "GET /v2/orders timed out" in detail
    assert any(n.startswith("no buy this cycle") for n in report.notes)


@pytest.mark.parametrize(
    "newest_trade, keep_days, expected",
    [
        (None, 0, NOW - LOOKBACK),  # no trades row at all: the last 24 hours
        (NOW - timedelta(hours=1), 90, NOW - timedelta(hours=1) - CLOCK_MARGIN),  # a little before the newest row
        (NOW - timedelta(days=3), 0, NOW - LOOKBACK),  # never further back than 24 hours
        (None, 1, NOW - timedelta(days=1) + CLOCK_MARGIN),  # nor where keep_days prunes: a pruned row is not lost
    ],
    ids=["no-trades", "recent-trade", "old-trade", "pruned"],
)
def test_the_listing_starts_a_little_before_the_newest_trades_row(newest_trade, keep_days, expected):
    assert recent_since(newest_trade, NOW, keep_days) == expected


def test_the_broker_is_asked_for_orders_since_the_newest_trades_row(db, store, log):
    clock, broker = FakeClock(), FakeBroker()
    _two_open_buys(store, log, clock, broker)
    clock.advance(3600)
    run_cycle(services(broker=broker, clock=clock), store, settings(), log)
    assert broker.listings == [NOW - LOOKBACK, NOW - CLOCK_MARGIN]


@pytest.mark.parametrize(
    "client_order_id, cycle_id",
    [
        ("tc-20261125T1500Zab12-AAPL", "2026-11-25T15:00Z-ab12"),
        ("tk-20261125T1500Zab12-BTCUSD", "2026-11-25T15:00Z-ab12"),  # the kill switch's --flatten sells
        ("tc-dead-AAPL", None),
        ("my-own-order", None),
        ("", None),
    ],
)
def test_orders_of_this_tool_are_known_by_their_client_order_id(client_order_id, cycle_id):
    assert sent_by_cycle(client_order_id) == cycle_id


# -- 3. a new database meeting an account that traded before ---------------------------------------


def test_a_new_database_meeting_positions_and_orders_of_ours_says_so_once(db, store, log):
    broker = FakeBroker(positions=[position("AAPL", "5000")])
    broker.known["tc-20261125T1400Zab12-MSFT"] = OrderResult("tc-20261125T1400Zab12-MSFT", "b-9", "accepted", "MSFT", "buy",
                                                            notional=Decimal(3000))
    report = run_cycle(services(broker=broker), store, settings(), log)

    assert report.inherited and "1 position(s) (AAPL)" in report.inherited and "1 order(s) of this tool" in report.inherited
    row = db.one("SELECT broker_first_seen_at, broker_state_at_start FROM agent_status")
    assert row["broker_first_seen_at"] and row["broker_state_at_start"] == report.inherited
    assert any(e["event"] == "database.new_with_broker_state" for e in log.events)
    assert [a.kind for a in cycle_alerts(report, {}) if a.kind == NEW_DATABASE] == [NEW_DATABASE]
    assert report.adopted  # the order of ours is adopted too

    later = run_cycle(services(broker=broker, clock=FakeClock(NOW + timedelta(minutes=1))), store, settings(), log)
    assert later.inherited is None


def test_a_new_database_on_an_empty_account_says_nothing(db, store, log):
    report = run_cycle(services(broker=FakeBroker()), store, settings(), log)
    assert report.inherited is None
    row = db.one("SELECT broker_first_seen_at, broker_state_at_start FROM agent_status")
    assert row["broker_first_seen_at"] is not None and row["broker_state_at_start"] is None


def test_a_database_that_had_cycles_before_the_upgrade_is_not_new(tmp_path, log):
    old = Database(tmp_path / "old.db")
    migrate(old, up_to=schema.MIGRATIONS.index(schema._m_broker_state_at_start))  # the version before it
    old.execute("INSERT INTO cycles (cycle_id, started_at, status, dry_run) VALUES ('c1', '2026-11-01T10:00:00Z', 'completed', 0)")
    old.close()
    db = open_database(tmp_path / "old.db")
    from tradecycle.store import Store

    report = run_cycle(services(broker=FakeBroker(positions=[position("AAPL", "5000")])), Store(db), settings(), log)
    assert report.inherited is None
    assert db.one("SELECT broker_first_seen_at FROM agent_status")["broker_first_seen_at"] == "2026-11-01T10:00:00Z"
    db.close()


# -- 4. positions that contradict themselves -------------------------------------------------------


def _pos(qty, price, value, symbol="AAPL"):
    return Position(symbol, Decimal(qty), Decimal(price), Decimal(value), Decimal(price), Decimal(0))


@pytest.mark.parametrize(
    "pos, words",
    [
        (_pos("10", "200", "2000"), None),
        (_pos("10", "200", "2000.40"), None),  # rounding, a price that moved a little
        (_pos("0.012345678", "67000", "827.16"), None),  # crypto: 9 decimals
        (_pos("-5", "200", "-1000"), None),  # a short (a person opened it): negative value
        (_pos("10", "200", "-2000"), "long position (qty 10) with market_value -2000"),
        (_pos("-5", "200", "1000"), "short position (qty -5) with market_value 1000"),
        (_pos("10", "200", "200"), "qty 10 x current_price 200 = 2000.00, but market_value is 200"),
        (_pos("10", "0", "2000"), "current_price 0 is not positive"),
        (_pos("0", "200", "2000"), "quantity 0"),
        (_pos("10", "200", "0"), "market_value 0"),
    ],
)
def test_a_position_whose_quantity_price_and_value_disagree_is_named(pos, words):
    problem = position_problem(pos)
    assert (problem is None) if words is None else (words in problem and problem.startswith("AAPL: "))


def test_positions_that_contradict_themselves_stop_every_buy_but_not_a_sell(db, store, log):
    # A long AAPL position whose market value came back negative: its exposure cannot be trusted.
    broker = FakeBroker(positions=[_pos("10", "200", "-2000"), position("NVDA", "1000")])
    quotes = FakeQuotes({"AAPL": "200", "MSFT": "400", "NVDA": "100"}, FakeClock())
    analyst = ScriptedAnalyst({"AAPL": ("buy", 0.9), "MSFT": ("buy", 0.9), "NVDA": ("sell", 0.9)})
    report = run_cycle(services(broker=broker, quotes=quotes, analyst=analyst), store,
                       settings(stocks=("AAPL", "MSFT", "NVDA")), log)

    assert [(o.symbol, o.side) for o in broker.orders] == [("NVDA", "sell")]
    outcomes = _outcomes(db, report.cycle_id)
    for symbol in ("AAPL", "MSFT"):
        assert outcomes[symbol][0] == "bad_response"
        assert "AAPL: a long position (qty 10) with market_value -2000" in outcomes[symbol][1]
    assert outcomes["NVDA"][0] == "ordered"
    # The analyst was told it may only sell or hold.
    assert all(item.sell_only and item.sell_only[0] == "bad_response" for item in analyst.seen[0])


def test_a_protective_exit_still_sells_a_position_that_contradicts_itself(db, store, log):
    broker = FakeBroker(positions=[Position("AAPL", Decimal(10), Decimal(200), Decimal(-1500), Decimal(150), Decimal(-500))])
    quotes = FakeQuotes({"AAPL": "150"}, FakeClock())
    report = run_cycle(services(broker=broker, quotes=quotes), store, settings(exits=ExitRules(stop_loss_percent=Decimal(8))), log)
    assert [(o.symbol, o.side, o.qty) for o in broker.orders] == [("AAPL", "sell", Decimal(10))]
    assert report.outcomes == {"AAPL": "stop_loss"}
