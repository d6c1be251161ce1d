#!/usr/bin/env python3
"""Benchmark 5, calls: calls per service over 3 cycles of an unchanged market.

    python benchmarks/b5_calls.py [--runs N] [--quick] [--keep]   # the same as run.py --only 5
"""

from __future__ import annotations

from pathlib import Path

from common import (CRYPTO, SERVICE_COLUMNS, STOCKS, FakeServices, Result, copy_db, count_calls, holding_market,
                    progress, run_alone, run_cycle, write_config)


def bench_calls(opts, root: Path) -> Result:
    result = Result(5, "calls: 3 cycles, unchanged market, 15 symbols, hold", "news <= 12, coingecko <= 1, LLM after 1st = 0")
    with FakeServices(latency_seconds=0.0) as fake:
        env, template, folder = holding_market(fake, root)
        write_config(fake, folder, STOCKS, CRYPTO)
        copy_db(template, folder)
        per_cycle = []
        for i in range(3):
            progress(f"5: cycle {i + 1}/3")
            per_cycle.append(count_calls(run_cycle(fake, folder, env).requests))
    header = "  " + "".join(f"{c:>16}" for c in ("",) + SERVICE_COLUMNS)
    result.add(header)
    for i, counts in enumerate(per_cycle, 1):
        result.add(f"  {'cycle ' + str(i):>16}" + "".join(f"{counts[c]:>16}" for c in SERVICE_COLUMNS))
    totals = {c: sum(p[c] for p in per_cycle) for c in SERVICE_COLUMNS}
    result.add(f"  {'total':>16}" + "".join(f"{totals[c]:>16}" for c in SERVICE_COLUMNS))
    news, gecko = totals["finnhub news"], totals["coingecko"]
    llm_later = per_cycle[1]["openai"] + per_cycle[2]["openai"]
    finnhub_peak = max(p["finnhub quotes"] + p["finnhub news"] for p in per_cycle)
    result.add(f"  Finnhub calls in the busiest cycle: {finnhub_peak} (free tier: 60 a minute)")
    # Three cycles a few seconds apart: CoinGecko once (market_data.coingecko.refresh_seconds), then stored prices.
    checks = [("news", news, 12), ("coingecko", gecko, 1), ("LLM in cycles 2-3", llm_later, 0)]
    result.passed = all(v <= limit for _, v, limit in checks)
    result.figure = f"news {news}, coingecko {gecko}, LLM later {llm_later}"
    result.add("  " + " | ".join(f"{name} {v} (<= {limit}): {'ok' if v <= limit else 'MISS'}" for name, v, limit in checks)
               + f": {result.verdict}")
    return result


if __name__ == "__main__":
    run_alone(5)
