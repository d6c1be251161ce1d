"""CoinGecko within its monthly quota: cycles on a simulated clock against the fake
services (tests/simulated.py) count the calls that reached CoinGecko, and show
what a re-used price may and may not do."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from tradecycle.cli import cli

from .e2e_helpers import fake, merge  # noqa: F401  (fake: a fixture)
from .simulated import SimulatedCycles

CRYPTO_ONLY = {"stocks": [], "crypto": ["BTC/USD"]}
QUIET = {"news": {"provider": "none"}, "cycle": {"max_retries": 0}}


def settings(*, refresh_seconds: float = 360, universe=None, **overrides) -> dict:
    coingecko = {"ids": {"BTC/USD": "bitcoin", "ETH/USD": "ethereum"}, "refresh_seconds": refresh_seconds}
    base = QUIET | {"universe": universe or {"stocks": ["AAPL"], "crypto": ["BTC/USD"]}, "market_data": {"coingecko": coingecko}}
    return merge(base, overrides)


def cycles(fake, tmp_path, **options) -> SimulatedCycles:
    return SimulatedCycles(fake, tmp_path, **settings(**options))


def log_events(sim: SimulatedCycles, cycle_id: str) -> list[dict]:
    lines = sim.log_path.read_text(encoding="utf-8").splitlines()
    return [e for e in map(json.loads, lines) if e.get("cycle_id") == cycle_id]


@pytest.mark.parametrize("refresh_seconds", [60, 120, 360, 600])
def test_ten_minutes_of_cycles_call_coingecko_once_per_refresh(fake, tmp_path, refresh_seconds):
    sim = cycles(fake, tmp_path, refresh_seconds=refresh_seconds)

    reports = sim.run_every(60, count=10)  # t = 0, 60, ..., 540 s: ten minutes of cron

    assert [r.status for r in reports] == ["completed"] * 10
    assert fake.count("coingecko") == math.ceil(600 / refresh_seconds)
    assert fake.count("finnhub", path_prefix="/finnhub/quote") == 10  # stock quotes are not throttled


@pytest.mark.parametrize("age_seconds, outcome, orders", [(60, "ordered", 1), (180, "stale_quote", 0)])
def test_a_reused_price_drives_a_buy_only_while_younger_than_max_quote_age(fake, tmp_path, age_seconds, outcome, orders):
    # A hold younger than max_decision_age would stand unchanged (a stored price never moves).
    sim = cycles(fake, tmp_path, universe=CRYPTO_ONLY, cycle={"max_quote_age_seconds": 120}, ai={"max_decision_age_minutes": 0.5})
    fake.llm_decide = {"BTC/USD": ("hold", 0.5, "waiting")}
    sim.run()  # fetches BTC at t = 0
    fake.llm_decide = {"BTC/USD": ("buy", 0.9, "breakout")}

    sim.clock.advance(age_seconds)
    report = sim.run()

    row = sim.decision(report.cycle_id, "BTC/USD")
    assert (row["outcome"], row["quote_source"]) == (outcome, "cache")
    assert round(row["quote_age_seconds"]) == age_seconds
    assert len(fake.orders_posted()) == orders
    assert fake.count("coingecko") == 1


def test_a_fetch_that_is_not_due_is_logged_as_such_not_as_a_failure(fake, tmp_path):
    sim = cycles(fake, tmp_path, universe=CRYPTO_ONLY)
    sim.run()
    sim.clock.advance(60)

    report = sim.run()

    events = log_events(sim, report.cycle_id)
    [reused] = [e for e in events if e["event"] == "quotes.reused"]
    assert reused["source"] == "coingecko" and reused["next_fetch_in_seconds"] == 360 - 10 - 60
    assert "fetch not due (market_data.coingecko.refresh_seconds = 360)" in reused["message"]
    assert [e for e in events if e["event"] == "cycle.note"] == []
    assert report.notes == ()


def test_a_failed_fetch_is_tried_again_on_the_next_cycle(fake, tmp_path):
    sim = cycles(fake, tmp_path, universe=CRYPTO_ONLY)
    fake.fail("coingecko", "status", times=1, status=503)

    first, second, third = sim.run_every(60, count=3)

    assert sim.decision(first.cycle_id, "BTC/USD")["outcome"] == "no_quote"
    assert sim.decision(second.cycle_id, "BTC/USD")["quote_source"] == "coingecko"
    assert sim.decision(third.cycle_id, "BTC/USD")["quote_source"] == "cache"
    assert fake.count("coingecko") == 2  # the failure, the retry a cycle later; then the stored price


def test_a_clock_set_back_does_not_stop_the_fetches(fake, tmp_path):
    sim = cycles(fake, tmp_path, universe=CRYPTO_ONLY)
    sim.run()

    sim.clock.advance(-3600)
    report = sim.run()

    assert fake.count("coingecko") == 2
    assert sim.decision(report.cycle_id, "BTC/USD")["quote_source"] == "coingecko"


def test_a_coin_added_between_fetches_waits_for_the_next_fetch(fake, tmp_path):
    sim = cycles(fake, tmp_path, universe=CRYPTO_ONLY)
    sim.run()
    sim.configure(**settings(universe={"stocks": [], "crypto": ["BTC/USD", "ETH/USD"]}))
    sim.clock.advance(60)

    waiting = sim.run()
    sim.clock.advance(300)
    fetched = sim.run()

    row = sim.decision(waiting.cycle_id, "ETH/USD")
    assert row["outcome"] == "no_quote" and "next fetch in about" in row["detail"]
    assert sim.decision(waiting.cycle_id, "BTC/USD")["quote_source"] == "cache"
    assert sim.decision(fetched.cycle_id, "ETH/USD")["quote_source"] == "coingecko"
    assert fake.count("coingecko") == 2


@pytest.mark.parametrize("value, message", [
    ("0", "must be > 0"),
    ("-60", "must be > 0"),
    ("100000", "must be <= 86400"),
    ("nan", "must be a finite number"),
    ("true", "must be a number or text, not true/false"),
    ('"360"', "Input should be a valid number"),
])
def test_a_bad_refresh_seconds_exits_2_naming_the_key(tmp_path, value, message):
    config = tmp_path / "config.toml"
    config.write_text(f"[market_data.coingecko]\nrefresh_seconds = {value}\n", encoding="utf-8")

    result = CliRunner().invoke(cli, ["run", "--config", str(config)])

    assert result.exit_code == 2
    assert f"market_data.coingecko.refresh_seconds: {message}" in result.output
    assert not (tmp_path / "tradecycle.db").exists()


def test_the_pro_api_needs_a_key(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[market_data]\nprovider = "live"\n[market_data.coingecko]\n'
                      'base_url = "https://pro-api.coingecko.com/api/v3"\n', encoding="utf-8")

    result = CliRunner().invoke(cli, ["run", "--config", str(config)], env={"FINNHUB_API_KEY": "f", "COINGECKO_API_KEY": ""})

    assert result.exit_code == 2
    assert "COINGECKO_API_KEY" in result.output and "pro-api.coingecko.com" in result.output


def test_a_reused_price_is_not_shown_to_the_analyst_as_a_new_observation(fake, tmp_path):
    sim = cycles(fake, tmp_path, universe=CRYPTO_ONLY, ai={"max_decision_age_minutes": 0.5})
    fake.set_price("BTC/USD", "67000.1")
    sim.run()
    fake.set_price("BTC/USD", "68000")  # not seen until the next fetch

    sim.run_every(60, count=3)  # t = 60, 120, 180: stored prices, the analyst asked each time

    [*_, last] = [json.dumps(r.json) for r in fake.calls(service="openai")]
    recent = last.split("Recent prices (UTC time: price), oldest first: ")[1].split("\\n")[0]
    assert recent.count("67000.1") == 1  # one observation, not one per cycle that re-used it
    assert "68000" not in last
    assert fake.count("coingecko") == 1
