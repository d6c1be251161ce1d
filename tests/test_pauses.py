"""No whipsaw through the cycle (issue 23): after a stop-out the symbol is
not bought back within the cooldown (and the analyst is not asked); three
stop-outs pause every buy, with one log event and one alert; sells go on.
Real cycles against injected fakes and a real SQLite file."""

from __future__ import annotations

from decimal import Decimal

from tradecycle.commands.alerts import STOP_GUARD, cycle_alerts
from tradecycle.cycle.run import run_cycle
from tradecycle.models import ExitRules
from tradecycle.rules.protections import Protections

from .fakes import FakeClock, FakeQuotes, ScriptedAnalyst, services, settings
from .test_exits import FillingBroker, held

D = Decimal
STOP_8 = ExitRules(D(8))
RULES = Protections(reentry_cooldown_minutes=30, stop_loss_guard_count=3, stop_loss_guard_minutes=60)


def outcomes(db, symbol: str) -> list[str]:
    """One outcome per cycle (a repeated row stands for every cycle it spans)."""
    found = db.query("SELECT outcome, repeats FROM ai_decisions WHERE symbol = ? AND role = 'main' ORDER BY id", (symbol,))
    return [r["outcome"] for r in found for _ in range(1 + r["repeats"])]


def test_no_buy_back_within_the_cooldown_and_no_analyst_call_for_it(db, store, log):
    clock = FakeClock()
    broker = FillingBroker(positions=[held("AAPL", "10", "200", "182")])
    quotes = FakeQuotes({"AAPL": "182"}, clock)
    analyst = ScriptedAnalyst({"AAPL": ("buy", 0.95)})  # the signal that bought it is still there
    for _ in range(31):
        run_cycle(services(broker=broker, quotes=quotes, analyst=analyst, clock=clock), store,
                  settings(exits=STOP_8, protections=RULES), log)
        clock.advance(60)

    # The stop at minute 0, then 30 minutes without a buy, then the buy.
    assert [(o.side, o.notional_usd is not None) for o in broker.orders] == [("sell", False), ("buy", True)]
    assert outcomes(db, "AAPL") == ["stop_loss"] + ["cooldown"] * 29 + ["ordered"]
    assert len(analyst.seen) == 1  # asked only once the cooldown was over
    [row] = db.query("SELECT detail, repeats FROM ai_decisions WHERE outcome = 'cooldown'")
    assert row["repeats"] == 28  # one row for the whole cooldown
    assert "no buy of AAPL until" in row["detail"] and "risk.reentry_cooldown_minutes = 30" in row["detail"]


def test_a_held_symbol_in_its_cooldown_may_still_be_sold(db, store, log):
    clock = FakeClock()
    broker = FillingBroker(positions=[held("AAPL", "10", "200", "182")])
    quotes = FakeQuotes({"AAPL": "182", "MSFT": "400"}, clock)
    run_cycle(services(broker=broker, quotes=quotes, clock=clock), store, settings(exits=STOP_8, protections=RULES), log)
    clock.advance(60)
    broker.positions["AAPL"] = held("AAPL", "5", "182", "182")  # bought back by hand
    analyst = ScriptedAnalyst({"AAPL": ("sell", 0.9)})
    run_cycle(services(broker=broker, quotes=quotes, analyst=analyst, clock=clock), store,
              settings(exits=STOP_8, protections=RULES), log)
    assert [o.side for o in broker.orders] == ["sell", "sell"]
    assert analyst.seen[0][0].sell_only[0] == "cooldown"  # told it may only sell or hold
    assert outcomes(db, "AAPL") == ["stop_loss", "ordered"]


def test_three_stop_outs_pause_every_buy_with_one_event_and_one_alert(db, store, log):
    clock = FakeClock()
    symbols = ("AAPL", "MSFT", "NVDA", "GOOGL")
    broker = FillingBroker(positions=[held(s, "10", "200", "200") for s in symbols[:3]])
    quotes = FakeQuotes({s: "200" for s in symbols}, clock)
    analyst = ScriptedAnalyst({"GOOGL": ("buy", 0.95)})
    rules = settings(stocks=symbols, exits=STOP_8, protections=RULES)
    reports = []
    for minute in range(63):
        if minute < 3:  # one stop-out a minute
            quotes.table[symbols[minute]] = "180"
            broker.mark(symbols[minute], "180")
        if minute == 1:
            analyst.script["GOOGL"] = ("hold", 0.5)  # GOOGL bought at minute 0, then held
        reports.append(run_cycle(services(broker=broker, quotes=quotes, analyst=analyst, clock=clock), store, rules, log))
        clock.advance(60)
        if minute == 2:
            broker.positions.pop("GOOGL", None)  # sold by hand: GOOGL may be bought again
            analyst.script["GOOGL"] = ("buy", 0.95)

    sells = [o.symbol for o in broker.orders if o.side == "sell"]
    buys = [o.symbol for o in broker.orders if o.side == "buy"]
    assert sells == ["AAPL", "MSFT", "NVDA"]
    assert buys == ["GOOGL", "GOOGL"]  # before the third stop-out, and once the 60-minute pause is over
    googl = outcomes(db, "GOOGL")
    assert googl[3:62] == ["stop_guard"] * 59 and googl[62] == "ordered"
    events = [e for e in log.events if e["event"] == "risk.stop_guard"]
    assert len(events) == 1 and "3 stop-outs within 60 minutes" in events[0]["message"]
    tripped = [r for r in reports if r.stop_guard is not None]
    assert [r.cycle_id for r in tripped] == [reports[2].cycle_id]
    alerts = [a for r in reports for a in cycle_alerts(r, {}) if a.kind == STOP_GUARD]
    assert len(alerts) == 1 and "every buy paused until" in alerts[0].body


def test_protections_set_to_zero_let_the_buy_back_through(db, store, log):
    clock = FakeClock()
    broker = FillingBroker(positions=[held("AAPL", "10", "200", "182")])
    quotes = FakeQuotes({"AAPL": "182"}, clock)
    off = Protections(reentry_cooldown_minutes=0, stop_loss_guard_count=0)
    for _ in range(2):
        run_cycle(services(broker=broker, quotes=quotes, analyst=ScriptedAnalyst({"AAPL": ("buy", 0.95)}), clock=clock),
                  store, settings(exits=STOP_8, protections=off), log)
        clock.advance(60)
    assert [o.side for o in broker.orders] == ["sell", "buy"]


def test_a_stop_the_broker_filled_while_no_cycle_ran_starts_the_cooldown(db, store, log):
    from .test_cycle_stops import sim_world

    clock, market, broker, price = sim_world(db)
    price("200")
    analyst = ScriptedAnalyst({"AAPL": ("buy", 0.9)})
    rules = settings(exits=STOP_8, broker_held_stops=True, protections=RULES)
    run_cycle(services(broker=broker, quotes=market, analyst=analyst, clock=clock), store, rules, log)  # buys, places its stop
    clock.advance(60)
    price("183")  # no cycle runs: the broker's stop sells
    run_cycle(services(broker=broker, quotes=market, analyst=analyst, clock=clock), store, rules, log)

    [exit_row] = db.query("SELECT model FROM ai_decisions WHERE outcome = 'stop_loss'")
    assert exit_row["model"] == "broker-stop"
    assert outcomes(db, "AAPL") == ["ordered", "stop_loss", "cooldown"]  # the buy signal is still there: not sent
    buys = db.query("SELECT COUNT(*) AS n FROM trades WHERE side = 'buy'")[0]["n"]
    assert buys == 1 and len(analyst.seen) == 1  # the analyst was asked once, for the first buy
