#!/usr/bin/env python3
"""Benchmark 9, shadows: a 15-symbol cycle with two [[ai.shadow]] analysts against one without.

    python benchmarks/b9_shadows.py [--runs N] [--quick] [--keep]   # the same as run.py --only 9
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path

from common import (CRYPTO, LATENCY, STOCKS, BenchError, FakeServices, Result, Run, alternate, cli_env, copy_db,
                    fmt_runs, make_template, median_walls, reset_fake, run_alone, run_cycle, setup_market, write_config)


def bench_shadows(opts, root: Path) -> Result:
    """Two shadows on the same (300 ms) server: asked at the same time as the main
    analyst, they should cost the cycle no extra round trip; and what a stored request weighs."""
    result = Result(9, "shadows: 15-symbol cycle with 2 shadows / without", "<= 1.15")
    shadows = [{"model": "shadow-a"}, {"model": "shadow-b", "temperature": 0.3}]
    runs: dict[str, list[Run]] = {"no shadow": [], "2 shadows": []}
    with FakeServices(latency_seconds=LATENCY) as fake:
        setup_market(fake)
        fake.llm_models = [fake.llm_model, "shadow-a", "shadow-b"]
        fake.llm_decide = {s: ("hold", 0.5, "benchmark") for s in [*STOCKS, *CRYPTO]}
        env = cli_env(fake)
        template = make_template(fake, root / "template", env)

        def once(name: str, folder: Path) -> Run:
            ai = {"shadow": shadows} if name == "2 shadows" else {}
            write_config(fake, folder, STOCKS, CRYPTO, ai=ai)
            copy_db(template, folder)
            reset_fake(fake)
            run = run_cycle(fake, folder, env)
            asked = Counter(r.json["model"] for r in run.requests if r.service == "openai" and r.json)
            expected = 15 if name == "no shadow" else 45
            if sum(asked.values()) != expected:
                raise BenchError(f"{name}: {dict(asked)} chat requests, expected {expected}")
            return run

        alternate(9, opts, root, once, runs, warm_up="2 shadows")
        sizes = sqlite3.connect(root / "warmup" / "tradecycle.db").execute(
            "SELECT COUNT(*), AVG(LENGTH(messages)) FROM ai_requests").fetchone()

    medians = median_walls(runs)
    for name, rs in runs.items():
        result.add(f"  `run` 15 symbols, {name:<10} {medians[name]:7.3f} s   runs: {fmt_runs([r.wall for r in rs])}")
    result.add(f"  stored requests after one cycle: {sizes[0]} (one per symbol, shared by the main and both shadows),"
               f" {sizes[1]:.0f} bytes each on average (zlib)")
    result.compare(medians["2 shadows"], medians["no shadow"], 1.15)
    return result


if __name__ == "__main__":
    run_alone(9)
