"""No whipsaw (issue 23): the re-entry cooldown and the stop-loss guard as
pure rules, and the store's record of protective exits they read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tradecycle.rules.protections import ExitRecord, Protections, buy_pause, cooldown, stop_guard

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
RULES = Protections(reentry_cooldown_minutes=60, stop_loss_guard_count=3, stop_loss_guard_minutes=120)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def exit_(symbol: str, kind: str, minutes: float) -> ExitRecord:
    return ExitRecord(symbol, kind, at(minutes))


@pytest.mark.parametrize("exits, now, paused_until", [
    ([], 0, None),
    ([exit_("AAPL", "stop_loss", 0)], 1, 60),  # a minute after the stop: no buy back
    ([exit_("AAPL", "trailing_stop", 0)], 59, 60),
    ([exit_("AAPL", "take_profit", 0)], 30, 60),  # a take-profit starts the cooldown too
    ([exit_("AAPL", "stop_loss", 0)], 60, None),  # the cooldown is over
    ([exit_("MSFT", "stop_loss", 0)], 1, None),  # another symbol's exit
    ([exit_("AAPL", "stop_loss", 0), exit_("AAPL", "trailing_stop", 40)], 90, 100),  # the latest exit counts
    ([exit_("AAPL", "stop_loss", 10)], 5, None),  # an exit after now is not known yet
])
def test_cooldown_after_a_protective_exit(exits, now, paused_until):
    pause = cooldown("AAPL", exits, at(now), RULES)
    assert (pause.until if pause else None) == (at(paused_until) if paused_until is not None else None)
    if pause:
        assert pause.outcome == "cooldown"
        assert "risk.reentry_cooldown_minutes = 60" in pause.detail


def test_a_cooldown_of_zero_is_off():
    assert cooldown("AAPL", [exit_("AAPL", "stop_loss", 0)], at(1), Protections(reentry_cooldown_minutes=0)) is None


@pytest.mark.parametrize("stops, now, paused_until", [
    ([0, 30], 31, None),  # two stop-outs: not yet
    ([0, 30, 60], 61, 180),  # the third within 120 minutes pauses buys for 120 minutes from it
    ([0, 30, 60], 179, 180),
    ([0, 30, 60], 180, None),
    ([0, 30, 121], 122, None),  # the first fell out of the window before the third
    ([0, 30, 60, 90], 170, 210),  # a fourth while paused extends the pause
])
def test_stop_loss_guard(stops, now, paused_until):
    exits = [exit_(s, "stop_loss", m) for s, m in zip(["AAPL", "MSFT", "NVDA", "BTC/USD"], stops)]
    pause = stop_guard(exits, at(now), RULES)
    assert (pause.until if pause else None) == (at(paused_until) if paused_until is not None else None)
    if pause:
        assert pause.outcome == "stop_guard" and "3 stop-outs within 120 minutes" in pause.detail


def test_take_profits_are_not_stop_outs():
    exits = [exit_("AAPL", "take_profit", 0), exit_("MSFT", "take_profit", 1), exit_("NVDA", "take_profit", 2)]
    assert stop_guard(exits, at(3), RULES) is None


def test_trailing_stops_count_as_stop_outs():
    exits = [exit_("AAPL", "trailing_stop", 0), exit_("MSFT", "stop_loss", 1), exit_("NVDA", "trailing_stop", 2)]
    assert stop_guard(exits, at(3), RULES).until == at(122)


def test_the_guard_pauses_every_symbol_and_comes_before_a_cooldown():
    exits = [exit_("AAPL", "stop_loss", 0), exit_("MSFT", "stop_loss", 1), exit_("NVDA", "stop_loss", 2)]
    assert buy_pause("ETH/USD", exits, at(3), RULES).outcome == "stop_guard"
    assert buy_pause("AAPL", exits, at(3), RULES).outcome == "stop_guard"
    assert buy_pause("AAPL", exits, at(130), RULES) is None
    assert buy_pause("AAPL", exits[:1], at(3), RULES).outcome == "cooldown"


def test_a_guard_count_of_zero_is_off():
    exits = [exit_("AAPL", "stop_loss", m) for m in range(5)]
    assert stop_guard(exits, at(6), Protections(stop_loss_guard_count=0)) is None


# -- the store's record ------------------------------------------------------------


def _decision(store, symbol: str, outcome: str, minutes: float, role: str = "main") -> None:
    store.record_decision({"cycle_id": f"c{minutes}", "symbol": symbol, "action": "sell", "outcome": outcome,
                           "created_at": at(minutes).isoformat().replace("+00:00", "Z"), "role": role})


def test_the_store_names_protective_exits_and_when(store):
    _decision(store, "AAPL", "stop_loss", 0)
    _decision(store, "AAPL", "ordered", 5)  # an analyst's sell: not protective
    _decision(store, "MSFT", "trailing_stop", 10)
    _decision(store, "AAPL", "take_profit", 20)
    _decision(store, "NVDA", "flatten", 25)  # the kill switch's clean-up: not a protective exit
    _decision(store, "NVDA", "stop_loss", 30, role="shadow")
    assert [(e.symbol, e.kind, e.at) for e in store.protective_exits_since(at(0))] == [
        ("AAPL", "stop_loss", at(0)), ("MSFT", "trailing_stop", at(10)), ("AAPL", "take_profit", at(20))]
    assert [e.symbol for e in store.protective_exits_since(at(1))] == ["MSFT", "AAPL"]
    assert store.last_protective_exit("AAPL", at(0)) == at(20)
    assert store.last_protective_exit("NVDA", at(0)) is None
    assert store.last_protective_exit("AAPL") == at(20) and store.last_protective_exit("AAPL", at(21)) is None
