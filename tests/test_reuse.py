"""The LLM budget: when an earlier hold stands without a new analysis."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from tradecycle.cycle.run import run_cycle
from tradecycle.rules import scorecard
from tradecycle.rules.reuse import StandingHold, still_stands
from tradecycle.store import scores

from .fakes import NOW, FakeBroker, FakeClock, FakeNews, FakeQuotes, ScriptedAnalyst, position, services, settings

STANDING = StandingHold(7, NOW, Decimal("200"), frozenset({"n1"}), Decimal(0), 0.5, "flat", "m")


@pytest.mark.parametrize(
    "case, price, headlines, qty, minutes_later, stands, why",
    [
        ("nothing changed", "200.50", ["n1"], "0", 5, True, "hold #7 still stands"),
        ("headline gone, none new", "200", [], "0", 5, True, "still stands"),
        ("price moved up 0.5 %", "201", ["n1"], "0", 5, False, "price moved 0.50%"),
        ("price moved down 0.6 %", "198.80", ["n1"], "0", 5, False, "price moved 0.60%"),
        ("a new headline", "200", ["n1", "n2"], "0", 5, False, "1 new headline(s)"),
        ("position changed", "200", ["n1"], "3", 5, False, "position changed"),
        ("decision too old", "200", ["n1"], "0", 15, False, "15 min old"),
    ],
)
def test_what_counts_as_changed(case, price, headlines, qty, minutes_later, stands, why):
    result, reason = still_stands(
        STANDING, price=Decimal(price), headline_ids=headlines, position_qty=Decimal(qty),
        now=NOW + timedelta(minutes=minutes_later), reanalyze_move_percent=Decimal("0.5"), max_decision_age_minutes=15,
    )
    assert result is stands, case
    assert why in reason


def reusing(**kw):
    return settings(stocks=("AAPL", "MSFT"), reuse_holds=True, **kw)


def test_unchanged_market_costs_no_analysis_after_the_first_cycle(db, store, log):
    clock = FakeClock()
    quotes = FakeQuotes({"AAPL": "200", "MSFT": "400"}, clock)
    news = FakeNews({"AAPL": ["Apple flat"]})
    analyst = ScriptedAnalyst()
    for _ in range(3):
        run_cycle(services(quotes=quotes, news=news, analyst=analyst, clock=clock), store, reusing(), log)
        clock.advance(60)
    assert [[i.symbol for i in batch] for batch in analyst.seen] == [["AAPL", "MSFT"]]
    rows = db.query("SELECT symbol, outcome, reused_decision_id FROM ai_decisions ORDER BY id")
    first = {r["symbol"]: r["outcome"] for r in rows[:2]}
    assert first == {"AAPL": "hold", "MSFT": "hold"}
    originals = {r["symbol"]: r for r in db.query("SELECT id, symbol FROM ai_decisions WHERE outcome = 'hold'")}
    for row in rows[2:]:
        assert row["outcome"] == "unchanged"
        assert row["reused_decision_id"] == originals[row["symbol"]]["id"]  # points at the decision that stands


def test_a_price_move_or_new_position_sends_the_symbol_again(db, store, log):
    clock = FakeClock()
    quotes = FakeQuotes({"AAPL": "200", "MSFT": "400"}, clock)
    broker = FakeBroker()
    analyst = ScriptedAnalyst()
    run_cycle(services(quotes=quotes, analyst=analyst, clock=clock, broker=broker), store, reusing(), log)
    clock.advance(60)
    quotes.table["AAPL"] = "202"  # +1 %
    broker.positions["MSFT"] = position("MSFT", "4000")
    run_cycle(services(quotes=quotes, analyst=analyst, clock=clock, broker=broker), store, reusing(), log)
    assert sorted(i.symbol for i in analyst.seen[1]) == ["AAPL", "MSFT"]


def test_only_holds_are_reused(db, store, log):
    clock = FakeClock()
    quotes = FakeQuotes({"AAPL": "200"}, clock)
    analyst = ScriptedAnalyst({"AAPL": ("buy", 0.3)})  # low confidence: not a hold by the analyst
    for _ in range(2):
        run_cycle(services(quotes=quotes, analyst=analyst, clock=clock), store, settings(reuse_holds=True), log)
        clock.advance(60)
    assert len(analyst.seen) == 2


@pytest.mark.parametrize("provider, reuses", [("rules", False), ("openai", True)])
def test_only_the_llm_analyst_reuses_holds(tmp_path, provider, reuses):
    """The rules analyst is free and deterministic: the wiring has it decide afresh every cycle."""
    from tradecycle.config import load_config
    from tradecycle.commands.wiring import cycle_settings

    (tmp_path / "config.toml").write_text(f'[ai]\nprovider = "{provider}"\nreanalyze_move_percent = 0.7\n')
    built = cycle_settings(load_config(tmp_path / "config.toml"), dry_run=False)
    assert built.reuse_holds is reuses and built.reanalyze_move_percent == Decimal("0.7")


def test_a_buy_refused_by_a_limit_is_not_asked_again_while_nothing_changes(db, store, log):
    """Ten cycles, an unchanged market, AAPL already at its 10% limit: one LLM call."""
    clock = FakeClock()
    quotes = FakeQuotes({"AAPL": "200"}, clock)
    broker = FakeBroker(positions=[position("AAPL", "10000", qty="50")])  # 50 at 200: the price it is quoted at
    analyst = ScriptedAnalyst({"AAPL": ("buy", 0.9)})
    for _ in range(10):
        run_cycle(services(quotes=quotes, analyst=analyst, clock=clock, broker=broker), store, settings(reuse_holds=True), log)
        clock.advance(60)

    assert len(analyst.seen) == 1
    assert broker.orders == []
    rows = db.query("SELECT outcome, action, reused_decision_id, repeats, inputs FROM ai_decisions ORDER BY id")
    assert [(r["outcome"], r["action"], r["repeats"]) for r in rows] == [("position_too_large", "buy", 0), ("position_too_large", "buy", 8)]
    assert rows[1]["reused_decision_id"] is not None
    assert '"room"' in rows[0]["inputs"]  # the room it saw, kept to compare against


@pytest.mark.parametrize(
    "change, asked_again",
    [
        ("nothing", False),
        ("equity grew: room under the position limit", True),
        ("price moved 1 %", True),
    ],
)
def test_a_refused_buy_is_asked_again_once_the_room_or_the_market_changes(db, store, log, change, asked_again):
    clock = FakeClock()
    quotes = FakeQuotes({"AAPL": "200"}, clock)
    broker = FakeBroker(positions=[position("AAPL", "10000", qty="50")])  # 50 at 200: the price it is quoted at
    analyst = ScriptedAnalyst({"AAPL": ("buy", 0.9)})
    run_cycle(services(quotes=quotes, analyst=analyst, clock=clock, broker=broker), store, settings(reuse_holds=True), log)
    clock.advance(60)
    if change.startswith("equity"):
        broker.account = FakeBroker(equity="150000").account
    elif change.startswith("price"):
        quotes.table["AAPL"] = "202"
    run_cycle(services(quotes=quotes, analyst=analyst, clock=clock, broker=broker), store, settings(reuse_holds=True), log)
    assert len(analyst.seen) == (2 if asked_again else 1)


class HashedAnalyst(ScriptedAnalyst):
    """An LLM-like analyst: a prompt hash and tokens on every answer."""

    model = "gpt-4o-mini"

    def analyse(self, inputs, timeout_seconds):
        return [replace(d, prompt_hash="5aae911d", prompt_tokens=900, completion_tokens=40)
                for d in super().analyse(inputs, timeout_seconds)]


@pytest.mark.parametrize("script, outcome", [({"AAPL": ("buy", 0.9)}, "position_too_large"), ({}, "hold")])
def test_a_reused_decision_keeps_its_analyst_and_adds_no_tokens(db, store, log, script, outcome):
    """One request, three cycles: score shows one main analyst with one request's tokens."""
    clock = FakeClock()
    quotes = FakeQuotes({"AAPL": "200"}, clock)
    broker = FakeBroker(positions=[position("AAPL", "10000", qty="50")])  # at its 10% limit: a buy is refused
    analyst = HashedAnalyst(script)
    for _ in range(3):
        run_cycle(services(quotes=quotes, analyst=analyst, clock=clock, broker=broker), store, settings(reuse_holds=True), log)
        clock.advance(60)
    assert len(analyst.seen) == 1

    rows = db.query("SELECT model, prompt_hash, outcome, reused_decision_id FROM ai_decisions ORDER BY id")
    assert rows[0]["outcome"] == outcome and rows[1]["reused_decision_id"] is not None
    assert {(r["model"], r["prompt_hash"]) for r in rows} == {("gpt-4o-mini", "5aae911d")}
    card = scorecard.scorecard(scores.scored_decisions(db, scorecard.HORIZONS, None, None, None), [], [], scores.equity_summary(db, None), ({}, {}), None)
    assert [(a["analyst"], a["role"]) for a in card["analysts"]] == [("gpt-4o-mini#5aae911d", "main")]
    assert [(t["analyst"], t["requests"], t["prompt_tokens"], t["completion_tokens"]) for t in card["tokens_per_day"]] == [
        ("gpt-4o-mini#5aae911d", 1, 900, 40)]
