"""The analyst's market context through the whole cycle (injected fakes, a real
SQLite file): daily bars fetched at most once a day per asset class, the
indicators TA-Lib computes from them, what a failing bars source leaves, and
the portfolio and its room under each limit."""

from __future__ import annotations

import json

from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
import talib

from tradecycle.ai.prompt import build_messages
from tradecycle.ai.rules import RulesAnalyst
from tradecycle.cycle.run import run_cycle
from tradecycle.infra.errors import ServiceUnavailable
from tradecycle.rules.indicators import rounded
from tradecycle.models import AnalysisInput, DailyBar, Decision, ExitRules, Indicators, MarketContext, Position

from .ai_helpers import make_input
from .fakes import NOW, FakeBars, FakeBroker, FakeClock, FakeQuotes, ScriptedAnalyst, position, services, settings


def known_bars(count: int, start: float = 100.0) -> list[DailyBar]:
    """A zig-zag uptrend, one bar a day, the newest yesterday."""
    bars = []
    for i in range(count):
        close = start + i * 0.5 + (1.5 if i % 3 == 0 else -0.7)
        day = (NOW - timedelta(days=count - i)).date().isoformat()
        bars.append(DailyBar(day, Decimal(f"{close - 0.4:.2f}"), Decimal(f"{close + 1.1:.2f}"), Decimal(f"{close - 1.3:.2f}"),
                             Decimal(f"{close:.2f}"), Decimal(1_000_000 + 10_000 * (i % 5))))
    return bars


TODAY = DailyBar(NOW.date().isoformat(), Decimal("129.00"), Decimal("131.50"), Decimal("128.20"), Decimal("130.90"), Decimal(1_500_000))


def cycle_world(bars=None, clock=None, broker=None, today=TODAY, price="131.00"):
    clock = clock or FakeClock()
    quotes = FakeQuotes({"AAPL": (price, "1.2"), "BTC/USD": ("67000", "0.5")}, clock)
    quotes.today["AAPL"] = today
    analyst = ScriptedAnalyst()
    bars = bars if bars is not None else FakeBars({"AAPL": known_bars(70), "BTC/USD": known_bars(70, 60000)})
    return services(quotes=quotes, analyst=analyst, clock=clock, bars=bars, broker=broker), analyst, bars


def shown(analyst: ScriptedAnalyst, symbol: str) -> AnalysisInput:
    return next(i for i in analyst.seen[-1] if i.symbol == symbol)


def test_bars_are_fetched_once_a_day_one_call_per_asset_class(db, store, log):
    svc, analyst, bars = cycle_world()
    for _ in range(3):
        assert run_cycle(svc, store, settings(stocks=("AAPL",), crypto=("BTC/USD",)), log).status == "completed"
        svc.clock.advance(60)

    assert sorted(bars.calls) == [["AAPL"], ["BTC/USD"]]
    svc.clock.advance(24 * 3600)
    run_cycle(svc, store, settings(stocks=("AAPL",), crypto=("BTC/USD",)), log)
    assert len(bars.calls) == 4
    stored = db.query("SELECT count(*) AS n FROM daily_bars WHERE symbol = 'AAPL'")[0]["n"]
    assert stored == 60  # the last 60 days asked for


def test_the_analyst_sees_the_indicators_talib_computes_from_the_bars(db, store, log):
    svc, analyst, _ = cycle_world()
    run_cycle(svc, store, settings(), log)

    history = known_bars(70)[-60:]
    closes = np.array([float(b.close) for b in history] + [131.0])
    highs = np.array([float(b.high) for b in history] + [131.5])
    lows = np.array([float(b.low) for b in history] + [128.2])
    volumes = np.array([float(b.volume) for b in history])
    avg_volume = talib.SMA(volumes, timeperiod=20)[-1]
    context = shown(analyst, "AAPL").context
    assert context.indicators == Indicators(
        bars_count=60,
        sma_20=rounded(talib.SMA(closes, timeperiod=20)[-1]),
        sma_50=rounded(talib.SMA(closes, timeperiod=50)[-1]),
        rsi_14=rounded(talib.RSI(closes, timeperiod=14)[-1]),
        atr_14=rounded(talib.ATR(highs, lows, closes, timeperiod=14)[-1]),
        avg_volume_20=Decimal(round(avg_volume)),
        volume_today=Decimal(1_500_000),
        volume_ratio=rounded(1_500_000 / avg_volume),
        high_20=rounded(talib.MAX(np.array([float(b.high) for b in history]), timeperiod=20)[-1]),
        low_20=rounded(talib.MIN(np.array([float(b.low) for b in history]), timeperiod=20)[-1]),
        from_high_20_percent=rounded((131.0 / talib.MAX(np.array([float(b.high) for b in history]), 20)[-1] - 1) * 100),
        from_low_20_percent=rounded((131.0 / talib.MIN(np.array([float(b.low) for b in history]), 20)[-1] - 1) * 100),
    )
    assert (context.first_bar_day, context.last_bar_day) == (history[0].day, history[-1].day)
    text = build_messages([shown(analyst, "AAPL")])[1]["content"]
    assert f"RSI(14) {talib.RSI(closes, timeperiod=14)[-1]:.2f}" in text
    assert f"SMA(20) {talib.SMA(closes, timeperiod=20)[-1]:.2f}" in text
    assert f"volume ratio {1_500_000 / avg_volume:.2f}" in text
    [row] = db.query("SELECT inputs FROM ai_decisions WHERE symbol = 'AAPL'")
    assert json.loads(row["inputs"])["indicators"]["rsi_14"] == f"{talib.RSI(closes, timeperiod=14)[-1]:.2f}"


