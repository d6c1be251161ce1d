#!/usr/bin/env python3
"""Benchmark 8, wide fan-out: a 100-symbol hold cycle against a 1-symbol one.

    python benchmarks/b8_wide_fan_out.py [--runs N] [--quick] [--keep]   # the same as run.py --only 8
"""

from __future__ import annotations

from pathlib import Path

from common import (CRYPTO, LATENCY, ONE_STOCK, STOCKS, BenchError, FakeServices, Result, Run, alternate, cli_env,
                    copy_db, fmt_runs, make_template, median_walls, pick_median, reset_fake, run_alone, run_cycle,
                    setup_market, timeline, write_config)


WIDE_STOCKS = STOCKS + [f"T{i:02d}" for i in range(100 - len(STOCKS) - len(CRYPTO))]  # 97 stocks + 3 crypto


def bench_wide(opts, root: Path) -> Result:
    result = Result(8, "wide fan-out: 100-symbol hold cycle / 1-symbol hold cycle", "<= 1.5")
    variants = {"1 stock": (ONE_STOCK, []), "100 symbols": (WIDE_STOCKS, CRYPTO)}
    runs: dict[str, list[Run]] = {name: [] for name in variants}
    with FakeServices(latency_seconds=LATENCY) as fake:
        setup_market(fake)
        for symbol in WIDE_STOCKS[len(STOCKS):]:
            fake.set_price(symbol, "100.00")
        with fake.lock:
            fake.llm_decide = {s: ("hold", 0.5, "benchmark") for s in [*WIDE_STOCKS, *CRYPTO]}
        env = cli_env(fake)
        template = make_template(fake, root / "template", env)

        def once(name: str, folder: Path) -> Run:
            stocks, crypto = variants[name]
            write_config(fake, folder, stocks, crypto)
            copy_db(template, folder)
            reset_fake(fake)
            run = run_cycle(fake, folder, env)
            if fake.count("alpaca", "POST", "/v2/orders"):
                raise BenchError(f"{name}: an order on a hold cycle")
            return run

        alternate(8, opts, root, once, runs, warm_up="100 symbols")
    medians = median_walls(runs)
    for name, rs in runs.items():
        result.add(f"  `run` {name:<26} {medians[name]:7.3f} s   runs: {fmt_runs([r.wall for r in rs])}")
        result.add(f"  median run, {name}:")
        result.lines += timeline(pick_median(rs), LATENCY)
    result.compare(medians["100 symbols"], medians["1 stock"], 1.5)
    return result


if __name__ == "__main__":
    run_alone(8)
