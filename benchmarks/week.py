#!/usr/bin/env python3
"""A week of the shipped config, left alone: how much the database grows a day.

    /root/venv-bench/bin/python benchmarks/week.py              # 7 days, a cycle every minute (about 8 minutes)
    /root/venv-bench/bin/python benchmarks/week.py --days 2     # Monday and Tuesday only
    /root/venv-bench/bin/python benchmarks/week.py --keep       # keep the folder (database, log) to inspect

The shipped config.toml as it is (5 symbols, the simulator, the rules analyst,
``keep_days = 90``, so nothing is pruned within the week) runs one real cycle a
minute on a simulated clock from a Monday 00:00 UTC, in this process, through
the same path as ``tradecycle run`` (tests/simulated.py, ``OfflineCycles``). Stocks
keep the exchange's sessions, crypto trades around the clock, as a user would
see it under cron. At each midnight the database is checkpointed and its size
(pages in use x page size, the file without its write-ahead log) is recorded,
and the part of it that is the record's hash chain (``chain_links``, store/chain.py).

Reported: the growth of each day and the week's mean against the goal of issue 23
(at most 1.5 MB a day, the chain included; before it, about 31 MB), the chain's part of it,
the rows written per table and the cycles they stand for, ``tradecycle verify`` on the
week's record, and two checks of what a trader would see: no buy of a
symbol within ``risk.reentry_cooldown_minutes`` after its protective exit, and the
spread of the daily moves (stocks about 1.5-2.5 %, crypto 3-4 %). Exit 0 when the
goal and the checks hold and the record verifies, 1 otherwise.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.simulated import OfflineCycles  # noqa: E402

GOAL_BYTES_A_DAY = 1.5e6
START = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)  # a Monday
STOCK_RANGE, CRYPTO_RANGE = (1.5, 2.5), (3.0, 4.0)


def database_bytes(path: Path) -> tuple[int, int]:
    """The main file's pages in use after a checkpoint (what the history costs on disk), and
    the bytes of those that hold the record's hash chain (its table and indexes)."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = conn.execute("PRAGMA page_count").fetchone()[0] - conn.execute("PRAGMA freelist_count").fetchone()[0]
        links = conn.execute("SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name LIKE '%chain_links%'").fetchone()[0]
        return pages * conn.execute("PRAGMA page_size").fetchone()[0], links
    finally:
        conn.close()


def rows(path: Path, sql: str, params=()) -> list[dict]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


def buys_in_cooldown(path: Path, cooldown_minutes: float) -> list[str]:
    """Buys sent within the cooldown after a protective exit of the same symbol."""
    exits = rows(path, "SELECT symbol, created_at FROM ai_decisions WHERE outcome IN ('stop_loss', 'take_profit', 'trailing_stop')")
    buys = rows(path, "SELECT symbol, created_at FROM trades WHERE side = 'buy'")
    found = []
    for e in exits:
        ends = datetime.fromisoformat(e["created_at"].replace("Z", "+00:00")) + timedelta(minutes=cooldown_minutes)
        for b in buys:
            at = datetime.fromisoformat(b["created_at"].replace("Z", "+00:00"))
            if b["symbol"] == e["symbol"] and e["created_at"] < b["created_at"] and at < ends:
                found.append(f"{b['symbol']} bought {b['created_at']} after an exit at {e['created_at']}")
    return found


def daily_moves(path: Path) -> dict[str, float]:
    """Per symbol, the spread (standard deviation, %) of its close-to-close moves: the
    last price the cycles stored each day (a stock's session date, a coin's UTC date)."""
    from tradecycle.connectors import sim_calendar as calendar

    closes: dict[str, dict[str, float]] = {}
    for q in rows(path, "SELECT symbol, price, as_of FROM quotes ORDER BY id"):
        at = datetime.fromisoformat(q["as_of"].replace("Z", "+00:00"))
        day = (at.date() if "/" in q["symbol"] else calendar.session_day(at)).isoformat()
        closes.setdefault(q["symbol"], {})[day] = float(q["price"])
    spread = {}
    for symbol, by_day in closes.items():
        prices = list(by_day.values())[:-1]  # the last day may be unfinished
        moves = [math.log(b / a) for a, b in zip(prices, prices[1:])]
        spread[symbol] = 100 * math.sqrt(statistics.fmean(m * m for m in moves)) if moves else float("nan")
    return spread


