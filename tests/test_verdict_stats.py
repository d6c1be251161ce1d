"""The statistics of the verdict against figures worked out here by hand: the
binomial tails with math.comb, the sample size from the normal formula with
the z values of a table, the random-entry distribution by enumerating every
way the trades can fall, the bootstrap interval against the normal interval
of an independent series, the exposure-matched path step by step."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tradecycle.rules import baselines, significance


def upper_tail(hits: int, n: int, p: float) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(hits, n + 1))


@pytest.mark.parametrize("hits, n, rate", [(14, 20, 0.5), (14, 20, 0.6), (5, 37, 0.5), (30, 37, 0.55), (0, 3, 0.5)])
def test_the_hit_rate_p_value_is_the_binomial_upper_tail(hits, n, rate):
    assert significance.binomial_p_value(hits, n, rate) == pytest.approx(upper_tail(hits, n, rate), rel=1e-9)


def test_no_decisions_no_p_value():
    assert significance.binomial_p_value(0, 0, 0.5) is None


def test_the_base_rate_is_each_symbols_share_of_moves_in_the_direction_bet():
    points = [{"symbol": "A", "price": 10, "later": later} for later in (11, 12, 9, 10.5)] + \
             [{"symbol": "B", "price": 10, "later": later} for later in (9, 9, 10)]
    rates = significance.base_rates(points)
    assert rates == {"A": (0.75, 0.25), "B": (0.0, 2 / 3)}
    # Two buys of A (0.75 each) and one sell of B (2/3): the coin the analyst must beat.
    decisions = [{"symbol": "A", "action": "buy"}, {"symbol": "A", "action": "buy"}, {"symbol": "B", "action": "sell"}]
    assert significance.null_hit_rate(decisions, rates) == pytest.approx((0.75 + 0.75 + 2 / 3) / 3)


@pytest.mark.parametrize("null, true", [(0.5, 0.55), (0.5, 0.6), (0.52, 0.57)])
def test_decisions_needed_follows_the_normal_sample_size_formula(null, true):
    z_95, z_80 = 1.6448536, 0.8416212  # one-sided 5 % and 80 % power, from a table
    by_hand = ((z_95 * math.sqrt(null * (1 - null)) + z_80 * math.sqrt(true * (1 - true))) / (true - null)) ** 2
    assert significance.decisions_needed(null, true) == math.ceil(by_hand)
    assert significance.decisions_needed(0.5, 0.55) == 617


def test_nothing_to_detect_when_the_target_is_not_above_chance():
    assert significance.decisions_needed(0.5, 0.5) is None
    assert significance.detection_target(0.45, 0.5) == pytest.approx(0.55)
    assert significance.detection_target(0.6, 0.5) == pytest.approx(0.6)


def test_the_bootstrap_interval_of_an_independent_series_matches_the_normal_interval():
    series = np.random.default_rng(7).normal(0.02, 0.5, 300)
    low, high = significance.sum_interval(series)
    half_width = 1.959964 * series.std(ddof=1) * math.sqrt(len(series))
    assert (low + high) / 2 == pytest.approx(series.sum(), abs=0.15 * half_width)
    assert (high - low) / 2 == pytest.approx(half_width, rel=0.2)


def test_a_constant_excess_has_an_interval_of_one_point():
    assert significance.sum_interval(np.full(12, 0.25)) == [3.0, 3.0]
    assert significance.sum_interval(np.ones(1)) is None


def test_period_returns_chain_to_the_whole_return():
    values = np.linspace(1.0, 1.3, 1001)
    returns = significance.period_returns(values, periods=40)
    assert len(returns) == 40
    assert np.prod(1 + returns) == pytest.approx(1.3)


def test_spa_tells_a_clear_edge_from_noise():
    rng = np.random.default_rng(3)
    noise = {"a": rng.normal(0, 1, 200), "b": rng.normal(0, 1, 200)}
    assert significance.spa_p_value(noise) > 0.1
    assert significance.spa_p_value(noise | {"good": rng.normal(-0.5, 1, 200)}) < 0.05


def test_exposure_matched_holds_the_universe_at_the_strategys_own_share():
    # Two symbols; the strategy bought 10 A at 100 out of 10,000 at the first cycle.
    a, b = [100, 110, 99, 108.9], [50, 50, 55, 55]
    prices = np.column_stack([a, b]).astype(float)
    times = ["2026-01-05T15:00:00Z", "2026-01-05T16:00:00Z", "2026-01-05T17:00:00Z", "2026-01-05T18:00:00Z"]
    fills = [{"filled_at": "2026-01-05T15:00:00Z", "symbol": "A", "side": "buy", "filled_qty": "10"}]
    equity = np.array([10000, 10100, 9990, 10089.0])
    universe = baselines.buy_and_hold(prices)
    assert universe == pytest.approx([1, (1.1 + 1) / 2, (0.99 + 1.1) / 2, (1.089 + 1.1) / 2])
    share = baselines.exposure(prices, baselines.holdings(times, ["A", "B"], fills), equity)
    assert share == pytest.approx([1000 / 10000, 1100 / 10100, 990 / 9990, 1089 / 10089])
    x1 = 1 + 0.1 * (1.05 / 1 - 1)
    x2 = x1 * (1 + 1100 / 10100 * (1.045 / 1.05 - 1))
    x3 = x2 * (1 + 990 / 9990 * (1.0945 / 1.045 - 1))
    assert baselines.exposure_matched(universe, share) == pytest.approx([1, x1, x2, x3])


def test_random_entry_matches_the_enumerated_distribution():
    # One symbol at 100, 120, 90; one buy of half the equity, one sell of the whole position.
    # The six equally likely (buy cycle, sell cycle) pairs, by hand (a sell before the buy sells nothing):
    #   (0,1) +10 %, (0,2) -5 %, (1,2) -12.5 %, (1,0) -12.5 %, (2,0) 0 %, (2,1) 0 %.
    outcomes = [10.0, -5.0, -12.5, -12.5, 0.0, 0.0]
    sample = baselines.random_entry(np.array([[100.0], [120.0], [90.0]]), [0.5], [1.0], 0.0, runs=6000)
    assert set(np.round(sample, 6)) == set(outcomes)
    for value in set(outcomes):
        assert np.mean(np.isclose(sample, value)) == pytest.approx(outcomes.count(value) / 6, abs=0.025)
    # The analyst's percentile: below counts whole, ties half.
    for analyst, exact in [(10.0, (5 + 0.5) / 6 * 100), (0.0, (3 + 1) / 6 * 100), (-20.0, 0.0)]:
        assert baselines.percentile(analyst, sample) == pytest.approx(exact, abs=2.5)


def test_random_entry_pays_the_analysts_cost_per_dollar_traded():
    # Flat prices: every run trades at 100. 1 % on the buy (half the equity) and 1 % on the sell
    # of it costs 1 % of the equity; a sell before the buy sells nothing and the buy alone costs 0.5 %.
    sample = baselines.random_entry(np.full((5, 1), 100.0), [0.5], [1.0], 0.01, runs=200)
    assert set(np.round(sample, 9)) == {-1.0, -0.5}


def test_order_sizes_are_shares_of_equity_and_of_the_position():
    times = ["t1", "t2", "t3"]
    fills = [
        {"filled_at": "t1", "symbol": "A", "side": "buy", "filled_qty": "10", "filled_avg_price": "100"},
        {"filled_at": "t2", "symbol": "A", "side": "sell", "filled_qty": "4", "filled_avg_price": "105"},
        {"filled_at": "t3", "symbol": "B", "side": "buy", "filled_qty": "2", "filled_avg_price": "50"},
    ]
    buys, sells = baselines.order_sizes(fills, times, np.array([10000.0, 10050, 10000]))
    assert buys == pytest.approx([0.1, 0.01])
    assert sells == pytest.approx([0.4])


@pytest.mark.parametrize("p_random, percentile, start", [
    (0.01, 99.0, "better than random entry on net return after 40 decisions (p = 0.01)"),
    (0.97, 3.0, "worse than random entry on net return after 40 decisions (percentile 3)"),
    (0.41, 59.0, "not distinguishable from random entry after 40 decisions (p = 0.41)"),
    (None, None, "nothing to judge yet after 40 scored decisions"),
])
def test_the_verdict_in_words(p_random, percentile, start):
    text = significance.verdict_text(40, p_random, percentile, 0.55, 0.5, 0.27, 617, 0.55, "equity")
    assert text == f"{start}; hit rate 55% against a base rate of 50% (p = 0.27); about 617 decisions to detect a 55% hit rate"


def test_spa_of_a_long_record_averages_it_into_periods_and_keeps_the_edge():
    rng = np.random.default_rng(4)
    long = {"a": rng.normal(0, 1, 5000), "good": rng.normal(-0.2, 1, 5000)}
    assert significance.spa_p_value(long) < 0.05
    assert significance.spa_p_value({"a": rng.normal(0, 1, 5000), "b": rng.normal(0, 1, 5000)}) > 0.1
