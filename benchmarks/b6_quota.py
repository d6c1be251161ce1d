#!/usr/bin/env python3
"""Benchmark 6, quotas: calls per 30 days per service at the default config, on a simulated clock.

    python benchmarks/b6_quota.py [--runs N] [--quick] [--keep]   # the same as run.py --only 6
"""

from __future__ import annotations

from pathlib import Path

from common import (COIN_IDS, CRYPTO, STOCKS, BenchError, FakeServices, Result, count_calls, progress, run_alone,
                    setup_market)
from tests.simulated import SimulatedCycles


MINUTES_PER_30_DAYS = 30 * 24 * 60
# row -> (columns counted together, per-minute limit, per-30-days limit) of its free tier; None: none published.
# Finnhub's 60 a minute is one budget for quotes and news together (one key).
FREE_TIERS = {
    "Finnhub quotes": (("finnhub quotes",), None, None),
    "Finnhub news": (("finnhub news",), None, None),
    "Finnhub, both": (("finnhub quotes", "finnhub news"), 60, None),
    "CoinGecko": (("coingecko",), 30, 10_000),
    "Alpaca": (("alpaca",), 200, None),
    "LLM": (("openai",), None, None),
}
COINGECKO_MONTH_TARGET = 8_000  # the demo quota with room to spare


def bench_quota(opts, root: Path) -> Result:
    result = Result(6, "quota: calls per 30 days per service, default config, 15 symbols, cron every minute",
                    f"free tiers, CoinGecko <= {COINGECKO_MONTH_TARGET:,}")
    minutes = 60 if opts.quick else 120
    with FakeServices(latency_seconds=0.0) as fake:
        setup_market(fake)
        fake.llm_decide = {s: ("hold", 0.5, "benchmark") for s in STOCKS + CRYPTO}
        sim = SimulatedCycles(fake, root / "quota", universe={"stocks": STOCKS, "crypto": CRYPTO},
                              market_data={"coingecko": {"ids": COIN_IDS}})
        per_minute = []
        for minute in range(minutes):
            if minute % 20 == 0:
                progress(f"6: simulated minute {minute + 1}/{minutes}")
            if minute:
                sim.clock.advance(60)
            fake.clear_requests()
            report = sim.run()
            if report.status != "completed":
                raise BenchError(f"simulated minute {minute}: the cycle {report.status}: {report.error}")
            per_minute.append(count_calls(fake.calls()))
            if fake.errors:
                raise BenchError(f"the fake server hit a bug: {fake.errors[-1].strip().splitlines()[-1]}")

    scale = MINUTES_PER_30_DAYS / minutes
    result.add(f"  {minutes} one-minute cycles on a simulated clock: market open, prices unchanged, the LLM holds;")
    result.add("  default keys (news.refresh_minutes 15, market_data.coingecko.refresh_seconds 360,")
    result.add(f"  ai.max_decision_age_minutes 15). Per 30 days = calls x {scale:g}.")
    result.add(f"  {'service':<16}{'calls':>7}{'busiest minute':>16}{'per 30 days':>13}   free tier")
    verdicts, figure = [], {}
    for service, (columns, per_min_limit, month_limit) in FREE_TIERS.items():
        calls = sum(p[c] for p in per_minute for c in columns)
        busiest = max(sum(p[c] for c in columns) for p in per_minute)
        month = round(calls * scale)
        limit = month_limit if service != "CoinGecko" else COINGECKO_MONTH_TARGET
        ok = (per_min_limit is None or busiest <= per_min_limit) and (limit is None or month <= limit)
        tier = ", ".join(x for x in (f"{per_min_limit}/min" if per_min_limit else "",
                                     f"{month_limit:,}/month" if month_limit else "") if x)
        verdict = ("ok" if ok else "OVER") if tier else ""
        tier = tier or ("paid per call" if service == "LLM" else "see Finnhub, both")
        verdicts.append(ok)
        figure[service] = (busiest, month)
        result.add(f"  {service:<16}{calls:>7}{busiest:>16}{month:>13,}   {tier} {verdict}".rstrip())
    result.passed = all(verdicts)
    result.figure = (f"CoinGecko {figure['CoinGecko'][1]:,}/30 d, Finnhub {figure['Finnhub, both'][0]}/min, "
                     f"Alpaca {figure['Alpaca'][0]}/min")
    result.add(f"  within every free tier, CoinGecko <= {COINGECKO_MONTH_TARGET:,} in 30 days: {result.verdict}")
    return result


if __name__ == "__main__":
    run_alone(6)
