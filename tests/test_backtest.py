"""The backtest's core on histories written by hand: point in time, the broker's
fills, equity = cash + positions at every cycle, and --resume."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

from tradecycle.backtest.broker import BacktestBroker
from tradecycle.backtest.history import Bar, Dataset, SymbolHistory
from tradecycle.backtest.pit import HistoricalClock, PointInTime
from tradecycle.backtest.runner import StopFlag
import pytest

from tradecycle.infra.errors import OrderRejected
from tradecycle.models import NewsItem, OrderIntent

from .backtest_helpers import DAY, Recording, coin_dataset, run_dataset, trending, utc

FIRST = date(2025, 1, 1)


def test_a_future_spike_and_a_later_headline_reach_neither_the_prompt_nor_the_rules_analyst(tmp_path):
    closes = trending(90)
    spike_day = 75
    closes[spike_day] = 987654.0  # a planted spike: known only once that day's bar has closed
    published = utc(FIRST + DAY * 70, 12)
    news = [NewsItem("BTC/USD", "Planted headline from the future", published, "Wire", news_id="future-1"),
            NewsItem("BTC/USD", "An old headline", utc(FIRST + DAY * 64, 9), "Wire", news_id="old-1")]
    data = coin_dataset(closes, FIRST, news)
    spike_known = data.histories["BTC/USD"].bars[spike_day].closes_at
    analyst = Recording()
    result, db = run_dataset(tmp_path, data, analyst, symbols=("BTC/USD",), start=utc(FIRST + DAY * 65),
                             end=utc(FIRST + DAY * 80))
    assert result.status == "completed"
    clock_times = [row["started_at"] for row in db.query("SELECT started_at FROM cycles ORDER BY started_at")]
    assert len(clock_times) == 15 and len(analyst.calls) == 15
    for (_, inputs, prompt), started in zip(analyst.calls, clock_times):
        [item] = inputs
        seen = [item.quote.price, item.quote.today.high, item.quote.today.close]
        if item.context and item.context.indicators:
            ind = item.context.indicators
            seen += [v for v in (ind.sma_20, ind.high_20, ind.atr_14) if v is not None]
        if started < spike_known.isoformat().replace("+00:00", "Z"):
            assert max(seen) < 1000 and "987654" not in prompt, started
        else:  # once it has closed, the spike is there: the check above could fail
            assert "987654" in prompt
        if started <= published.isoformat().replace("+00:00", "Z"):
            assert "Planted headline" not in prompt and "future-1" not in {h.news_id for h in item.headlines}, started
        elif started <= (published + DAY).isoformat().replace("+00:00", "Z"):  # the cycle's 24 hours of headlines
            assert "Planted headline" in prompt
    # Nothing the analyst was shown is dated after the cycle that showed it.
    stored = db.query("SELECT c.started_at, n.published_at FROM news n JOIN cycles c ON n.fetched_at = c.started_at")
    assert stored and all(r["published_at"] < r["started_at"] for r in stored)
    db.close()


def test_a_bar_is_known_at_its_close_not_at_the_time_it_is_stamped():
    # A daily stock bar is stamped at its open (Alpaca: midnight New York) and closes at 16:00 New York.
    opens, closes = utc(date(2024, 1, 2), 14, 30), utc(date(2024, 1, 2), 21)
    bar = Bar(opens, closes, Decimal(100), Decimal(120), Decimal(99), Decimal(118), Decimal(10))
    earlier = Bar(opens - DAY, closes - DAY, Decimal(98), Decimal(101), Decimal(97), Decimal(100), Decimal(10))
    data = Dataset("test", DAY, {"AAPL": SymbolHistory("AAPL", [earlier, bar], [earlier, bar])})
    clock = HistoricalClock(utc(date(2024, 1, 2), 20, 59))
    pit = PointInTime(data, clock, None)
    assert pit.quote("AAPL").price == Decimal(100) and [b.close for b in pit.daily_bars("AAPL", 5)] == [Decimal(100)]
    clock.set(closes)
    assert pit.quote("AAPL").price == Decimal(118) and pit.quote("AAPL").change_percent == Decimal("18.00")
    assert [b.close for b in pit.daily_bars("AAPL", 5)] == [Decimal(100), Decimal(118)]


def _broker_on(bars: list[Bar], t, slippage="10", fee="20"):
    data = Dataset("test", DAY, {"BTC/USD": SymbolHistory("BTC/USD", bars, bars)})
    clock = HistoricalClock(t)
    broker = BacktestBroker(PointInTime(data, clock, None), Decimal(10000), Decimal(slippage), Decimal(fee))
    return broker, clock


def _bar(day: int, o, h, l, c) -> Bar:
    opens = utc(FIRST + DAY * day)
    return Bar(opens, opens + DAY, *(Decimal(str(v)) for v in (o, h, l, c)), Decimal(5))


def test_a_market_order_fills_at_the_next_bars_open_with_slippage_against_it_and_the_fee_from_cash():
    bars = [_bar(0, 100, 101, 99, 100), _bar(1, 110, 130, 105, 120), _bar(2, 120, 121, 119, 120)]
    broker, clock = _broker_on(bars, utc(FIRST + DAY))  # the first bar has closed, its close (100) was seen
    result = broker.submit_order(OrderIntent("BTC/USD", "buy", "c-1", Decimal(100), notional_usd=Decimal(1000)))
    assert result.status == "new" and broker.cash == Decimal(10000)
    broker.advance()  # same moment: the next bar opens now, so the fill is known
    order = broker.get_order(result.broker_order_id)
    assert order.status == "filled" and order.filled_avg_price == Decimal("110.1100")  # 110 + 10 bps, never 100
    value = (order.filled_qty * Decimal("110.11")).quantize(Decimal("0.01"))
    assert broker.cash == Decimal(10000) - value - (value * Decimal("0.002")).quantize(Decimal("0.01"))
    clock.set(utc(FIRST + DAY * 2))
    sell = broker.submit_order(OrderIntent("BTC/USD", "sell", "c-2", Decimal(120), qty=order.filled_qty))
    broker.advance()
    assert broker.get_order(sell.broker_order_id).filled_avg_price == Decimal("119.8800")  # 120 - 10 bps
    assert broker.get_positions() == []


def test_a_stop_triggers_when_a_bar_trades_through_it_and_fills_at_the_open_after_a_gap():
    bars = [_bar(0, 100, 101, 99, 100), _bar(1, 100, 102, 96, 97), _bar(2, 97, 98, 94.5, 95), _bar(3, 90, 91, 88, 89)]
    broker, clock = _broker_on(bars, utc(FIRST + DAY), slippage="0", fee="0")
    buy = broker.submit_order(OrderIntent("BTC/USD", "buy", "b-1", Decimal(100), qty=Decimal(15)))
    broker.advance()
    assert broker.get_order(buy.broker_order_id).filled_avg_price == Decimal(100)
    stop = OrderIntent("BTC/USD", "sell", "s-1", Decimal(95), qty=Decimal(10), order_type="stop", stop_price=Decimal(95))
    placed = broker.submit_order(stop)
    assert placed.status == "new" and placed.order_type == "stop" and placed.stop_price == Decimal(95)
    # The stop holds its quantity: a sell of more than what is left is refused, as at Alpaca.
    refused = OrderIntent("BTC/USD", "sell", "m-1", Decimal(100), qty=Decimal(6))
    with pytest.raises(OrderRejected, match="insufficient qty available"):
        broker.submit_order(refused)
    clock.set(utc(FIRST + DAY * 2))  # day 1 closed: low 96, the stop at 95 holds
    broker.advance()
    assert broker.get_order(placed.broker_order_id).status == "new"
    clock.set(utc(FIRST + DAY * 3))  # day 2 closed: low 94.5 went through 95
    broker.advance()
    assert broker.get_order(placed.broker_order_id).filled_avg_price == Decimal(95)

    gap = broker.submit_order(OrderIntent("BTC/USD", "sell", "s-2", Decimal(93), qty=Decimal(5), order_type="stop",
                                          stop_price=Decimal(93)))
    clock.set(utc(FIRST + DAY * 4))  # day 3 opened at 90, under the stop at 93: filled at the open
    broker.advance()
    assert broker.get_order(gap.broker_order_id).filled_avg_price == Decimal(90)
    assert broker.get_positions() == []


def test_a_stop_limit_never_fills_under_its_limit_and_a_replaced_stop_is_a_new_order():
    bars = [_bar(0, 100, 101, 99, 100), _bar(1, 100, 101, 98, 99), _bar(2, 90, 91, 88, 89), _bar(3, 89, 93, 88, 92)]
    broker, clock = _broker_on(bars, utc(FIRST + DAY), slippage="0", fee="0")
    broker.submit_order(OrderIntent("BTC/USD", "buy", "b-1", Decimal(100), qty=Decimal(10)))
    broker.advance()
    first = broker.submit_order(OrderIntent("BTC/USD", "sell", "s-1", Decimal(97), qty=Decimal(10),
                                            order_type="stop_limit", stop_price=Decimal(97), limit_price=Decimal(96)))
    raised = broker.replace_order(first.broker_order_id, OrderIntent(
        "BTC/USD", "sell", "s-2", Decimal(95), qty=Decimal(10), order_type="stop_limit", stop_price=Decimal(95),
        limit_price=Decimal(92)))
    assert broker.get_order(first.broker_order_id).status == "replaced" and raised.broker_order_id != first.broker_order_id
    clock.set(utc(FIRST + DAY * 3))  # day 2 gapped to 90, under the limit of 92 (high 91): triggered, not filled
    broker.advance()
    assert broker.get_order(raised.broker_order_id).status == "new"
    clock.set(utc(FIRST + DAY * 4))  # day 3 traded up to 93: filled at its limit, 92
    broker.advance()
    assert broker.get_order(raised.broker_order_id).filled_avg_price == Decimal(92)


def _replay_books(db, data: Dataset, start_cash: Decimal) -> list[tuple[str, Decimal, Decimal]]:
    """(cycle time, equity recorded by the cycle, cash + positions recomputed from the fills and prices)."""
    fills = db.query("SELECT symbol, side, filled_qty, filled_avg_price, fee_usd, executed_at, created_at FROM trades"
                     " WHERE status = 'filled' ORDER BY executed_at, id")
    rows = []
    for cycle in db.query("SELECT started_at, equity FROM cycles WHERE equity IS NOT NULL ORDER BY started_at"):
        t = cycle["started_at"]
        cash, held = start_cash, {}
        # Filled by then: sent by an earlier cycle, at an open at or before this one.
        for f in (f for f in fills if f["executed_at"] <= t and f["created_at"] < t):
            value = (Decimal(f["filled_qty"]) * Decimal(f["filled_avg_price"])).quantize(Decimal("0.01"))
            fee = Decimal(f["fee_usd"])
            cash += -value - fee if f["side"] == "buy" else value - fee
            held[f["symbol"]] = held.get(f["symbol"], Decimal(0)) + (Decimal(f["filled_qty"]) * (1 if f["side"] == "buy" else -1))
        positions = Decimal(0)
        for symbol, qty in held.items():
            closes = [b for b in data.histories[symbol].bars if b.closes_at.isoformat().replace("+00:00", "Z") <= t]
            positions += (qty * closes[-1].close).quantize(Decimal("0.01"))
        rows.append((t, Decimal(cycle["equity"]), cash + positions))
    return rows


def test_equity_is_cash_plus_positions_at_every_cycle(tmp_path):
    data = coin_dataset(trending(150, step=0.6, wobble=4), FIRST)
    eth = coin_dataset(trending(150, start=50, step=-0.1, wobble=2), FIRST, symbol="ETH/USD").histories["ETH/USD"]
    data.histories["ETH/USD"] = eth
    result, db = run_dataset(tmp_path, data, Recording(), symbols=("BTC/USD", "ETH/USD"), start=utc(FIRST + DAY * 62),
                             end=utc(FIRST + DAY * 150), fee_bps="15", slippage_bps="8")
    trades = db.query("SELECT COUNT(*) AS n FROM trades WHERE status = 'filled'")[0]["n"]
    assert trades >= 4  # the books moved: buys and sells, with fees
    rows = _replay_books(db, data, Decimal(100000))
    assert len(rows) == result.cycles == 88
    for t, recorded, recomputed in rows:
        assert abs(recorded - recomputed) <= Decimal("0.02"), (t, recorded, recomputed)
    fees = db.query("SELECT SUM(CAST(fee_usd AS REAL)) AS f FROM trades WHERE status = 'filled'")[0]["f"]
    assert fees > 0 and abs(Decimal(str(fees)) - Decimal(result.results["fees_usd"])) < Decimal("0.01")
    db.close()


def test_a_run_stopped_part_way_resumes_to_the_same_end(tmp_path):
    closes = trending(140, step=0.5, wobble=3)
    start, end = utc(FIRST + DAY * 62), utc(FIRST + DAY * 140)
    whole, whole_db = run_dataset(tmp_path, coin_dataset(closes, FIRST), Recording(), symbols=("BTC/USD",), start=start,
                                  end=end, fee_bps="5", db_name="whole.db")
    stop = StopFlag()
    data = coin_dataset(closes, FIRST)
    times = data.cycle_times(start, end)

    class Asking(Recording):
        def analyse(self, inputs, timeout_seconds):
            if len(self.calls) == 29:
                stop.requested = True
            return super().analyse(inputs, timeout_seconds)

    first, db = run_dataset(tmp_path, data, Asking(), symbols=("BTC/USD",), start=start, end=end, stop=stop,
                            fee_bps="5", db_name="parts.db", times=times)
    assert first.status == "interrupted" and first.cycles == 30
    saved = db.query("SELECT cycles, books, last_cycle_at FROM backtests")[0]
    assert saved["cycles"] == 30 and saved["last_cycle_at"] == times[29].isoformat().replace("+00:00", "Z")
    db.close()

    resumed, db = run_dataset(tmp_path, coin_dataset(closes, FIRST), Recording(), symbols=("BTC/USD",), start=start,
                              end=end, fee_bps="5", db_name="parts.db", books=json.loads(saved["books"]), done=30)
    assert resumed.status == "completed" and resumed.cycles == whole.cycles
    assert resumed.results["final_equity"] == whole.results["final_equity"]
    assert resumed.results["trades"] == whole.results["trades"]
    assert db.query("SELECT COUNT(*) AS n FROM cycles")[0]["n"] == whole.cycles
    db.close()
    whole_db.close()


def test_the_closing_figures_name_return_buy_and_hold_drawdown_and_trades(tmp_path):
    closes = trending(120, step=0.5, wobble=3)
    result, db = run_dataset(tmp_path, coin_dataset(closes, FIRST), Recording(), symbols=("BTC/USD",),
                             start=utc(FIRST + DAY * 62), end=utc(FIRST + DAY * 120))
    figures = result.results
    first_price, last_price = Decimal(str(closes[61])), Decimal(str(closes[118]))
    assert figures["buy_and_hold_percent"] == float(((last_price / first_price - 1) * 100).quantize(Decimal("0.01")))
    equity = [Decimal(r["equity"]) for r in db.query("SELECT equity FROM cycles ORDER BY started_at")]
    peak, worst = equity[0], Decimal(0)
    for e in equity:
        peak = max(peak, e)
        worst = max(worst, (peak - e) / peak * 100)
    assert figures["max_drawdown_percent"] == float(worst.quantize(Decimal("0.01")))
    assert figures["final_equity"] == f"{equity[-1]:.2f}"
    assert figures["trades"] == db.query("SELECT COUNT(*) AS n FROM trades WHERE status = 'filled'")[0]["n"] > 0
    db.close()


def test_every_cycle_records_its_time_in_history_not_the_wall_clock(tmp_path):
    result, db = run_dataset(tmp_path, coin_dataset(trending(80), FIRST), Recording(), symbols=("BTC/USD",),
                             start=utc(FIRST + DAY * 70), end=utc(FIRST + DAY * 75))
    started = [r["started_at"] for r in db.query("SELECT started_at FROM cycles ORDER BY started_at")]
    assert started == [(utc(FIRST + DAY * k)).isoformat().replace("+00:00", "Z") for k in range(70, 75)]
    assert result.cycles == 5
    db.close()



def test_a_daily_loss_trips_the_kill_switch_and_the_backtest_turns_it_off_the_next_day(tmp_path):
    closes = trending(120, step=0.5, wobble=3)
    risk = {"max_position_size_percent": 60, "max_total_exposure_percent": 60, "stop_loss_percent": 0}
    window = {"symbols": ("BTC/USD",), "start": utc(FIRST + DAY * 62), "end": utc(FIRST + DAY * 120), "risk": risk}
    calm, db = run_dataset(tmp_path, coin_dataset(closes, FIRST), Recording(), db_name="calm.db", **window)
    first_fill = db.query("SELECT executed_at FROM trades WHERE status = 'filled' ORDER BY executed_at LIMIT 1")[0]
    db.close()
    crash = (date.fromisoformat(first_fill["executed_at"][:10]) - FIRST).days  # the day the first buy was filled
    crashed = closes[:crash] + [round(c * 0.7, 2) for c in closes[crash:]]  # that day closes 30 % lower
    result, db = run_dataset(tmp_path, coin_dataset(crashed, FIRST), Recording(), **window)
    assert calm.results["kill_switch_trips"] == 0
    changes = db.query("SELECT changed_at, active, changed_by, reason FROM kill_switch_changes ORDER BY id")
    assert [(c["active"], c["changed_by"]) for c in changes] == [(1, "tool"), (0, "tool")]
    assert "daily loss" in changes[0]["reason"] and "next day's first cycle" in changes[1]["reason"]
    tripped, cleared = changes[0]["changed_at"], changes[1]["changed_at"]
    assert cleared[:10] > tripped[:10]  # the next day
    after = db.query("SELECT status FROM cycles WHERE started_at >= ? ORDER BY started_at", (cleared,))
    assert after and all(r["status"] == "completed" for r in after)
    assert result.results["kill_switch_trips"] == 1
    db.close()


def test_without_a_terminal_progress_is_a_line_every_250_cycles_and_at_the_end():
    from tradecycle.render.backtest import log_lines

    lines: list[str] = []
    step = log_lines(600, 0, lines.append)
    for n in range(1, 601):
        step(n, utc(FIRST) + DAY * n, Decimal("100123.456"))
    assert [line.split(" cycles")[0] for line in lines] == ["backtest: 250/600", "backtest: 500/600", "backtest: 600/600"]
    assert lines[0] == "backtest: 250/600 cycles (41%), at 2025-09-08 00:00Z, equity 100,123.46"
