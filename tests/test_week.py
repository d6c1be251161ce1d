"""A simulated week of the shipped config, left alone (issue 23), on an
injected clock in this process (tests/simulated.py): no buy of a symbol within
the cooldown after its protective exit, daily moves of a real market's size,
and the database's growth within the goal of 1.5 MB a day, the record's hash
chain included.

The week runs a cycle every two hours (a few seconds), with stops tighter
than the shipped ones so that exits happen within it. The growth is measured
a cycle a minute, over two session hours and two hours with the stock market
closed, and weighed as a weekday has them (6.5 and 17.5 hours): the long
version, a cycle a minute for a whole week, is benchmarks/week.py.
"""

from __future__ import annotations

import math
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from tradecycle.connectors import sim_calendar as calendar
from tradecycle.store import open_database
from tradecycle.store.verify import verify_chain

from .simulated import OfflineCycles

MONDAY = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
GOAL_BYTES_A_DAY = 1.5e6
MEASURED_MINUTES = 120  # a cycle a minute: long enough that the 4 KB pages even out


def shipped_with(folder, replacements: dict[str, str]) -> OfflineCycles:
    cycles = OfflineCycles(folder, MONDAY)
    text = cycles.config_path.read_text(encoding="utf-8")
    for old, new in replacements.items():
        assert old in text
        text = text.replace(old, new)
    cycles.config_path.write_text(text, encoding="utf-8")
    from tradecycle.config import load_config

    cycles.config = load_config(cycles.config_path)
    return cycles


def rows(cycles: OfflineCycles, sql: str) -> list[dict]:
    with sqlite3.connect(cycles.config.database_path) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql)]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def week(tmp_path_factory) -> OfflineCycles:
    cycles = shipped_with(tmp_path_factory.mktemp("week"), {
        "stop_loss_percent = 8 ": "stop_loss_percent = 3 ",
        "trailing_stop_percent = 0 ": "trailing_stop_percent = 2 ",
    })
    reports = cycles.run_every(2 * 3600, 7 * 12)
    assert {r.status for r in reports} == {"completed"}
    return cycles


def test_no_buy_of_a_symbol_within_the_cooldown_after_its_exit(week):
    cooldown = timedelta(minutes=week.config.risk.reentry_cooldown_minutes)
    exits = rows(week, "SELECT symbol, created_at FROM ai_decisions WHERE outcome IN ('stop_loss', 'trailing_stop', 'take_profit')")
    buys = rows(week, "SELECT symbol, created_at FROM trades WHERE side = 'buy'")
    assert exits and buys  # the week saw both, or the check below would prove nothing
    early = [(e, b) for e in exits for b in buys
             if b["symbol"] == e["symbol"] and at(e["created_at"]) < at(b["created_at"]) < at(e["created_at"]) + cooldown]
    assert early == []
    waited = rows(week, "SELECT COUNT(*) AS n FROM ai_decisions WHERE outcome = 'cooldown'")[0]["n"]
    assert waited >= 1  # a buy signal did come within a cooldown, and was not sent


def test_daily_moves_are_a_real_markets(week):
    """The week's close-to-close moves (the last price each day), pooled per asset class:
    stocks about 1.5-2.5 % a day, crypto 3-4 % (a week is a small sample: a little more room)."""
    closes: dict[str, dict[str, float]] = {}
    for q in rows(week, "SELECT symbol, price, as_of FROM quotes ORDER BY id"):
        day = at(q["as_of"]).date() if "/" in q["symbol"] else calendar.session_day(at(q["as_of"]))
        closes.setdefault(q["symbol"], {})[day.isoformat()] = float(q["price"])
    moves = {"stock": [], "crypto": []}
    for symbol, by_day in closes.items():
        prices = list(by_day.values())[:-1]
        moves["crypto" if "/" in symbol else "stock"] += [math.log(b / a) for a, b in zip(prices, prices[1:])]
    spread = {kind: 100 * math.sqrt(sum(m * m for m in found) / len(found)) for kind, found in moves.items()}
    assert len(moves["stock"]) >= 12 and len(moves["crypto"]) >= 10
    assert 1.2 <= spread["stock"] <= 2.8, spread
    assert 2.5 <= spread["crypto"] <= 4.5, spread
    sessions = {d for s, by_day in closes.items() if "/" not in s for d in by_day}
    assert all(datetime.fromisoformat(d).weekday() < 5 for d in sessions)  # no weekend sessions


def test_a_weekday_grows_the_database_by_at_most_one_and_a_half_megabytes(tmp_path):
    """All of it: the rows and the record's hash chain (store/chain.py), whose links for the
    extension of a hold every minute are packed one run a cycle."""
    cycles = OfflineCycles(tmp_path, MONDAY + timedelta(hours=14, minutes=45))  # 09:45 in New York: open
    db = cycles.config.database_path

    def used_bytes() -> tuple[int, int]:
        """Bytes in use (pages in use x page size, after a checkpoint), and those of the chain's table."""
        with sqlite3.connect(db) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            links = conn.execute("SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name LIKE '%chain_links%'").fetchone()[0]
            pages = conn.execute("PRAGMA page_count").fetchone()[0] - conn.execute("PRAGMA freelist_count").fetchone()[0]
            return pages * conn.execute("PRAGMA page_size").fetchone()[0], links

    def minute_rates(count: int) -> tuple[float, float]:
        (before, chain_before) = used_bytes()
        cycles.run_every(60, count)
        (after, chain_after) = used_bytes()
        return (after - before) / count, (chain_after - chain_before) / count

    cycles.run_every(60, 5)  # the first cycles write the schema and the daily bars: not growth
    assert calendar.is_open(cycles.clock.now())
    open_rate, open_chain = minute_rates(MEASURED_MINUTES)
    cycles.clock.current = MONDAY + timedelta(hours=23)  # 18:00 in New York: stocks closed, crypto trades on
    cycles.run_every(60, 2)
    assert not calendar.is_open(cycles.clock.now())
    closed_rate, closed_chain = minute_rates(MEASURED_MINUTES)
    weekday = open_rate * 390 + closed_rate * (1440 - 390)
    chain = open_chain * 390 + closed_chain * (1440 - 390)
    assert closed_rate < open_rate
    assert weekday <= GOAL_BYTES_A_DAY, (f"{weekday / 1e6:.2f} MB a weekday, the chain {chain / 1e6:.3f} MB of it"
                                         f" ({open_rate:.0f} and {closed_rate:.0f} bytes a minute)")
    assert 0 < chain <= 0.1e6, f"the chain: {chain / 1e6:.3f} MB a weekday"  # about 45 bytes a cycle
    with sqlite3.connect(db) as conn:  # the extensions of a cycle: one row of the chain, not one a symbol
        [runs] = conn.execute("SELECT COUNT(*) FROM chain_links WHERE kind = 3").fetchone()
        [count] = conn.execute("SELECT COUNT(*) FROM cycles").fetchone()
        assert 0 < runs <= count
    database = open_database(db)
    try:
        result = verify_chain(database)
    finally:
        database.close()
    assert result["ok"], result["problems"]  # and the record verifies, a link per extension all the same
    assert result["links"] >= 5 * 2 * MEASURED_MINUTES
