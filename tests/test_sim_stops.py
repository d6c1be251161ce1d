"""The simulated broker's sell stops behave like Alpaca's: they hold the
quantity, fill when the simulated price reaches them, are replaced and canceled."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from tradecycle.connectors.sim import SimBroker, SimMarket
from tradecycle.infra.errors import OrderRejected
from tradecycle.infra.times import iso
from tradecycle.models import OrderIntent
from tradecycle.store import SimLedger
from tradecycle.store.sim import SimPrice

from .fakes import FakeClock


@pytest.fixture
def world(db):
    clock = FakeClock()
    ledger = SimLedger(db)
    broker = SimBroker(ledger, SimMarket(ledger, clock, seed=42), clock, D(100000))

    def price(symbol: str, value: str) -> None:  # the simulated market stands at this price now
        ledger.save_price_state(SimPrice(symbol, D(value), D(value), clock.now().date().isoformat(), iso(clock.now())))

    price("AAPL", "200")
    broker.submit_order(OrderIntent("AAPL", "buy", "tc-1", D(200), qty=D(10)))
    return broker, ledger, price


def stop(cid: str = "ts-1", **overrides) -> OrderIntent:
    values = dict(qty=D(10), order_type="stop", stop_price=D("184.00"), time_in_force="gtc")
    return OrderIntent("AAPL", "sell", cid, D("184.00"), **(values | overrides))


def test_a_stop_waits_holds_the_shares_and_fills_when_the_price_reaches_it(world):
    broker, ledger, price = world
    placed = broker.submit_order(stop())
    assert (placed.status, placed.order_type, placed.stop_price) == ("new", "stop", D("184.00"))
    assert [o.client_order_id for o in broker.open_orders()] == ["ts-1"]
    with pytest.raises(OrderRejected, match="insufficient qty available") as refused:
        broker.submit_order(OrderIntent("AAPL", "sell", "tc-2", D(200), qty=D(10)))
    assert refused.value.status_code == 403

    price("AAPL", "183.50")
    assert broker.get_positions() == []
    filled = broker.get_order(placed.broker_order_id)
    assert (filled.status, filled.filled_qty, filled.filled_avg_price) == ("filled", D(10), D("183.50"))
    assert D(ledger.account()["cash"]) == D(100000) - D(2000) + D(1835)


def test_a_stop_is_replaced_by_a_new_order_and_canceled(world):
    broker, _, _ = world
    old = broker.submit_order(stop())
    new = broker.replace_order(old.broker_order_id, stop("ts-2", stop_price=D("190.00")))
    assert new.broker_order_id != old.broker_order_id and new.stop_price == D("190.00")
    assert broker.get_order(old.broker_order_id).status == "replaced"
    with pytest.raises(OrderRejected) as late:
        broker.replace_order(old.broker_order_id, stop("ts-3"))
    assert late.value.status_code == 422

    broker.cancel_order(new.broker_order_id)
    assert broker.get_order(new.broker_order_id).status == "canceled" and broker.open_orders() == []
    assert broker.submit_order(OrderIntent("AAPL", "sell", "tc-2", D(200), qty=D(10))).status == "filled"


@pytest.mark.parametrize("intent, message", [
    (stop(stop_price=D("201")), "base price"),
    (stop(qty=D("2.5")), "DAY"),
    (stop(qty=D(11)), "insufficient qty available"),
])
def test_stops_the_simulator_refuses_as_alpaca_does(world, intent, message):
    broker, _, _ = world
    with pytest.raises(OrderRejected, match=message):
        broker.submit_order(intent)
