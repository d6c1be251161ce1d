#!/usr/bin/env python3
"""Benchmark 4, history: a cycle on a database with months of synthetic history against a fresh one.

    python benchmarks/b4_history.py [--runs N] [--quick] [--keep]   # the same as run.py --only 4
"""

from __future__ import annotations

import random
import shutil
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import (CRYPTO, PRICES, STOCKS, FakeServices, Result, Run, cli_env, copy_db, fmt_runs, median, progress,
                    reset_fake, run_alone, run_cycle, setup_market, write_config)


FULL_HISTORY = {"ai_decisions": 250_000, "cycles": 60_000, "trades": 20_000, "quotes": 250_000, "news": 7_200}
QUICK_HISTORY = {k: v // 5 for k, v in FULL_HISTORY.items()}
HISTORY_DAYS = 120

REASONINGS = [
    "Price consolidating near support; no catalyst in the headlines",
    "Momentum fading after a strong week; waiting for confirmation",
    "Breakout above the 20-day high on rising volume",
    "Earnings ahead; risk/reward does not justify a new position",
    "Negative sentiment in recent headlines; trimming exposure",
    "Sideways range, low volatility: nothing to do",
]
DECISION_MIX = [  # (action, outcome, weight)
    ("hold", "hold", 60), ("hold", "unchanged", 12), ("hold", "market_closed", 8), ("buy", "low_confidence", 5),
    ("buy", "ordered", 5), ("sell", "ordered", 2), ("sell", "no_position", 2), ("hold", "ai_unavailable", 2),
    ("buy", "exposure_limit_exceeded", 2), ("hold", "stale_quote", 1), ("buy", "dry_run", 1),
]
TRADE_STATUSES = [("filled", 85), ("canceled", 5), ("rejected", 4), ("expired", 3), ("dry_run", 3)]


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _price(symbol: str, rng: random.Random) -> str:
    return f"{float(PRICES[symbol]) * rng.uniform(0.85, 1.15):.2f}"


def build_history(db_path: Path, sizes: dict[str, int], now: datetime) -> None:
    """Bulk-insert synthetic history into a database that already has the schema (one transaction)."""
    from tradecycle.cycle.run import client_order_id  # the same id scheme as real trades

    rng = random.Random(20261125)
    symbols = STOCKS + CRYPTO
    start = now - timedelta(days=HISTORY_DAYS)
    step = (now - timedelta(minutes=5) - start) / sizes["cycles"]
    n_cycles = sizes["cycles"]
    cycles, starts = [], []
    for i in range(n_cycles):
        at = start + step * i
        cycle_id = f"{at:%Y-%m-%dT%H:%M}Z-{i & 0xFFFF:04x}"
        roll = rng.random()
        status = "completed" if roll < 0.93 or i > n_cycles - 10 else ("skipped" if roll < 0.98 else "aborted")
        error = {"skipped": "kill switch is on (daily loss limit)", "aborted": "broker unreachable (account): HTTP 503"}.get(status)
        duration = rng.randint(900, 2600)
        summary = '{"symbols": 15, "orders": 0, "errors": 0, "outcomes": {}, "notes": []}'
        cycles.append((cycle_id, _iso(at), _iso(at + timedelta(milliseconds=duration)), status, 0, error, duration,
                       15, 0, 1 if status == "aborted" else 0, summary))
        starts.append(at)

    decisions = []
    mix, weights = [m[:2] for m in DECISION_MIX], [m[2] for m in DECISION_MIX]
    for j in range(sizes["ai_decisions"]):
        c = j * n_cycles // sizes["ai_decisions"]
        symbol = symbols[j % len(symbols)]
        action, outcome = rng.choices(mix, weights)[0]
        price = _price(symbol, rng)
        reasoning = rng.choice(REASONINGS)
        confidence = round(rng.uniform(0.3, 0.95), 2)
        inputs = (f'{{"symbol": "{symbol}", "price": "{price}", "quote_age_seconds": 1, "quote_source": '
                  f'"{"coingecko" if "/" in symbol else "finnhub"}", "change_percent": "0.42", "position_qty": null, '
                  f'"recent_prices_count": 10, "headlines": [{{"id": "{7000000 + j}", "title": "{symbol} shares '
                  f'edge higher ahead of earnings"}}]}}')
        raw = (f'{{"decisions": [{{"symbol": "{symbol}", "action": "{action}", "confidence": {confidence}, '
               f'"reasoning": "{reasoning}"}}]}}')
        decisions.append((cycles[c][0], symbol, action, confidence, reasoning, "gpt-4o-mini", outcome,
                          _iso(starts[c] + timedelta(seconds=1)), price, 1.2, "finnhub" if "/" not in symbol else "coingecko",
                          inputs, raw, rng.randint(400, 2500), rng.randint(350, 600), rng.randint(20, 60), outcome))

    trades = []
    statuses, tweights = [s for s, _ in TRADE_STATUSES], [w for _, w in TRADE_STATUSES]
    for k in range(sizes["trades"]):
        c = k * n_cycles // sizes["trades"]
        symbol = symbols[rng.randrange(len(symbols))]
        status = rng.choices(statuses, tweights)[0]
        price = _price(symbol, rng)
        at = _iso(starts[c] + timedelta(seconds=2))
        notional = f"{rng.uniform(500, 5000):.2f}"
        filled = status == "filled"
        qty = f"{float(notional) / float(price):.6f}"
        trades.append((cycles[c][0], symbol, rng.choice(["buy", "buy", "sell"]), qty if filled else None, price, status,
                       client_order_id(cycles[c][0], symbol), None if status == "dry_run" else f"ord-{k:08d}",
                       at if filled else None, None if status != "rejected" else "insufficient buying power",
                       at, at, notional, int(status == "dry_run"), qty if filled else None, price if filled else None))

    quotes = []
    for q in range(sizes["quotes"]):
        c = q * n_cycles // sizes["quotes"]
        symbol = symbols[q % len(symbols)]
        at = _iso(starts[c])
        quotes.append((cycles[c][0], symbol, _price(symbol, rng), at, "coingecko" if "/" in symbol else "finnhub",
                       "0.42", None, at))

    news = []
    for n in range(sizes["news"]):
        symbol = STOCKS[n % len(STOCKS)]
        at = _iso(start + (now - start) * (n / sizes["news"]))
        news.append((symbol, f"hist-{n}", f"{symbol}: {rng.choice(REASONINGS)}", "More details inside.", "Reuters",
                     f"https://news.example.com/{symbol.lower()}/hist-{n}", at, at))

    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO cycles (cycle_id, started_at, finished_at, status, dry_run, error, duration_ms, symbols_count,"
            " orders_count, errors_count, summary) VALUES (?,?,?,?,?,?,?,?,?,?,?)", cycles)
        conn.executemany(
            "INSERT INTO ai_decisions (cycle_id, symbol, action, confidence, reasoning, model, outcome, created_at, price,"
            " quote_age_seconds, quote_source, inputs, raw_reply, latency_ms, prompt_tokens, completion_tokens, detail)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", decisions)
        conn.executemany(
            "INSERT INTO trades (cycle_id, symbol, side, quantity, price, status, client_order_id, broker_order_id,"
            " executed_at, notes, created_at, updated_at, notional_usd, dry_run, filled_qty, filled_avg_price)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", trades)
        conn.executemany(
            "INSERT INTO quotes (cycle_id, symbol, price, as_of, source, change_percent, previous_close, fetched_at)"
            " VALUES (?,?,?,?,?,?,?,?)", quotes)
        conn.executemany(
            "INSERT OR IGNORE INTO news (symbol, news_id, headline, summary, source, url, published_at, fetched_at)"
            " VALUES (?,?,?,?,?,?,?,?)", news)
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def table_counts(db_path: Path) -> dict[str, int]:
    conn = sqlite3.connect(db_path)
    try:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("ai_decisions", "cycles", "trades", "quotes", "news")}
    finally:
        conn.close()


