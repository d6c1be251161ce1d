"""The offline simulator: a market that moves with wall-clock time and a
paper broker that fills, both kept in the database."""

from __future__ import annotations

from datetime import date, timedelta
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


def test_broker_lists_the_orders_submitted_after_a_time_newest_first(world):
    clock, market, broker = world
    price = market.get_quotes(["AAPL"])["AAPL"].price
    broker.submit_order(OrderIntent("AAPL", "buy", "cid-old", price, notional_usd=Decimal("100")))
    clock.advance(60)
    start = clock.now()
    clock.advance(60)
    broker.submit_order(OrderIntent("AAPL", "buy", "cid-1", price, notional_usd=Decimal("200")))
    broker.submit_order(OrderIntent("AAPL", "sell", "cid-2", price, qty=Decimal("0.1")))
    listed = broker.recent_orders(start)
    assert [(o.client_order_id, o.side, o.status, o.notional) for o in listed] == [
        ("cid-2", "sell", "filled", None), ("cid-1", "buy", "filled", Decimal("200"))]


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


# -- calibration (issue 23) ----------------------------------------------------------

RANGES = {"AAPL": (1.5, 2.5), "MSFT": (1.5, 2.5), "NVDA": (1.5, 2.5), "BTC/USD": (3.0, 4.0), "ETH/USD": (3.0, 4.0)}


def _stdev_percent(closes: list[Decimal]) -> float:
    import math
    import statistics

    return 100 * statistics.pstdev([math.log(b / a) for a, b in zip(closes, closes[1:])])


def test_a_day_moves_like_a_real_market_in_the_minute_prices(db):
    """Stocks 1.5-2.5 % a day, crypto 3-4 %: the spread of close-to-close moves over
    200 days of prices read every 3 hours (the walk's scale does not depend on how often it is read)."""
    from datetime import UTC, datetime

    from tradecycle.connectors import sim_calendar as cal

    clock = FakeClock(datetime(2026, 1, 5, 0, 0, tzinfo=UTC))
    market = SimMarket(SimLedger(db), clock, seed=42)
    closes: dict[str, dict[str, Decimal]] = {s: {} for s in RANGES}
    for _ in range(200 * 8):
        for symbol, quote in market.get_quotes(list(RANGES)).items():
            day = clock.now().date() if "/" in symbol else cal.last_session(clock.now())
            closes[symbol][day.isoformat()] = quote.price  # the last price of each day is its close
        clock.advance(3 * 3600)
    for symbol, (low, high) in RANGES.items():
        moved = _stdev_percent(list(closes[symbol].values())[:-1])
        assert low <= moved <= high, f"{symbol}: {moved:.2f}% a day"
    sessions = list(closes["AAPL"])
    assert all(date.fromisoformat(d).weekday() < 5 for d in sessions) and "2026-01-19" not in sessions  # MLK day


def test_daily_bars_have_the_same_scale_and_only_sessions_for_stocks(world):
    clock, market, _ = world
    for symbol, (low, high) in RANGES.items():
        bars = market.daily_history(symbol, 250, clock.now())
        moved = _stdev_percent([b.close for b in bars])
        assert low <= moved <= high, f"{symbol}: {moved:.2f}% a day"
        weekdays = {date.fromisoformat(b.day).weekday() for b in bars}
        assert weekdays == (set(range(7)) if "/" in symbol else set(range(5))), symbol


def test_a_stock_does_not_move_outside_a_session_and_is_dated_at_the_close(db):
    from datetime import UTC, datetime

    clock = FakeClock(datetime(2026, 2, 27, 20, 59, tzinfo=UTC))  # Friday, a minute before the close
    market = SimMarket(SimLedger(db), clock, seed=42)
    broker = SimBroker(SimLedger(db), market, clock, Decimal(100000))
    friday = market.quote("AAPL", clock.now())
    clock.advance(3600 * 40)  # Sunday
    sunday = market.quote("AAPL", clock.now())
    assert sunday.price == market.quote("AAPL", clock.now()).price
    clock.advance(60)
    assert market.quote("AAPL", clock.now()).price == sunday.price  # nothing moves on a Sunday
    assert sunday.as_of == datetime(2026, 2, 27, 21, 0, tzinfo=UTC)  # the last trade: Friday's close
    assert not broker.get_clock().is_open and broker.get_clock().next_open == "2026-03-02T14:30:00Z"
    assert market.quote("BTC/USD", clock.now()).as_of == clock.now()  # crypto trades on
    assert friday.symbol == "AAPL"


def test_a_new_days_bars_are_the_same_whether_the_quotes_were_read_first_or_not(tmp_path):
    """The cycle fetches bars and quotes at once (in threads): the bars of a day's first
    cycle must not depend on which of the two reads the market first."""
    from datetime import UTC, datetime

    from tradecycle.store import open_database

    def bars_of_the_next_day(quotes_first: bool) -> list:
        clock = FakeClock(datetime(2026, 11, 2, 22, 0, tzinfo=UTC))
        market = SimMarket(SimLedger(open_database(tmp_path / f"{quotes_first}.db")), clock, seed=42)
        market.get_quotes(["BTC/USD", "AAPL"])
        clock.advance(4 * 3600)  # past midnight: a new day for the coin, a new session ahead for the stock
        if quotes_first:
            market.get_quotes(["BTC/USD", "AAPL"])
        return [market.daily_history(s, 60, clock.now()) for s in ("BTC/USD", "AAPL")]

    assert bars_of_the_next_day(quotes_first=True) == bars_of_the_next_day(quotes_first=False)
