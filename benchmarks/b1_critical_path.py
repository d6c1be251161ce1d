#!/usr/bin/env python3
"""Benchmark 1, critical path: a 1-symbol buy cycle against CLI start-up + 4 round trips.

    python benchmarks/b1_critical_path.py [--runs N] [--quick] [--keep]   # the same as run.py --only 1
"""

from __future__ import annotations

from pathlib import Path

from common import (LATENCY, ONE_STOCK, BenchError, FakeServices, Result, cli_env, copy_db, fmt_runs, make_template,
                    median, pick_median, progress, reset_fake, run_alone, run_cli, run_cycle, setup_market, timeline,
                    write_config)


def bench_critical_path(opts, root: Path) -> Result:
    result = Result(1, "critical path: 1-symbol buy cycle / (start-up + 4 x 300 ms)", "<= 1.25")
    with FakeServices(latency_seconds=LATENCY) as fake:
        setup_market(fake)
        fake.llm_decide = {"AAPL": ("buy", 0.9, "breakout above the 20-day high")}
        env = cli_env(fake)
        template = make_template(fake, root / "template", env)

        def fresh(name: str) -> Path:
            folder = root / name
            write_config(fake, folder, ONE_STOCK, [])
            copy_db(template, folder)
            reset_fake(fake)
            return folder

        progress("1: warm-up")
        warm = fresh("warmup")
        run_cli(["killswitch", "--config", str(warm / "config.toml")], warm, env)
        run_cycle(fake, warm, env)
        switch_runs, cycle_runs = [], []
        for i in range(opts.runs):
            progress(f"1: run {i + 1}/{opts.runs}")
            folder = fresh(f"run{i}")
            switch_runs.append(run_cli(["killswitch", "--config", str(folder / "config.toml")], folder, env))
            cycle = run_cycle(fake, folder, env)
            posted = fake.count("alpaca", "POST", "/v2/orders")
            if posted != 1:
                raise BenchError(f"expected 1 order, the fake received {posted}")
            cycle_runs.append(cycle)

    startup = median([r.wall for r in switch_runs])
    floor = startup + 4 * LATENCY
    cycle_median = median([r.wall for r in cycle_runs])
    result.add(f"  `killswitch` (start-up)       {startup:7.3f} s   runs: {fmt_runs([r.wall for r in switch_runs])}")
    result.add(f"  floor = {startup:.3f} + 4 x {LATENCY:.3f}   {floor:7.3f} s")
    result.add(f"  `run` 1 stock, 1 order        {cycle_median:7.3f} s   runs: {fmt_runs([r.wall for r in cycle_runs])}")
    result.add("  median run:")
    result.lines += timeline(pick_median(cycle_runs), LATENCY)
    result.compare(cycle_median, floor, 1.25)
    return result


if __name__ == "__main__":
    run_alone(1)
