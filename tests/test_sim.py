"""The offline simulator: a market that moves with wall-clock time and a
paper broker that fills, both kept in the database."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from tradecycle.connectors.sim import SimBroker, SimMarket
from tradecycle.infra.errors import DuplicateOrder, OrderRejected
from tradecycle.models import OrderIntent
from tradecycle.store import SimLedger

from .fakes import FakeClock


@pytest.fixture
def world(db):
    clock = FakeClock()
    ledger = SimLedger(db)
    market = SimMarket(ledger, clock, seed=42)
    broker = SimBroker(ledger, market, clock, Decimal(100000))
    return clock, market, broker


def test_prices_move_between_runs_a_minute_apart_and_repeat_per_seed(db, world):
    clock, market, _ = world
    first = market.get_quotes(["AAPL", "BTC/USD"])
    clock.advance(60)
    second = market.get_quotes(["AAPL", "BTC/USD"])
    assert first["AAPL"].price != second["AAPL"].price
    assert second["AAPL"].as_of == clock.now()
    # Same seed, same clock: another database sees the same market.
    from tradecycle.store import open_database

    other = open_database(db.path.with_name("other.db"))
    twin = SimMarket(SimLedger(other), FakeClock(), seed=42)
    assert twin.get_quotes(["AAPL"])["AAPL"].price == first["AAPL"].price


def test_day_change_is_against_the_previous_close(world):
    _, market, _ = world
    quote = market.get_quotes(["AAPL"])["AAPL"]
    assert quote.change_percent == ((quote.price / quote.previous_close - 1) * 100).quantize(Decimal("0.01"))


def test_headlines_are_generated_and_dated_in_the_past(world):
    clock, market, _ = world
    items = market.get_news("AAPL", clock.now() - timedelta(hours=24))
    assert items and all(item.published_at <= clock.now() for item in items)
    assert all("AAPL" in item.headline for item in items)


def test_broker_fills_a_notional_buy_and_keeps_the_books(world):
    clock, market, broker = world
    price = market.get_quotes(["AAPL"])["AAPL"].price
    result = broker.submit_order(OrderIntent("AAPL", "buy", "cid-1", price, notional_usd=Decimal("1000.00")))
    assert result.status == "filled" and result.filled_avg_price == price
    account = broker.get_account()
    [position] = broker.get_positions()
    assert position.symbol == "AAPL" and position.qty == result.filled_qty
    assert account.cash == Decimal(100000) - (result.filled_qty * price).quantize(Decimal("0.01"))
    assert broker.get_order_by_client_id("cid-1").broker_order_id == result.broker_order_id
    assert broker.get_order_by_client_id("unknown") is None


def test_broker_refuses_what_cash_cannot_pay_and_a_reused_client_order_id(world):
    _, market, broker = world
    price = market.get_quotes(["AAPL"])["AAPL"].price
    with pytest.raises(OrderRejected, match="insufficient buying power"):
        broker.submit_order(OrderIntent("AAPL", "buy", "cid-big", price, notional_usd=Decimal("200000")))
    broker.submit_order(OrderIntent("AAPL", "buy", "cid-2", price, notional_usd=Decimal("100")))
    with pytest.raises(DuplicateOrder):
        broker.submit_order(OrderIntent("AAPL", "buy", "cid-2", price, notional_usd=Decimal("100")))


def test_sell_closes_the_position_and_returns_cash(world):
    _, market, broker = world
    price = market.get_quotes(["ETH/USD"])["ETH/USD"].price
    bought = broker.submit_order(OrderIntent("ETH/USD", "buy", "b", price, notional_usd=Decimal("1000")))
    broker.submit_order(OrderIntent("ETH/USD", "sell", "s", price, qty=bought.filled_qty))
    assert broker.get_positions() == []
    with pytest.raises(OrderRejected, match="insufficient qty"):
        broker.submit_order(OrderIntent("ETH/USD", "sell", "s2", price, qty=Decimal(1)))


def test_last_equity_is_the_equity_at_the_start_of_the_day(world):
    clock, market, broker = world
    assert broker.get_account().last_equity == Decimal(100000)
    price = market.get_quotes(["BTC/USD"])["BTC/USD"].price
    broker.submit_order(OrderIntent("BTC/USD", "buy", "b", price, notional_usd=Decimal("50000")))
    clock.advance(24 * 3600)
    account = broker.get_account()
    assert account.last_equity == account.equity  # a new day starts from today's equity


def test_reads_within_one_second_see_one_price(world):
    clock, market, _ = world
    prices = {market.get_quotes(["AAPL"])["AAPL"].price for _ in range(50)}
    clock.advance(0.5)
    prices |= {market.get_quotes(["AAPL"])["AAPL"].price for _ in range(50)}
    assert len(prices) == 1
