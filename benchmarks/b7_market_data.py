#!/usr/bin/env python3
"""Benchmark 7, market data: calls to Alpaca's data API over 3 cycles, market_data.provider = "alpaca".

    python benchmarks/b7_market_data.py [--runs N] [--quick] [--keep]   # the same as run.py --only 7
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from common import (COIN_IDS, CRYPTO, STOCKS, BenchError, FakeServices, Result, copy_db, holding_market, label,
                    progress, run_alone, run_cycle)


def bench_market_data(opts, root: Path) -> Result:
    result = Result(7, 'market data: 3 cycles, 15 symbols, market_data.provider = "alpaca"',
                    "2 snapshot calls a cycle, <= 1 bars call per class a day")
    with FakeServices(latency_seconds=0.0) as fake:
        env, template, folder = holding_market(fake, root)
        folder.mkdir(parents=True, exist_ok=True)
        fake.config_toml(folder, universe={"stocks": STOCKS, "crypto": CRYPTO},
                         market_data={"provider": "alpaca", "coingecko": {"base_url": fake.coingecko_url, "ids": COIN_IDS}})
        copy_db(template, folder)
        per_cycle = []
        for i in range(3):
            progress(f"7: cycle {i + 1}/3")
            run = run_cycle(fake, folder, env)
            per_cycle.append(Counter(label(r) for r in run.requests if r.service == "alpaca_data"))
            other = [r for r in run.requests if r.service == "coingecko" or (r.service == "finnhub" and label(r) == "quote")]
            if other:
                raise BenchError(f"{len(other)} Finnhub/CoinGecko quote calls with market_data.provider = alpaca")
    for i, counts in enumerate(per_cycle, 1):
        result.add(f"  cycle {i}: snapshots {counts['snapshots']}, bars {counts['bars']}")
    snapshots = [c["snapshots"] for c in per_cycle]
    bars = sum(c["bars"] for c in per_cycle)
    result.passed = all(n == 2 for n in snapshots) and bars <= 2
    result.figure = f"snapshots {'/'.join(map(str, snapshots))}, bars {bars} in 3 cycles"
    result.add(f"  snapshot calls per cycle {snapshots} (== 2 each), bars calls in all {bars} (<= 2: stocks + crypto, "
               f"once a day): {result.verdict}")
    return result


if __name__ == "__main__":
    run_alone(7)
