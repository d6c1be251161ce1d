"""The same seed and the same injected clock give the same cycles: two offline
runs of the shipped config (tests/simulated.py) send the same orders and record
the same decisions, whatever the threads of the parallel fetch finish first."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from .simulated import OfflineCycles

START = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
EVERY_SECONDS, CYCLES = 2 * 3600, 25  # two days, past two midnights
SHADOW = '\n[[ai.shadow]]\nprovider = "rules"\n'


def simulated_days(folder) -> tuple[list[tuple], list[tuple]]:
    folder.mkdir()
    cycles = OfflineCycles(folder, START, SHADOW)
    reports = cycles.run_every(EVERY_SECONDS, CYCLES)
    assert {r.status for r in reports} == {"completed"}
    with sqlite3.connect(cycles.config.database_path) as conn:
        trades = conn.execute("""SELECT c.started_at, t.symbol, t.side, t.quantity, t.status, t.price FROM trades t
                                 JOIN cycles c USING (cycle_id) ORDER BY c.started_at, t.symbol, t.side""").fetchall()
        decisions = conn.execute("""SELECT c.started_at, d.symbol, d.role, d.action, d.confidence, d.outcome, d.reasoning
                                    FROM ai_decisions d JOIN cycles c USING (cycle_id)
                                    ORDER BY c.started_at, d.symbol, d.role""").fetchall()
    return trades, decisions


def test_two_runs_of_the_same_days_trade_and_decide_alike(tmp_path):
    first_trades, first_decisions = simulated_days(tmp_path / "first")
    second_trades, second_decisions = simulated_days(tmp_path / "second")
    assert first_trades, "two days of the shipped config should have traded"
    assert second_trades == first_trades
    assert second_decisions == first_decisions
