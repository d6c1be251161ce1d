"""Store what changed: a symbol that holds for the same reason as in the cycle
before extends that cycle's row; history filters stand on indexes."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tradecycle.cli import cli
from tradecycle.cycle.run import run_cycle
from tradecycle.store import reads

from .fakes import FakeBroker, FakeClock, FakeQuotes, services, settings


def closed_market_cycles(store, log, count: int, clock: FakeClock, quotes: FakeQuotes):
    broker = FakeBroker(clock_open=False)
    reports = []
    for _ in range(count):
        reports.append(run_cycle(services(broker=broker, quotes=quotes, clock=clock), store, settings(), log))
        clock.advance(60)
    return reports


def test_a_closed_market_writes_one_row_per_symbol_that_spans_every_cycle(db, store, log):
    clock = FakeClock()
    quotes = FakeQuotes({"AAPL": "200"}, FakeClock())  # the last trade before the close: the same quote every cycle
    reports = closed_market_cycles(store, log, 5, clock, quotes)

    rows = db.query("SELECT cycle_id, outcome, repeats, last_cycle_id FROM ai_decisions")
    assert rows == [{"cycle_id": reports[0].cycle_id, "outcome": "market_closed", "repeats": 4, "last_cycle_id": reports[4].cycle_id}]
    quotes_rows = db.query("SELECT cycle_id, price, repeats FROM quotes")
    assert quotes_rows == [{"cycle_id": reports[0].cycle_id, "price": "200", "repeats": 4}]

    story = reads.cycle_story(db, reports[2].cycle_id)  # a cycle in the middle of the span still shows what it saw
    assert [(d["symbol"], d["outcome"]) for d in story["decisions"]] == [("AAPL", "market_closed")]
    assert [(q["symbol"], q["price"]) for q in story["quotes"]] == [("AAPL", "200")]

    shown = CliRunner().invoke(cli, ["decisions", "--db", str(db.path), "--json"])
    assert shown.exit_code == 0
    (row,) = json.loads(shown.stdout)
    assert row["repeats"] == 4 and row["last_cycle_id"] == reports[4].cycle_id
    since_last_cycle = reads.decisions(db, 10, since=row["last_seen_at"])
    assert [d["id"] for d in since_last_cycle] == [row["id"]]  # begun earlier, still seen since


def test_a_changed_reason_or_a_gap_starts_a_new_row(db, store, log):
    clock = FakeClock()
    quotes = FakeQuotes({"AAPL": "200"}, clock)
    closed_market_cycles(store, log, 2, clock, quotes)
    run_cycle(services(quotes=quotes, clock=clock), store, settings(), log)  # market opens: analysed
    clock.advance(60)
    store.set_kill_switch(True, "pause", clock.now())
    run_cycle(services(quotes=quotes, clock=clock), store, settings(), log)  # skipped: a gap
    clock.advance(60)
    store.set_kill_switch(False, None, clock.now())
    closed_market_cycles(store, log, 2, clock, quotes)

    rows = db.query("SELECT outcome, repeats FROM ai_decisions ORDER BY id")
    assert [(r["outcome"], r["repeats"]) for r in rows] == [("market_closed", 1), ("hold", 0), ("market_closed", 1)]
    # Quotes moved with the clock (a new as_of each minute): one row each, none extended.
    assert db.one("SELECT count(*) AS n, max(repeats) AS most FROM quotes") == {"n": 5, "most": 0}


HISTORY_CASES = [
    ("cycles", "2026-11-24T00:00:00Z", None),
    ("trades", "2026-11-24T00:00:00Z", None),
    ("trades", None, "AAPL"),
    ("trades", "2026-11-24T00:00:00Z", "AAPL"),
    ("decisions", "2026-11-24T00:00:00Z", None),
    ("decisions", None, "AAPL"),
    ("decisions", "2026-11-24T00:00:00Z", "AAPL"),
]


@pytest.mark.parametrize("kind, since, symbol", HISTORY_CASES)
def test_every_history_filter_searches_an_index(db, kind, since, symbol):
    table = {"decisions": "ai_decisions"}.get(kind, kind)
    plan = reads.query_plan(db, *reads.history_query(kind, 20, since, symbol))
    assert f"SCAN {table}" not in plan, plan  # never the whole table
    column = "symbol" if symbol else ("started_at" if kind == "cycles" else "created_at")
    assert any(step.startswith(f"SEARCH {table} USING INDEX") and f"({column}" in step for step in plan), plan
    assert sum("TEMP B-TREE" in step for step in plan) <= (2 if since and kind == "decisions" else 0), plan


class PricedAnalyst:
    """Like the offline rules analyst: decides afresh every cycle, its reason quoting the price."""

    model = "rules-like"

    def __init__(self, reason: str = "No clear signal"):
        self.reason = reason

    def analyse(self, inputs, timeout_seconds):
        from tradecycle.models import Decision

        return [Decision(i.symbol, "hold", 0.5, f"{self.reason} (price {i.quote.price}, day +0.4%)", self.model) for i in inputs]


def test_a_fresh_decision_that_repeats_the_one_before_extends_its_row(db, store, log):
    clock = FakeClock()
    quotes = FakeQuotes({"AAPL": "200"}, clock)
    analyst = PricedAnalyst()
    reports = []
    for price in ("200", "200.5", "199.8"):  # the numbers change, the reason does not
        quotes.table["AAPL"] = price
        reports.append(run_cycle(services(quotes=quotes, clock=clock, analyst=analyst), store, settings(), log))
        clock.advance(60)
    analyst.reason = "Trend broke"
    reports.append(run_cycle(services(quotes=quotes, clock=clock, analyst=analyst), store, settings(), log))

    rows = db.query("SELECT cycle_id, reasoning, repeats, last_cycle_id, inputs FROM ai_decisions ORDER BY id")
    assert [(r["cycle_id"], r["repeats"], r["last_cycle_id"]) for r in rows] == [
        (reports[0].cycle_id, 2, reports[2].cycle_id), (reports[3].cycle_id, 0, None)]
    assert rows[0]["reasoning"] == "No clear signal (price 200, day +0.4%)"  # the first decision's words and numbers
    assert json.loads(rows[0]["inputs"])["price"] == "200" and ", " not in rows[0]["inputs"]  # compact JSON
    story = reads.cycle_story(db, reports[1].cycle_id)  # the middle cycle still finds what it decided
    assert [(d["symbol"], d["outcome"]) for d in story["decisions"]] == [("AAPL", "hold")]


def test_a_decision_that_cost_a_model_call_keeps_its_own_row(db, store, log):
    from tradecycle.models import Decision

    class Paid:
        model = "gpt-test"

        def analyse(self, inputs, timeout_seconds):
            return [Decision(i.symbol, "hold", 0.5, "No clear signal", self.model, raw_reply='{"action":"hold"}',
                             prompt_tokens=100, completion_tokens=10) for i in inputs]

    clock = FakeClock()
    for _ in range(3):
        run_cycle(services(clock=clock, analyst=Paid()), store, settings(), log)
        clock.advance(60)
    assert [r["repeats"] for r in db.query("SELECT repeats FROM ai_decisions")] == [0, 0, 0]


def test_explain_finds_a_cycles_quotes_on_their_time_not_on_an_index_of_cycle_ids(db, store, log):
    """Quotes have no index on ``cycle_id`` (it cost a tenth of the shipped config's day): explain finds
    a cycle's quotes on ``fetched_at``, near the cycle's time, and only that cycle's."""
    clock = FakeClock()
    broker = FakeBroker(clock_open=True)
    reports = []
    for price in ("200", "201", "202"):  # a new quote every cycle: three quote rows
        quotes = FakeQuotes({"AAPL": price}, clock)
        reports.append(run_cycle(services(broker=broker, quotes=quotes, clock=clock), store, settings(), log))
        clock.advance(60)
    assert "idx_quotes_cycle_id" not in {r["name"] for r in db.query("SELECT name FROM sqlite_master WHERE type = 'index'")}

    story = reads.cycle_story(db, reports[1].cycle_id)
    assert [(q["symbol"], q["price"]) for q in story["quotes"]] == [("AAPL", "201")]
    sql = ("SELECT * FROM quotes WHERE fetched_at BETWEEN :since AND :until AND cycle_id = :cycle_id")
    plan = reads.query_plan(db, sql, {"since": "2026-01-01T00:00:00Z", "until": "2026-01-01T02:00:00Z", "cycle_id": "x"})
    assert any(step.startswith("SEARCH quotes USING INDEX idx_quotes_fetched_at") for step in plan), plan
