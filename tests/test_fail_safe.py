"""Where the real world differs (issue 11, items 1-9): order states we never met,
sells while the price feed is down, open sells, held symbols outside the
universe, the clock re-read before a stock order, outages that are not bugs.

Each test runs real cycles against injected fakes and a real SQLite file and
asserts what reached the broker and the rows written."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from tradecycle.cycle.run import run_cycle
from tradecycle.infra.errors import ServiceUnavailable
from tradecycle.models import MarketClock, Position

from .fakes import FakeBroker, FakeClock, FakeQuotes, ScriptedAnalyst, services, settings


def outcome_rows(db) -> list[dict]:
    """One entry per cycle: a row that repeats the one before stands for each cycle it spans (store/spans.py)."""
    found = db.query("SELECT symbol, action, outcome, detail, quote_source, price, repeats FROM ai_decisions ORDER BY id")
    return [{k: v for k, v in r.items() if k != "repeats"} for r in found for _ in range(1 + r["repeats"])]


def latest(db, symbol: str) -> dict:
    return [r for r in outcome_rows(db) if r["symbol"] == symbol][-1]


def held(symbol: str, qty: str, price: str) -> Position:
    q, p = Decimal(qty), Decimal(price)
    return Position(symbol, q, p, q * p, p, Decimal(0))


# -- 1. a state we never met counts as open -----------------------------------------------------


@pytest.mark.parametrize("state", ["pending_review", "a_state_alpaca_adds_next_year"])
def test_an_order_in_an_unknown_state_still_counts_against_the_limits(db, store, log, state):
    clock = FakeClock()
    broker = FakeBroker()
    broker.order_status = state
    analyst = ScriptedAnalyst({"AAPL": ("buy", 0.9)})
    for _ in range(3):
        run_cycle(services(broker=broker, analyst=analyst, clock=clock), store, settings(), log)
        clock.advance(60)

    # One 10 % buy, never a second one while the first may still fill.
    assert [(o.symbol, o.notional_usd) for o in broker.orders] == [("AAPL", Decimal("10000.00"))]
    assert [r["outcome"] for r in outcome_rows(db)] == ["ordered", "position_too_large", "position_too_large"]
    assert db.one("SELECT status FROM trades")["status"] == state


# -- 2. a held position can be sold while its price feed is down -------------------------------


@pytest.mark.parametrize("feed", ["down", "stale"])
def test_a_held_position_is_sold_at_the_brokers_price_when_the_feed_fails(db, store, log, feed):
    clock = FakeClock()
    broker = FakeBroker(positions=[held("AAPL", "20", "190")])
    quotes = (FakeQuotes({"AAPL": ServiceUnavailable("finnhub", "down")}, clock) if feed == "down"
              else FakeQuotes({"AAPL": "200"}, clock, age_seconds=900))
    analyst = ScriptedAnalyst({"AAPL": ("sell", 0.9)})
    report = run_cycle(services(broker=broker, quotes=quotes, analyst=analyst, clock=clock), store, settings(), log)

    assert report.status == "completed"
    [order] = broker.orders
    assert (order.symbol, order.side, order.qty) == ("AAPL", "sell", Decimal("20"))
    row = latest(db, "AAPL")
    assert (row["outcome"], row["quote_source"], row["price"]) == ("ordered", "position", "190")
    # The analyst was told it may only sell or hold.
    assert analyst.seen[0][0].sell_only[0] == ("no_quote" if feed == "down" else "stale_quote")


def test_without_a_fresh_quote_a_buy_is_still_refused(db, store, log):
    clock = FakeClock()
    broker = FakeBroker(positions=[held("AAPL", "20", "190")])
    quotes = FakeQuotes({"AAPL": ServiceUnavailable("finnhub", "down")}, clock)
    run_cycle(services(broker=broker, quotes=quotes, analyst=ScriptedAnalyst({"AAPL": ("buy", 0.95)}), clock=clock),
              store, settings(), log)

    assert broker.orders == []
    row = latest(db, "AAPL")
    assert row["outcome"] == "no_quote" and "buy refused" in row["detail"]


def test_nothing_held_and_no_quote_asks_no_analyst(db, store, log):
    clock = FakeClock()
    analyst = ScriptedAnalyst({"AAPL": ("sell", 0.9)})
    quotes = FakeQuotes({"AAPL": ServiceUnavailable("finnhub", "down")}, clock)
    run_cycle(services(quotes=quotes, analyst=analyst, clock=clock), store, settings(), log)
    assert analyst.seen == [] and latest(db, "AAPL")["outcome"] == "no_quote"


# -- 3. an open sell is not sold again ------------------------------------------------------------


def test_an_accepted_but_unfilled_sell_is_not_followed_by_another(db, store, log):
    clock = FakeClock()
    broker = FakeBroker(positions=[held("AAPL", "20", "200")])
    broker.order_status = "new"  # accepted, not filled: the position is still there next minute
    analyst = ScriptedAnalyst({"AAPL": ("sell", 0.9)})
    for _ in range(3):
        run_cycle(services(broker=broker, analyst=analyst, clock=clock), store, settings(), log)
        clock.advance(60)

    assert [(o.side, o.qty) for o in broker.orders] == [("sell", Decimal("20"))]
    rows = [r for r in outcome_rows(db) if r["symbol"] == "AAPL"]
    assert [r["outcome"] for r in rows] == ["ordered", "no_position", "no_position"]
    assert "open sell" in rows[-1]["detail"]


# -- 4. held symbols outside the universe are wound down -------------------------------------------


def test_a_held_symbol_outside_the_universe_is_analysed_and_can_be_sold(db, store, log):
    clock = FakeClock()
    broker = FakeBroker(positions=[held("TSLA", "5", "300")])
    analyst = ScriptedAnalyst({"AAPL": ("hold", 0.5), "TSLA": ("sell", 0.8)})
    run_cycle(services(broker=broker, analyst=analyst, clock=clock), store, settings(), log)

    assert [i.symbol for i in analyst.seen[0]] == ["AAPL", "TSLA"]
    assert [(o.symbol, o.side, o.qty) for o in broker.orders] == [("TSLA", "sell", Decimal("5"))]
    assert latest(db, "TSLA")["outcome"] == "ordered"


def test_a_symbol_outside_the_universe_is_never_bought(db, store, log):
    broker = FakeBroker(positions=[held("TSLA", "5", "300")])
    run_cycle(services(broker=broker, analyst=ScriptedAnalyst({"TSLA": ("buy", 0.99)})), store, settings(), log)
    assert broker.orders == []
    row = latest(db, "TSLA")
    assert row["outcome"] == "not_in_universe" and "no longer in the universe" in row["detail"]


# -- 6. the clock is re-read in the per-order gate --------------------------------------------------


def test_a_stock_order_does_not_go_out_after_the_close_announced_at_fetch(db, store, log):
    clock = FakeClock()
    broker = FakeBroker()
    broker.clock = MarketClock(is_open=True, next_close=(clock.now().replace(second=30)).isoformat())
    # The LLM is slow: by the time the order would leave, the close has passed.
    analyst = ScriptedAnalyst({"AAPL": ("buy", 0.9)}, on_analyse=lambda: clock.advance(45))
    run_cycle(services(broker=broker, analyst=analyst, clock=clock), store, settings(), log)

    assert broker.orders == []
    assert latest(db, "AAPL")["outcome"] == "market_closed"


def test_without_an_announced_close_the_broker_clock_is_asked_again(db, store, log):
    broker = FakeBroker()

    def closes_meanwhile():
        broker.clock = replace(broker.clock, is_open=False)

    analyst = ScriptedAnalyst({"AAPL": ("buy", 0.9), "BTC/USD": ("buy", 0.9)}, on_analyse=closes_meanwhile)
    quotes = FakeQuotes({"AAPL": "200", "BTC/USD": "60000"}, FakeClock())
    run_cycle(services(broker=broker, quotes=quotes, analyst=analyst), store, settings(crypto=("BTC/USD",)), log)

    # Crypto trades around the clock; the stock order stays home.
    assert [o.symbol for o in broker.orders] == ["BTC/USD"]
    assert latest(db, "AAPL")["outcome"] == "market_closed"
    assert broker.clock_calls == 2  # the fetch, and once more before the stock order
