#!/usr/bin/env python3
"""Benchmark 2, fan-out: a 15-symbol hold cycle against a 1-symbol one (and, for information, buys).

    python benchmarks/b2_fan_out.py [--runs N] [--quick] [--keep]   # the same as run.py --only 2
"""

from __future__ import annotations

from pathlib import Path

from common import (CRYPTO, LATENCY, ONE_STOCK, STOCKS, BenchError, FakeServices, Result, Run, cli_env, copy_db,
                    fmt_runs, make_template, median_walls, pick_median, progress, reset_fake, run_alone, run_cycle,
                    setup_market, timeline, write_config)


# Small enough that every one of 15 buys passes the risk check (15 x 5% <= 100%).
RISK_ALL_BUYS = {"max_position_size_percent": 5, "max_total_exposure_percent": 100, "max_positions_count": 15}


def bench_fan_out(opts, root: Path) -> Result:
    result = Result(2, "fan-out: 15-symbol hold cycle / 1-symbol hold cycle", "<= 1.15")
    variants = {
        "1 stock, hold": (ONE_STOCK, [], "hold"),
        "15 symbols, hold": (STOCKS, CRYPTO, "hold"),
        "1 stock, buy": (ONE_STOCK, [], "buy"),
        "15 symbols, buy": (STOCKS, CRYPTO, "buy"),
    }
    runs: dict[str, list[Run]] = {name: [] for name in variants}
    orders: dict[str, list[int]] = {name: [] for name in variants}
    with FakeServices(latency_seconds=LATENCY) as fake:
        setup_market(fake)
        env = cli_env(fake)
        template = make_template(fake, root / "template", env)

        def once(name: str, folder: Path) -> Run:
            stocks, crypto, action = variants[name]
            write_config(fake, folder, stocks, crypto, risk=RISK_ALL_BUYS)
            copy_db(template, folder)
            reset_fake(fake)
            with fake.lock:
                fake.llm_decide = {s: (action, 0.9 if action == "buy" else 0.5, "benchmark") for s in [*stocks, *crypto]}
            run = run_cycle(fake, folder, env)
            posted = fake.count("alpaca", "POST", "/v2/orders")
            if action == "hold" and posted:
                raise BenchError(f"{name}: {posted} orders on a hold cycle")
            if action == "buy" and not posted:
                raise BenchError(f"{name}: no order placed")
            orders[name].append(posted)
            return run

        progress("2: warm-up")
        once("15 symbols, hold", root / "warmup")
        for i in range(opts.runs):  # the compared pair alternates, then the informational pair
            for name in variants:
                progress(f"2: run {i + 1}/{opts.runs}: {name}")
                runs[name].append(once(name, root / f"run{i}-{name.replace(' ', '').replace(',', '-')}"))

    medians = median_walls(runs)
    for name, rs in runs.items():
        extra = f" ({orders[name][-1]} orders)" if variants[name][2] == "buy" else ""
        result.add(f"  `run` {name + extra:<26} {medians[name]:7.3f} s   runs: {fmt_runs([r.wall for r in rs])}")
    for name in variants:
        result.add(f"  median run, {name}:")
        result.lines += timeline(pick_median(runs[name]), LATENCY)
    info = medians["15 symbols, buy"] / medians["1 stock, buy"]
    result.add(f"  for information: 15 buys / 1 buy = {medians['15 symbols, buy']:.3f} / {medians['1 stock, buy']:.3f}"
               f" = {info:.2f}")
    result.compare(medians["15 symbols, hold"], medians["1 stock, hold"], 1.15)
    return result


if __name__ == "__main__":
    run_alone(2)