def test_a_failing_bars_source_leaves_indicators_unavailable_and_is_not_asked_again_at_once(db, store, log):
    failing = FakeBars(fail=ServiceUnavailable("fakebars", "HTTP 503"))
    svc, analyst, _ = cycle_world(bars=failing, today=None)
    report = run_cycle(svc, store, settings(), log)

    assert report.status == "completed"
    assert any("daily bars unavailable" in note for note in report.notes)
    context = shown(analyst, "AAPL").context
    assert context.indicators is None and context.unavailable_reason == "no daily bars stored yet"
    assert "Indicators: unavailable (no daily bars stored yet)" in build_messages([shown(analyst, "AAPL")])[1]["content"]

    svc.clock.advance(60)
    run_cycle(svc, store, settings(), log)
    assert len(failing.calls) == 1  # not again within 30 minutes
    svc.clock.advance(31 * 60)
    failing.fail = None
    failing.table = {"AAPL": known_bars(30)}
    run_cycle(svc, store, settings(), log)
    assert len(failing.calls) == 2
    assert shown(analyst, "AAPL").context.indicators.sma_20 is not None


def test_without_a_bars_source_the_prompt_says_why(db, store, log):
    svc, analyst, _ = cycle_world(today=None)
    svc.bars = None
    run_cycle(svc, store, settings(), log)

    assert shown(analyst, "AAPL").context.unavailable_reason == "no daily bars from this market data source"


def test_the_portfolio_and_its_room_under_each_limit(db, store, log):
    broker = FakeBroker(equity="100000", last_equity="101000", cash="60000", positions=[position("AAPL", "4000")])
    svc, analyst, _ = cycle_world(broker=broker)
    # The position's entry (400) is far above the price (131): no stop-loss here, this is about the room.
    run_cycle(svc, store, settings(exits=ExitRules(stop_loss_percent=None)), log)

    context = shown(analyst, "AAPL").context
    view = context.portfolio
    assert (view.equity, view.cash, view.exposure_usd, view.exposure_percent) == (
        Decimal("100000.00"), Decimal("60000.00"), Decimal("4000.00"), Decimal("4.00"))
    assert view.exposure_room_usd == Decimal("46000.00")  # 50% of equity - 4000
    assert (view.positions_count, view.positions_room) == (1, 14)
    assert (view.day_change_percent, view.daily_loss_room_percent) == (Decimal("-0.99"), Decimal("4.01"))
    assert context.position_room_usd == Decimal("6000.00")  # 10% of equity - 4000
    text = build_messages([shown(analyst, "AAPL")])[1]["content"]
    assert text.count("## Portfolio") == 1
    assert "Exposure 4000.00 (4.00% of equity; limit 50%, room 46000.00)" in text
    assert "Positions 1 (limit 15, room 14)" in text
    assert "Room under the position size limit for AAPL: 6000.00 USD" in text


def test_recent_prices_are_shown_with_their_times(db, store, log):
    svc, analyst, _ = cycle_world()
    run_cycle(svc, store, settings(), log)
    svc.clock.advance(60)
    run_cycle(svc, store, settings(), log)

    text = build_messages([shown(analyst, "AAPL")])[1]["content"]
    assert "Recent prices (UTC time: price), oldest first: 2026-11-25 14:59:55 131, 2026-11-25 15:00:55 131" in text


def _context(sma_20, sma_50, rsi) -> MarketContext:
    return MarketContext(Indicators(60, sma_20=Decimal(sma_20), sma_50=Decimal(sma_50), rsi_14=Decimal(rsi)))


HELD = Position("AAPL", Decimal(10), Decimal(150), Decimal(1872.1), Decimal("187.21"), Decimal(0))


@pytest.mark.parametrize(
    "situation, position, change, context, action",
    [
        ("uptrend, RSI rising, up on the day", None, "1.23", _context("180", "175", "60"), "buy"),
        ("uptrend but overbought", None, "1.23", _context("180", "175", "72"), "hold"),
        ("above the 20-day, below the 50-day", None, "1.23", _context("180", "190", "60"), "hold"),
        ("uptrend but down on the day", None, "-0.5", _context("180", "175", "60"), "hold"),
        ("held, trend broke", HELD, "0.5", _context("190", "175", "40"), "sell"),
        ("held, overbought", HELD, "0.5", _context("180", "175", "80"), "sell"),
        ("held, trend intact", HELD, "0.5", _context("180", "175", "60"), "hold"),
        ("no indicators: momentum up", None, "1.5", MarketContext(None, "no daily bars stored yet"), "buy"),
    ],
)
def test_rules_analyst_trades_on_trend_and_rsi(situation, position, change, context, action):
    item = make_input("AAPL", price="187.21", change_percent=change, position=position)
    item = AnalysisInput(**{**item.__dict__, "context": context})

    decision: Decision = RulesAnalyst().decide(item)

    assert decision.action == action, situation
    if action == "buy":
        assert decision.confidence >= 0.6  # enough to act at the default min_confidence
