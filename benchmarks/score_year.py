#!/usr/bin/env python3
"""`score` against `status` on the 90-day steady state of benchmarks/year.py (issue 25).

    .venv/bin/python benchmarks/score_year.py            # seeds (or reuses) /tmp/tradecycle-score90-v3.db
    .venv/bin/python benchmarks/score_year.py --runs 7 --reseed

The database is what `keep_days = 90` leaves of year.py's year: its last 90 days,
written by year.py's own seeder (one real 15-symbol cycle gives the shape of every
row), so 129,600 cycles, a quote a minute per open symbol, a fresh LLM decision
every 15 minutes, 10 fills a day. Two things a year.py cycle leaves out and the
verdict needs are set as a cycle of this version writes them: each cycle's
equity (cash plus the AAPL the fills bought, at its price); ``analyst`` only on
the decisions an analyst was asked for (year.py's seeder copies it from its
template onto every row, ``market_closed`` and ``unchanged`` included, which
``score`` would count as asked); and the fresh LLM decisions say buy, sell or
hold (a third each) rather than always hold, so the hit rates, the random
entry and the SPA test have decisions to work on.

Then `status --json` and `score --json` (statistics included: bootstrap, random
entry, SPA) run as CLI subprocesses, alternating, ``--runs`` times after a
warm-up; the medians and their ratio are printed. Target: score <= 10 x status.
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import sqlite3
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import common as bench  # noqa: E402
import year  # noqa: E402  (the year's seeder)

DB = Path(tempfile.gettempdir()) / "tradecycle-score90-v3.db"
DAYS = 90
TARGET = 10.0


def seed(db_path: Path, template: dict, now: datetime) -> None:
    conn = sqlite3.connect(db_path, isolation_level=None)
    seeder = year.Seeder(conn, template, random.Random(2026))
    start = (now - timedelta(days=DAYS)).replace(second=0, microsecond=0)
    year.seed_days(conn, seeder, start, DAYS, "seeding 90 days", every=15)
    bench.progress("equity per cycle, buy/sell/hold decisions")
    conn.execute("BEGIN")
    conn.execute("UPDATE ai_decisions SET analyst = NULL, prompt_hash = NULL, prompt_tokens = NULL, completion_tokens = NULL"
                 " WHERE outcome != 'hold'")
    conn.execute("UPDATE ai_decisions SET action = CASE id % 3 WHEN 0 THEN 'buy' WHEN 1 THEN 'sell' ELSE 'hold' END"
                 " WHERE outcome = 'hold' AND analyst IS NOT NULL")
    fills = conn.execute("SELECT executed_at, CAST(filled_qty AS REAL), CAST(filled_avg_price AS REAL) FROM trades"
                         " ORDER BY executed_at").fetchall()
    quotes = conn.execute("SELECT fetched_at, CAST(price AS REAL) FROM quotes WHERE symbol = 'AAPL' ORDER BY fetched_at").fetchall()
    cycles = conn.execute("SELECT cycle_id, started_at FROM cycles ORDER BY started_at").fetchall()
    cash, held, f, q, price, updates = 100000.0, 0.0, 0, 0, float(bench.PRICES["AAPL"]), []
    for cycle_id, started in cycles:
        while f < len(fills) and fills[f][0] <= started:
            held += fills[f][1]
            cash -= fills[f][1] * fills[f][2]
            f += 1
        while q < len(quotes) and quotes[q][0] <= started:
            price = quotes[q][1]
            q += 1
        updates.append((f"{cash + held * price:.2f}", cycle_id))
    conn.executemany("UPDATE cycles SET equity = ? WHERE cycle_id = ?", updates)
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="score vs status on 90 days at 15 symbols")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--reseed", action="store_true", help=f"rebuild {DB}")
    opts = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="tradecycle-score90-"))
    try:
        with bench.FakeServices(latency_seconds=0.0) as fake:
            base = root / "base"
            env = year.one_real_cycle(fake, base, DAYS)
            if opts.reseed or not DB.exists():
                shutil.copyfile(base / "tradecycle.db", DB)
                seed(DB, year.template_rows(base / "tradecycle.db"), datetime.now(UTC))
            print(f"90 days: {DB.stat().st_size / 1e6:.0f} MB: " + ", ".join(f"{n:,} {t}" for t, n in year.counts(DB).items()))
            folder = root / "ninety"
            bench.write_config(fake, folder, bench.STOCKS, bench.CRYPTO, database={"keep_days": DAYS})
            bench.copy_db(DB, folder)
            config = str(folder / "config.toml")
            commands = {"status": ["status", "--json"], "score": ["score", "--json"]}
            walls: dict[str, list[float]] = {c: [] for c in commands}
            cpus: dict[str, list[float]] = {c: [] for c in commands}
            for i in range(opts.runs + 1):  # the first round warms up
                bench.progress(f"run {i}/{opts.runs}")
                for name, args in commands.items():
                    before = resource.getrusage(resource.RUSAGE_CHILDREN)
                    run = bench.run_cli([*args, "--config", config], folder, env)
                    after = resource.getrusage(resource.RUSAGE_CHILDREN)
                    if i:
                        walls[name].append(run.wall)
                        cpus[name].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        score, status = bench.median(walls["score"]), bench.median(walls["status"])
        ratio = score / status
        print(f"score {score:.3f} s / status {status:.3f} s = {ratio:.1f} x (target <= {TARGET:.0f} x): "
              f"{'ok' if ratio <= TARGET else 'MISS'}   runs: {bench.fmt_runs(walls['score'])} | {bench.fmt_runs(walls['status'])}")
        # CPU seconds (user + system) of the same runs: what each command costs the machine, which
        # other work on a busy machine disturbs less than the wall time.
        cpu_score, cpu_status = bench.median(cpus["score"]), bench.median(cpus["status"])
        print(f"cpu: score {cpu_score:.3f} s / status {cpu_status:.3f} s = {cpu_score / cpu_status:.1f} x   "
              f"runs: {bench.fmt_runs(cpus['score'])} | {bench.fmt_runs(cpus['status'])}")
        return 0 if ratio <= TARGET else 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