def verify(path: Path) -> dict:
    """``tradecycle verify`` on the week's record (store/verify.py)."""
    from tradecycle.store import open_database
    from tradecycle.store.verify import verify_chain

    db = open_database(path)
    try:
        return verify_chain(db)
    finally:
        db.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--keep", action="store_true")
    opts = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="tradecycle-week-"))
    cycles = OfflineCycles(folder, START)
    db = cycles.config.database_path
    print(f"# a week of the shipped config: {opts.days} day(s) from {START:%Y-%m-%d %a}, a cycle a minute")
    sizes, chains, started, statuses = [], [], time.monotonic(), {}
    for day in range(opts.days):
        if day == 0:
            report = cycles.run()  # the first cycle: schema and daily bars, not growth
            statuses[report.status] = statuses.get(report.status, 0) + 1
            sizes.append(database_bytes(db)[0])
            chains.append(database_bytes(db)[1])
        for minute in range(1 if day == 0 else 0, 1440):
            cycles.clock.advance(60)
            report = cycles.run()
            statuses[report.status] = statuses.get(report.status, 0) + 1
        size, chain = database_bytes(db)
        sizes.append(size)
        chains.append(chain)
        print(f"  .. day {day + 1} ({(START + timedelta(days=day)):%a}): {sizes[-1] - sizes[-2]:,} bytes, "
              f"{time.monotonic() - started:.0f} s so far", file=sys.stderr, flush=True)
    elapsed = time.monotonic() - started

    growth = [b - a for a, b in zip(sizes, sizes[1:])]
    chain_growth = [b - a for a, b in zip(chains, chains[1:])]
    mean = statistics.fmean(growth)
    print(f"cycles: {sum(statuses.values())} ({statuses}), {elapsed:.0f} s of this machine")
    print(f"database after the first cycle: {sizes[0]:,} bytes; after {opts.days} day(s): {sizes[-1]:,} bytes")
    for day, grown in enumerate(growth):
        print(f"  day {day + 1} {(START + timedelta(days=day)):%a}: +{grown:,} bytes ({grown / 1e6:.3f} MB;"
              f" the chain {chain_growth[day] / 1e6:.3f} MB of it)")
    print(f"mean growth a day: {mean / 1e6:.3f} MB; largest day {max(growth) / 1e6:.3f} MB; "
          f"goal <= {GOAL_BYTES_A_DAY / 1e6:.1f} MB: ratio {max(growth) / GOAL_BYTES_A_DAY:.2f} (largest day / goal)")
    print(f"of which the record's chain: {statistics.fmean(chain_growth) / 1e6:.3f} MB a day (mean), "
          f"{max(chain_growth) / 1e6:.3f} MB the largest day")
    print("rows written (and the cycles they stand for):")
    for table in ("cycles", "ai_decisions", "quotes", "trades", "news", "daily_bars", "chain_links"):
        has_repeats = table in ("ai_decisions", "quotes")
        [count] = rows(db, f"SELECT COUNT(*) AS n{', SUM(1 + repeats) AS spans' if has_repeats else ''} FROM {table}")
        print(f"  {table}: {count['n']:,}" + (f" ({count['spans']:,})" if has_repeats else ""))

    cooldown = cycles.config.risk.reentry_cooldown_minutes
    exits = rows(db, "SELECT COUNT(*) AS n FROM ai_decisions WHERE outcome IN ('stop_loss', 'take_profit', 'trailing_stop')")[0]["n"]
    early = buys_in_cooldown(db, cooldown)
    print(f"protective exits: {exits}; buys within {cooldown:g} minutes after one: {len(early)}")
    for line in early:
        print(f"  {line}")
    spread = daily_moves(db)
    print("daily moves (standard deviation of close-to-close moves over the week, %):")
    in_range = True
    for symbol, value in sorted(spread.items()):
        low, high = CRYPTO_RANGE if "/" in symbol else STOCK_RANGE
        print(f"  {symbol}: {value:.2f} (about {low}-{high}; a week is a small sample)")
        in_range &= not math.isnan(value)
    verdict = verify(db)
    print(f"verify: {'intact' if verdict['ok'] else 'PROBLEMS'}, {verdict['links']:,} links"
          + "".join(f"\n  {p['message']}" for p in verdict["problems"][:5]))
    if opts.keep:
        print(f"kept: {folder}")
    else:
        shutil.rmtree(folder, ignore_errors=True)
    ok = (max(growth) <= GOAL_BYTES_A_DAY and not early and in_range and set(statuses) == {"completed"}
          and verdict["ok"])
    print("verdict:", "goal met" if ok else "goal MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
