"""Risk rules as a table of situations, and hypothesis properties: no approved
order ever breaks a limit."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradecycle.models import Account, Decision, RiskLimits, to_cents
from tradecycle.rules.risk import (
    Holding,
    Portfolio,
    account_problem,
    check_order,
    daily_loss_breach,
    limit_usd,
    plan_order,
    OpenOrder,
    with_open_orders,
)

LIMITS = RiskLimits(Decimal(10), Decimal(50), 15, Decimal(5), 0.6)
D = Decimal


def buy(symbol="AAPL", confidence=0.9):
    return Decision(symbol, "buy", confidence, "", "test")


def book(equity="100000", cash=None, **values):
    holdings = {s: Holding(D(v) / 100, D(v)) for s, v in values.items()}
    return Portfolio(D(equity), D(cash if cash is not None else equity), holdings)


@pytest.mark.parametrize(
    "situation, decision, portfolio, allowed, reason, notional",
    [
        ("fresh account buys 10 %", buy(), book(), True, "approved", "10000.00"),
        ("holds 6 % already: tops up to 10 %", buy(), book(AAPL="6000"), True, "approved", "4000.00"),
        ("already at 10 %", buy(), book(AAPL="10000"), False, "position_too_large", None),
        ("48 % exposure: only 2 % room", buy(), book(A="9000", B="9000", C="10000", D="10000", E="10000"), True, "approved", "2000.00"),
        ("50 % exposure: none", buy(), book(A="10000", B="10000", C="10000", D="10000", E="10000"), False, "exposure_limit_exceeded", None),
        ("15 positions open", buy(), book(**{f"S{i}": "100" for i in range(15)}), False, "max_positions_reached", None),
        ("15 open but adding to one held", buy("S1"), book(**{f"S{i}": "100" for i in range(15)}), True, "approved", "9900.00"),
        ("cash is the binding limit", buy(), book(cash="2500.50"), True, "approved", "2500.50"),
        ("no cash", buy(), book(cash="0.40"), False, "below_minimum", None),
        ("low confidence", buy(confidence=0.59), book(), False, "low_confidence", None),
        ("hold", Decision("AAPL", "hold", 0.9, "", "t"), book(), False, "hold", None),
        ("sell with nothing held", Decision("AAPL", "sell", 0.9, "", "t"), book(), False, "no_position", None),
        ("sell what is held", Decision("AAPL", "sell", 0.9, "", "t"), book(AAPL="5000"), True, "approved", None),
        # risk.min_order_percent (1 % of equity): no top-up every minute in tiny orders.
        ("at 9.5 %: a 500 USD top-up is below 1 % of equity", buy(), book(AAPL="9500"), False, "below_minimum", None),
        ("at 9 %: a 1,000 USD top-up is exactly 1 %", buy(), book(AAPL="9000"), True, "approved", "1000.00"),
        # Exposure is gross: a short (opened by a person) adds its absolute value, never frees room.
        ("a 30,000 USD short and a 15,000 USD long: 5,000 USD room", buy(), book(A="-30000", B="15000"), True, "approved", "5000.00"),
        # Adding to a position already held is not a new position, even over the count.
        ("16 open (over the limit) but adding to one held", buy("S1"), book(**{f"S{i}": "100" for i in range(16)}), True, "approved", "9900.00"),
    ],
)
def test_plan_order(situation, decision, portfolio, allowed, reason, notional):
    verdict = plan_order(decision, D("200"), portfolio, LIMITS, client_order_id="cid")
    assert (verdict.allowed, verdict.reason) == (allowed, reason), situation
    if notional is not None:
        assert verdict.intent.notional_usd == D(notional)
    if verdict.allowed and decision.action == "sell":
        assert verdict.intent.qty == portfolio.holdings["AAPL"].qty and verdict.intent.notional_usd is None


@pytest.mark.parametrize(
    "equity, last_equity, tripped",
    [("94000", "100000", "daily loss limit: -6.0% (limit 5%)"), ("95000", "100000", "daily loss limit: -5.0% (limit 5%)"),
     ("95001", "100000", None), ("120000", "100000", None), ("100", "0", None)],
)
def test_daily_loss_limit(equity, last_equity, tripped):
    account = Account(D(equity), D(last_equity), D(equity), D(equity))
    assert daily_loss_breach(account, LIMITS) == tripped


@pytest.mark.parametrize(
    "status, trading_blocked, account_blocked, problem",
    [("ACTIVE", False, False, None), ("ACTIVE", True, False, "trading blocked by the broker"),
     ("ACTIVE", False, True, "account blocked by the broker"), ("ACCOUNT_UPDATED", False, False, "account status is ACCOUNT_UPDATED, not ACTIVE")],
)
def test_account_problem(status, trading_blocked, account_blocked, problem):
    account = Account(D(1), D(1), D(1), D(1), status, trading_blocked, account_blocked)
    assert account_problem(account) == problem


money = st.decimals(min_value=0, max_value=10_000_000, places=2, allow_nan=False, allow_infinity=False)
percent = st.decimals(min_value=D("0.01"), max_value=100, places=2)


@st.composite
def situations(draw):
    limits = RiskLimits(draw(percent), draw(percent), draw(st.integers(1, 20)), D(5), draw(st.floats(0, 1)))
    equity = draw(st.decimals(min_value=1, max_value=10_000_000, places=2))
    symbols = draw(st.lists(st.sampled_from(["AAPL", "MSFT", "NVDA", "BTC/USD", "ETH/USD", "TSLA", "META"]), unique=True, max_size=7))
    holdings = {s: Holding(draw(st.decimals(min_value=D("0.001"), max_value=1000, places=3)), draw(money)) for s in symbols}
    portfolio = Portfolio(equity, draw(money), holdings)
    # Orders sent by earlier cycles that may still fill count against every limit.
    open_orders = draw(st.lists(st.one_of(
        st.builds(OpenOrder, st.sampled_from(["AAPL", "MSFT", "GOOG"]), st.just("buy"), usd=money),
        st.builds(OpenOrder, st.sampled_from(["AAPL", "MSFT", "NVDA"]), st.just("sell"), qty=st.decimals(min_value=0, max_value=1000, places=3)),
    ), max_size=4))
    portfolio = with_open_orders(portfolio, open_orders)
    decisions = draw(st.lists(st.tuples(st.sampled_from(["AAPL", "MSFT", "NVDA", "BTC/USD", "GOOG"]), st.sampled_from(["buy", "sell", "hold"]),
                                        st.floats(0, 1)), max_size=6))
    prices = draw(st.lists(st.decimals(min_value=D("0.01"), max_value=100_000, places=2), min_size=6, max_size=6))
    return limits, portfolio, decisions, prices


@settings(max_examples=300, deadline=None)
@given(situations())
def test_no_sequence_of_decisions_yields_an_order_beyond_a_limit(case):
    limits, portfolio, decisions, prices = case
    start = portfolio
    for (symbol, action, confidence), price in zip(decisions, prices):
        verdict = plan_order(Decision(symbol, action, confidence, "", "t"), price, portfolio, limits, client_order_id="c")
        if not verdict.allowed:
            continue
        intent = verdict.intent
        assert check_order(intent, portfolio, limits) is None
        assert confidence >= limits.min_confidence
        after = portfolio.after(intent)
        if intent.side == "buy":
            assert intent.notional_usd <= portfolio.cash
            assert intent.notional_usd >= max(D(1), limit_usd(portfolio.equity, limits.min_order_percent) - D("0.01"))
            assert after.value_of(symbol) <= limit_usd(portfolio.equity, limits.max_position_size_percent)
            assert after.exposure <= limit_usd(start.equity, limits.max_total_exposure_percent)
            assert len(after.holdings) <= max(limits.max_positions_count, len(start.holdings))
        else:
            # Never sells what is only on order, nor what an open sell already covers.
            assert 0 < intent.qty <= portfolio.holdings[symbol].qty - portfolio.holdings[symbol].open_sell_qty
        portfolio = after


def test_open_buys_use_up_room_but_can_never_be_sold():
    portfolio = with_open_orders(book(), [OpenOrder("AAPL", "buy", usd=D("6000"))])
    verdict = plan_order(buy(), D("200"), portfolio, LIMITS, client_order_id="c")
    assert verdict.intent.notional_usd == D("4000.00")
    assert plan_order(Decision("AAPL", "sell", 0.9, "", "t"), D("200"), portfolio, LIMITS, client_order_id="c").reason == "no_position"


@pytest.mark.parametrize(
    "open_sell_qty, allowed, qty",
    [("0", True, "50"), ("20", True, "30"), ("50", False, None), ("80", False, None)],
)
def test_an_open_sell_is_not_sold_again(open_sell_qty, allowed, qty):
    portfolio = with_open_orders(book(AAPL="5000"), [OpenOrder("AAPL", "sell", qty=D(open_sell_qty))])
    verdict = plan_order(Decision("AAPL", "sell", 0.9, "", "t"), D("100"), portfolio, LIMITS, client_order_id="c")
    assert verdict.allowed is allowed
    if allowed:
        assert verdict.intent.qty == D(qty)
    else:
        assert verdict.reason == "no_position" and "open sell" in verdict.detail
    # Until it fills, an open sell frees no room: exposure is still the whole position.
    assert portfolio.exposure == D("5000")


# -- volatility sizing (issue 23) ----------------------------------------------------

VOLATILITY = RiskLimits(D(10), D(50), 15, D(5), 0.6, sizing="volatility", risk_per_trade_percent=D("0.25"))


@pytest.mark.parametrize("situation, price, atr, confidence, limits, notional, said", [
    # 0.25 % of 100,000 = 250 USD per ATR of 4 -> 62.5 shares at 100 = 6,250 USD
    ("one ATR costs 0.25 % of equity", "100", "4", 0.9, VOLATILITY, "6250.00", "250.00 USD per ATR(14) 4 -> 62.5000 x 100 = 6250.00 USD"),
    ("a wilder stock gets less", "100", "8", 0.9, VOLATILITY, "3125.00", "31.2500 x 100"),
    ("a calm one is capped by the position limit", "100", "1", 0.9, VOLATILITY, "10000.00", "capped by risk.max_position_size_percent"),
    ("scaled by confidence: half at min_confidence", "100", "4", 0.6,
     RiskLimits(D(10), D(50), 15, D(5), 0.6, sizing="volatility", risk_per_trade_percent=D("0.25"), scale_by_confidence=True),
     "3125.00", "x confidence scale 0.50"),
    ("scaled by confidence: all of it at 1", "100", "4", 1.0,
     RiskLimits(D(10), D(50), 15, D(5), 0.6, sizing="volatility", risk_per_trade_percent=D("0.25"), scale_by_confidence=True),
     "6250.00", "x confidence scale 1.00"),
    ("no daily bars: fixed sizing, said so", "100", None, 0.9, VOLATILITY, "10000.00", "no daily bars): fixed sizing"),
    ("fixed sizing ignores the ATR", "100", "4", 0.9, LIMITS, "10000.00", None),
])
def test_volatility_sizing(situation, price, atr, confidence, limits, notional, said):
    verdict = plan_order(buy(confidence=confidence), D(price), book(), limits, client_order_id="c",
                         atr=D(atr) if atr else None)
    assert verdict.allowed, situation
    assert verdict.intent.notional_usd == D(notional), situation
    if said:
        assert said in verdict.detail, verdict.detail
    else:
        assert "sizing" not in verdict.detail


def test_volatility_sizing_below_the_minimum_order_is_not_sent():
    verdict = plan_order(buy(), D(100), book(), VOLATILITY, client_order_id="c", atr=D(40))  # 625 USD < 1 % of equity
    assert (verdict.allowed, verdict.reason) == (False, "below_minimum")
    assert "volatility sizing" in verdict.detail and "risk.min_order_percent" in verdict.detail


@settings(max_examples=200, deadline=None)
@given(
    atr=st.decimals(min_value="0.01", max_value="500", places=2),
    price=st.decimals(min_value="1", max_value="5000", places=2),
    percent=st.decimals(min_value="0.01", max_value="5", places=2),
    held=st.integers(min_value=0, max_value=12000),
)
def test_volatility_sizing_never_breaks_a_limit(atr, price, percent, held):
    limits = RiskLimits(D(10), D(50), 15, D(5), 0.6, sizing="volatility", risk_per_trade_percent=percent)
    portfolio = book(AAPL=str(held)) if held else book()
    verdict = plan_order(buy(), price, portfolio, limits, client_order_id="c", atr=atr)
    if verdict.allowed:
        assert check_order(verdict.intent, portfolio, limits) is None
        assert verdict.intent.notional_usd <= to_cents(D(100000) * percent / 100 * price / atr) + D("0.01")