def bench_history(opts, root: Path) -> Result:
    result = Result(4, "history: cycle on a big database / cycle on a fresh one (0 ms latency)", "<= 1.1")
    sizes = QUICK_HISTORY if opts.quick else FULL_HISTORY
    with FakeServices(latency_seconds=0.0) as fake:
        setup_market(fake)
        fake.llm_decide = {s: ("hold", 0.5, "benchmark") for s in STOCKS + CRYPTO}
        env = cli_env(fake)

        base = root / "base"
        write_config(fake, base, STOCKS, CRYPTO)
        progress("4: one real cycle for the schema")
        run_cycle(fake, base, env)  # schema + one real cycle (also fetches the news, for both databases)
        fresh_db, big_db = root / "fresh.db", root / "big.db"
        shutil.copyfile(base / "tradecycle.db", fresh_db)
        shutil.copyfile(base / "tradecycle.db", big_db)
        progress(f"4: building the big database ({sizes['ai_decisions']:,} decisions)")
        t = time.perf_counter()
        build_history(big_db, sizes, datetime.now(UTC))  # built once, copied for every run
        built = time.perf_counter() - t
        counts = table_counts(big_db)
        result.add(f"  big database: {big_db.stat().st_size / 1e6:.0f} MB, built in {built:.1f} s: "
                   + ", ".join(f"{n:,} {t}" for t, n in counts.items()))

        def once(template: Path, folder: Path) -> Run:
            # Both databases must take the same path through the cycle: the fresh one's last
            # decisions are holds that would stand unchanged (no LLM call), the big one's are
            # synthetic. A tiny decision age makes every symbol analysed in both.
            # keep_days = 0: this measures reading a big history; pruning one is year.py's business.
            write_config(fake, folder, STOCKS, CRYPTO, ai={"max_decision_age_minutes": 0.001}, database={"keep_days": 0})
            copy_db(template, folder)
            reset_fake(fake)
            return run_cycle(fake, folder, env)

        progress("4: warm-up")
        once(fresh_db, root / "warm-fresh")
        once(big_db, root / "warm-big")
        fresh_runs, big_runs = [], []
        count = 2 * opts.runs  # a 0-latency cycle is short and noisy: twice the runs, still cheap
        for i in range(count):
            progress(f"4: run {i + 1}/{count}")
            fresh_runs.append(once(fresh_db, root / f"run{i}-fresh"))
            big_runs.append(once(big_db, root / f"run{i}-big"))
            shutil.rmtree(root / f"run{i}-big")  # do not keep copies of the big file around

    a, b = median([r.wall for r in big_runs]), median([r.wall for r in fresh_runs])
    result.add(f"  `run` 15 symbols, big database   {a:7.3f} s   runs: {fmt_runs([r.wall for r in big_runs])}")
    result.add(f"  `run` 15 symbols, fresh database {b:7.3f} s   runs: {fmt_runs([r.wall for r in fresh_runs])}")
    for name, rs in (("big", big_runs), ("fresh", fresh_runs)):
        pre = median([min(q.time for q in r.requests) - r.t0 for r in rs])
        post = median([r.t1 - max(q.time for q in r.requests) for r in rs])
        result.add(f"    {name:<5}: start-up to first request {pre:.3f} s, last request to exit {post:.3f} s")
    result.compare(a, b, 1.1)
    return result


if __name__ == "__main__":
    run_alone(4)
