"""The cycle's side of the broker-held stops, against the offline simulator
(which holds stops as Alpaca does) and the in-process fake broker."""

from __future__ import annotations

from decimal import Decimal as D

from tradecycle.connectors.sim import SimBroker, SimMarket
from tradecycle.cycle.run import run_cycle
from tradecycle.infra.errors import ServiceUnavailable
from tradecycle.infra.times import iso
from tradecycle.models import ExitRules, OrderIntent
from tradecycle.store import SimLedger
from tradecycle.store.sim import SimPrice

from .fakes import FakeClock, ScriptedAnalyst, services, settings

EXITS = ExitRules(stop_loss_percent=D(8))


def sim_world(db):
    clock = FakeClock()
    ledger = SimLedger(db)
    market = SimMarket(ledger, clock, seed=42)
    broker = SimBroker(ledger, market, clock, D(100000))

    def price(value: str) -> None:  # the simulated AAPL stands at this price now
        ledger.save_price_state(SimPrice("AAPL", D(value), D(value), clock.now().date().isoformat(), iso(clock.now())))

    return clock, market, broker, price


def stop_rows(db):
    return db.query("SELECT * FROM trades WHERE order_type != 'market' ORDER BY id")


def test_with_the_simulator_a_bought_position_gets_its_stop_and_the_stops_fill_is_recorded(db, store, log):
    clock, market, broker, price = sim_world(db)
    price("200")
    analyst = ScriptedAnalyst({"AAPL": ("buy", 0.9)})
    cycle = settings(exits=EXITS, broker_held_stops=True)
    run_cycle(services(broker=broker, quotes=market, analyst=analyst, clock=clock), store, cycle, log)

    [row] = stop_rows(db)
    [position] = broker.get_positions()
    assert (row["order_type"], row["side"], D(row["quantity"]), row["stop_price"], row["status"]) == (
        "stop", "sell", position.qty, "184.00", "new")

    clock.advance(60)
    price("183")  # no cycle runs: the simulator's stop sells
    analyst.script = {"AAPL": ("hold", 0.5)}
    run_cycle(services(broker=broker, quotes=market, analyst=analyst, clock=clock), store, cycle, log)
    assert stop_rows(db)[0]["status"] == "filled" and broker.get_positions() == []
    [exit_row] = db.query("SELECT * FROM ai_decisions WHERE outcome = 'stop_loss'")
    assert (exit_row["symbol"], exit_row["action"], exit_row["model"]) == ("AAPL", "sell", "broker-stop")


def test_a_dry_run_places_no_stop(db, store, log):
    clock, market, broker, price = sim_world(db)
    price("200")
    broker.submit_order(OrderIntent("AAPL", "buy", "tc-0", D(200), qty=D(10)))
    run_cycle(services(broker=broker, quotes=market, clock=clock), store, settings(exits=EXITS, broker_held_stops=True, dry_run=True), log)
    assert stop_rows(db) == [] and broker.open_orders() == []


def test_a_sell_whose_stop_cannot_be_canceled_waits_for_the_next_cycle(db, store, log):
    clock, market, broker, price = sim_world(db)
    price("200")
    analyst = ScriptedAnalyst({"AAPL": ("buy", 0.9)})
    cycle = settings(exits=EXITS, broker_held_stops=True)
    run_cycle(services(broker=broker, quotes=market, analyst=analyst, clock=clock), store, cycle, log)
    held = broker.get_positions()[0].qty

    def broker_down(order_id):
        raise ServiceUnavailable("sim", "connection refused")

    broker.cancel_order = broker_down
    clock.advance(60)
    price("205")
    analyst.script = {"AAPL": ("sell", 0.9)}
    run_cycle(services(broker=broker, quotes=market, analyst=analyst, clock=clock), store, cycle, log)

    assert broker.get_positions()[0].qty == held  # nothing sold while the stop holds the shares
    assert db.query("SELECT COUNT(*) AS n FROM trades WHERE side = 'sell' AND order_type = 'market'")[0]["n"] == 0
    row = db.query("SELECT outcome, detail FROM ai_decisions WHERE action = 'sell' ORDER BY id DESC LIMIT 1")[0]
    assert row["outcome"] == "error" and "could not be canceled" in row["detail"]


def test_without_broker_held_stops_a_filled_buy_gets_no_stop(db, store, log):
    clock, market, broker, price = sim_world(db)
    price("200")
    analyst = ScriptedAnalyst({"AAPL": ("buy", 0.9)})
    run_cycle(services(broker=broker, quotes=market, analyst=analyst, clock=clock), store, settings(exits=EXITS), log)
    assert broker.get_positions() and stop_rows(db) == [] and broker.open_orders() == []


def test_the_stop_follows_the_position_quantity_by_replacing_it(db, store, log):
    clock, market, broker, price = sim_world(db)
    price("200")
    broker.submit_order(OrderIntent("AAPL", "buy", "tc-0", D(200), qty=D(10)))
    cycle = settings(exits=EXITS, broker_held_stops=True)
    run_cycle(services(broker=broker, quotes=market, clock=clock), store, cycle, log)
    broker.submit_order(OrderIntent("AAPL", "buy", "manual-1", D(200), qty=D(5)))  # bought by hand meanwhile
    clock.advance(60)
    price("200")
    run_cycle(services(broker=broker, quotes=market, clock=clock), store, cycle, log)

    first, second = stop_rows(db)
    assert (first["status"], first["quantity"]) == ("replaced", "10")
    assert (second["status"], second["quantity"], second["stop_price"]) == ("new", "15", "184.00")
    assert [(o.qty, o.status) for o in broker.open_orders()] == [(D(15), "new")]


def test_a_crypto_position_gets_a_stop_limit(db, store, log):
    clock, market, broker, _ = sim_world(db)
    ledger = broker.ledger
    ledger.save_price_state(SimPrice("BTC/USD", D(60000), D(60000), clock.now().date().isoformat(), iso(clock.now())))
    broker.submit_order(OrderIntent("BTC/USD", "buy", "tc-0", D(60000), qty=D("0.05")))
    run_cycle(services(broker=broker, quotes=market, clock=clock), store,
              settings(stocks=(), crypto=("BTC/USD",), exits=EXITS, broker_held_stops=True), log)

    [row] = stop_rows(db)
    assert (row["order_type"], row["quantity"], row["stop_price"], row["limit_price"], row["time_in_force"]) == (
        "stop_limit", "0.05", "55200.00", "54648.00", "gtc")
