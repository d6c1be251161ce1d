#!/usr/bin/env python3
"""Benchmark 10, backtest: cycles per second of `tradecycle backtest` at 1d and 1m over
15 symbols with the rules analyst, and one backtest cycle against the duration a live
sim cycle records (`cycles.duration_ms`), measured in the same run.

    python benchmarks/b10_backtest.py [--runs N] [--quick] [--keep]   # the same as run.py --only 10

Live: `tradecycle run` on the shipped offline world (sim market, sim broker, rules
analyst) over the same 15 symbols, `--runs` times after a warm-up; the figure is the
median of the `duration_ms` the cycles recorded (from the cycle's start to its end,
inside the process). Backtest: `tradecycle backtest --json` in a subprocess; its
`results.run_seconds` is the time of the loop of cycles alone (no start-up, no
history generation), so one backtest cycle is `run_seconds / run_cycles`. The two
are measured alternately. Target: a backtest cycle <= 0.5 of a live one (no process
start, no lock, no network per cycle). Also printed: a year of daily cycles, end to end.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import CRYPTO, STOCKS, FakeServices, Result, cli_env, fmt_runs, median, progress, run_alone, run_cli

UNIVERSE = {"stocks": STOCKS, "crypto": CRYPTO}


def _config(folder: Path) -> Path:
    """The shipped offline world (sim market and broker, rules analyst) over 15 symbols."""
    fake = FakeServices()  # never started: only its TOML writer is used
    return fake.config_toml(folder, universe=UNIVERSE, broker={"provider": "sim"}, market_data={"provider": "sim"},
                            news={"provider": "sim"}, ai={"provider": "rules"})


def _backtest(config: Path, start, end, interval: str, env) -> dict:
    out = config.parent / f"bt-{interval}.db"
    run = run_cli(["backtest", "--from", str(start), "--to", str(end), "--interval", interval, "--out", str(out), "--json",
                   "--config", str(config)], config.parent, env)
    shown = json.loads(run.stdout)
    shown["wall"] = run.wall
    return shown


def bench_backtest(opts, root: Path) -> Result:
    result = Result(10, "backtest: one cycle / a live sim cycle's duration_ms, 15 symbols, rules", "<= 0.5")
    env = cli_env(None)
    config = _config(root / "bt")
    live_config = _config(root / "live")
    today = datetime.now(UTC).date()
    progress("10: warm-up")
    run_cli(["run", "--config", str(live_config)], live_config.parent, env)
    live_ms, daily, minute = [], [], []
    for i in range(opts.runs):
        progress(f"10: run {i + 1}/{opts.runs}")
        before = _count(live_config.parent / "tradecycle.db")
        run_cli(["run", "--config", str(live_config)], live_config.parent, env)
        live_ms.append(_last_duration(live_config.parent / "tradecycle.db", before))
        daily.append(_backtest(config, today - timedelta(days=365), today, "1d", env))
        minute.append(_backtest(config, today - timedelta(days=2), today - timedelta(days=1), "1m", env))  # 1,440 cycles
    per_cycle = {name: [r["results"]["run_seconds"] / r["results"]["run_cycles"] * 1000 for r in runs]
                 for name, runs in (("1d", daily), ("1m", minute))}
    rates = {name: [1000 / ms for ms in values] for name, values in per_cycle.items()}
    result.add(f"  live sim cycle (`run`), recorded duration_ms   {median(live_ms):8.1f} ms   runs: {fmt_runs(live_ms)}")
    for name, runs in (("1d", daily), ("1m", minute)):
        cycles = runs[0]["results"]["run_cycles"]
        result.add(f"  backtest {name}: {cycles} cycles, {median(per_cycle[name]):6.1f} ms a cycle,"
                   f" {median(rates[name]):6.1f} cycles/s   runs (ms): {fmt_runs(per_cycle[name])}")
    year = [r["wall"] for r in daily]
    result.add(f"  a year of daily cycles over 15 symbols ({daily[0]['cycles']} cycles), whole command:"
               f" {median(year):.1f} s   runs: {fmt_runs(year)}")
    worst = max(median(per_cycle["1d"]), median(per_cycle["1m"]))
    result.add(f"  (the ratio uses the slower of the two intervals: {worst:.1f} ms)")
    result.compare(worst, median(live_ms), 0.5)
    return result


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM cycles").fetchone()[0]


def _last_duration(db: Path, before: int) -> float:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT duration_ms, status FROM cycles ORDER BY rowid").fetchall()
    if len(rows) != before + 1 or rows[-1][1] != "completed":
        raise RuntimeError(f"the live cycle did not complete: {rows[-1] if rows else None}")
    return float(rows[-1][0])


if __name__ == "__main__":
    run_alone(10)
