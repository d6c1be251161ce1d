"""The stop held at the broker for a position, and what to do about the one
that stands (tradecycle/rules/stops.py): pure functions."""

from __future__ import annotations

from decimal import Decimal as D

from tradecycle.models import ExitRules
from tradecycle.rules.stops import StopSpec, next_step, stop_level, tick, wanted_stop

STOP_8 = ExitRules(stop_loss_percent=D(8))
STOP_8_TRAIL_5 = ExitRules(stop_loss_percent=D(8), trailing_stop_percent=D(5))


def test_whole_shares_get_a_gtc_stop_at_the_stop_loss_price():
    assert wanted_stop("AAPL", D(10), D(200), None, STOP_8) == StopSpec("AAPL", D(10), D("184.00"), "stop", "gtc")


def test_a_fractional_quantity_gets_a_day_stop():
    assert wanted_stop("AAPL", D("2.5"), D(200), None, STOP_8).time_in_force == "day"


def test_crypto_gets_a_stop_limit_whose_limit_sits_one_percent_under_the_stop():
    spec = wanted_stop("BTC/USD", D("0.05"), D(67000), None, STOP_8)
    assert (spec.order_type, spec.time_in_force, spec.stop_price, spec.limit_price) == ("stop_limit", "gtc", D("61640.00"), D("61023.60"))


def test_the_stop_follows_the_higher_of_the_stop_loss_and_the_trailing_stop():
    assert stop_level(STOP_8_TRAIL_5, D(200), D(200)) == D(190)  # trailing 5 % under 200 beats 184
    assert stop_level(STOP_8_TRAIL_5, D(200), D(220)) == D(209)
    assert stop_level(ExitRules(stop_loss_percent=None, take_profit_percent=D(10)), D(200), D(220)) is None


def test_no_stop_without_a_level_or_a_position():
    assert wanted_stop("AAPL", D(10), D(200), None, ExitRules(stop_loss_percent=None)) is None
    assert wanted_stop("AAPL", D(0), D(200), None, STOP_8) is None


def test_prices_are_rounded_down_to_what_the_broker_takes():
    assert tick(D("184.009")) == D("184.00") and tick(D("0.123456")) == D("0.1234")


def standing(stop="184.00", qty="10", tif="gtc") -> StopSpec:
    return StopSpec("AAPL", D(qty), D(stop), "stop", tif)


def test_a_position_without_a_stop_gets_one_and_a_stop_without_a_position_goes():
    wanted = StopSpec("AAPL", D(10), D("184.00"), "stop", "gtc")
    assert next_step(wanted, None, D(200)) == ("place", wanted)
    assert next_step(None, standing(), None) == ("cancel", None)
    assert next_step(None, None, None) == ("keep", None)


def test_a_trailing_stop_raises_the_broker_stop_once_it_gained_a_tenth_of_a_percent():
    assert next_step(StopSpec("AAPL", D(10), D("184.10"), "stop", "gtc"), standing(), D(200)) == ("keep", None)
    step, spec = next_step(StopSpec("AAPL", D(10), D("184.20"), "stop", "gtc"), standing(), D(200))
    assert step == "replace" and spec.stop_price == D("184.20")


def test_a_stop_is_never_lowered_but_follows_the_quantity():
    assert next_step(StopSpec("AAPL", D(10), D("180.00"), "stop", "gtc"), standing(), D(200)) == ("keep", None)
    step, spec = next_step(StopSpec("AAPL", D(15), D("180.00"), "stop", "gtc"), standing(), D(200))
    assert (step, spec.qty, spec.stop_price) == ("replace", D(15), D("184.00"))


def test_a_fractional_quantity_turns_the_stop_into_a_day_stop():
    step, spec = next_step(StopSpec("AAPL", D("10.5"), D("184.00"), "stop", "day"), standing(), D(200))
    assert (step, spec.time_in_force) == ("replace", "day")


def test_nothing_is_placed_or_raised_at_or_above_the_price():
    wanted = StopSpec("AAPL", D(10), D("190.00"), "stop", "gtc")
    assert next_step(wanted, None, D("189.50")) == ("keep", None)
    assert next_step(wanted, standing(), D("190.00")) == ("keep", None)  # the cycle's own exit sells now


def test_a_raised_crypto_stop_moves_its_limit_with_it():
    old = StopSpec("BTC/USD", D("0.05"), D("61640.00"), "stop_limit", "gtc", D("61023.60"))
    step, spec = next_step(StopSpec("BTC/USD", D("0.05"), D("63000.00"), "stop_limit", "gtc", D("62370.00")), old, D(68000))
    assert (step, spec.stop_price, spec.limit_price) == ("replace", D("63000.00"), D("62370.00"))
