"""End to end, the analyst's market context: the real ``tradecycle`` CLI against
the local fake of Alpaca (trading and market data) and an OpenAI-compatible
server, and offline on the shipped simulator config. Asserted: the requests
that reached the fake, the prompt the LLM received, the audit rows and what
``explain`` prints."""

from __future__ import annotations

import json

import numpy as np
import talib

from .e2e_helpers import E2E, describe, e2e, fake  # noqa: F401  (fixtures)
from .test_cli_commands import invoke, sim_config

STOCKS = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "AMD", "NFLX", "JPM", "V", "KO"]
CRYPTO = ["BTC/USD", "ETH/USD", "SOL/USD"]


def alpaca_data(e2e: E2E, stocks, crypto, **overrides):
    return e2e.configure(universe={"stocks": stocks, "crypto": crypto}, market_data={"provider": "alpaca"}, **overrides)


def market_data_calls(e2e: E2E) -> dict[str, int]:
    calls = e2e.fake.calls("alpaca_data")
    counts: dict[str, int] = {}
    for request in calls:
        counts[request.subpath] = counts.get(request.subpath, 0) + 1
    return counts


def test_fifteen_symbols_cost_two_snapshot_calls_and_bars_once_a_day(e2e):
    for symbol in STOCKS + CRYPTO:
        if symbol not in e2e.fake.prices:
            e2e.fake.set_price(symbol, "100")
            e2e.fake.set_daily_bars(symbol, [(99, 101, 98, 100, 1_000_000)] * 60)
    alpaca_data(e2e, STOCKS, CRYPTO, news={"provider": "none"})
    e2e.fake.llm_decide = {s: ("hold", 0.5, "wait") for s in STOCKS + CRYPTO}

    e2e.run()
    first = market_data_calls(e2e)
    e2e.fake.clear_requests()
    e2e.run()
    second = market_data_calls(e2e)

    assert first == {"/v2/stocks/snapshots": 1, "/v1beta3/crypto/us/snapshots": 1,
                     "/v2/stocks/bars": 1, "/v1beta3/crypto/us/bars": 1}
    assert second == {"/v2/stocks/snapshots": 1, "/v1beta3/crypto/us/snapshots": 1}
    assert e2e.fake.count("finnhub") == 0 and e2e.fake.count("coingecko") == 0
    assert all(r.query.get("feed") == "iex" for r in e2e.fake.calls("alpaca_data") if r.subpath.startswith("/v2/stocks"))
    sources = {d["quote_source"] for d in e2e.decisions().values()}
    assert sources == {"alpaca"}


def test_the_prompt_for_aapl_carries_what_talib_computes_and_explain_shows_it(e2e):
    rows = [(100 + i * 0.4, 101.5 + i * 0.4, 98.8 + i * 0.4, 100.2 + i * 0.4 + (1.2 if i % 4 == 0 else -0.6),
             2_000_000 + 50_000 * (i % 6)) for i in range(60)]
    e2e.fake.set_daily_bars("AAPL", rows)
    e2e.fake.set_price("AAPL", "125.40")
    e2e.fake.day_volumes["AAPL"] = 1_234_567
    alpaca_data(e2e, ["AAPL"], [])
    e2e.fake.llm_decide = {"AAPL": ("hold", 0.5, "wait")}
    e2e.run()

    bars = e2e.fake.daily_bars["AAPL"]
    closes = np.array([b["c"] for b in bars] + [125.40])
    volumes = np.array([float(b["v"]) for b in bars])
    rsi = talib.RSI(closes, timeperiod=14)[-1]
    sma_20 = talib.SMA(closes, timeperiod=20)[-1]
    sma_50 = talib.SMA(closes, timeperiod=50)[-1]
    ratio = 1_234_567 / talib.SMA(volumes, timeperiod=20)[-1]
    [request] = e2e.fake.calls("openai")
    prompt = request.json["messages"][1]["content"]
    for text in (f"RSI(14) {rsi:.2f}", f"SMA(20) {sma_20:.2f}", f"SMA(50) {sma_50:.2f}", f"volume ratio {ratio:.2f}"):
        assert text in prompt
    inputs = json.loads(e2e.decisions()["AAPL"]["inputs"])
    assert inputs["indicators"]["rsi_14"] == f"{rsi:.2f}" and inputs["indicators"]["volume_ratio"] == f"{ratio:.2f}"

    explained = e2e.cli("explain", "last")
    assert explained.returncode == 0, describe(explained)
    for text in (f"{rsi:.2f}", f"{sma_20:.2f}", f"{sma_50:.2f}", f"{ratio:.2f}", "indicators the analyst saw"):
        assert text in explained.stdout


def test_market_data_down_the_cycle_goes_on_and_says_indicators_unavailable(e2e):
    alpaca_data(e2e, ["AAPL"], ["BTC/USD"])
    e2e.fake.fail("/v2/stocks/bars", "status", status=500)
    e2e.fake.fail("/v1beta3/crypto/us/snapshots", "status", status=503)
    e2e.fake.llm_decide = {"AAPL": ("hold", 0.5, "wait")}
    result = e2e.run()

    assert "completed" in result.stdout
    decisions = e2e.decisions()
    assert decisions["BTC/USD"]["outcome"] == "no_quote"
    [request] = e2e.fake.calls("openai")
    assert "Indicators: unavailable (no daily bars stored yet)" in request.json["messages"][1]["content"]
    assert json.loads(decisions["AAPL"]["inputs"])["indicators"] is None
    notes = json.loads(e2e.last_cycle()["summary"])["notes"]
    assert any("daily bars unavailable" in n for n in notes)


def test_offline_run_then_explain_last_shows_indicators_for_every_symbol(tmp_path):
    config = sim_config(tmp_path)
    assert invoke("run", "--config", config).exit_code == 0

    result = invoke("explain", "last", "--config", config)

    assert result.exit_code == 0, result.output
    table = result.stdout.split("indicators the analyst saw", 1)[1].split("portfolio the analyst saw", 1)[0]
    for symbol in ("AAPL", "MSFT", "NVDA", "BTC/USD", "ETH/USD"):
        [line] = [row for row in table.splitlines() if row.startswith(f"{symbol} ")]
        cells = line.split()
        assert cells[0] == symbol and "unavailable" not in line
        assert all(cell not in ("", "-") for cell in cells[1:]), line  # every indicator has a value
    assert "portfolio the analyst saw: equity" in result.stdout
