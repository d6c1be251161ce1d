"""``tradecycle backtest`` on Alpaca's history, end to end against the fake
server: bars of many symbols a call and news, both paged; kept in the output
database so that the next run asks Alpaca nothing."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from .fakeserver import FakeServices
from .test_backtest_cli import invoke, rows, write_config

NEW_YORK = ZoneInfo("America/New_York")
FIRST, LAST = date(2023, 11, 1), date(2024, 3, 20)


def _days(crypto: bool) -> list[date]:
    days, day = [], FIRST
    while day <= LAST:
        if crypto or day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def _daily(symbol: str, base: float) -> list[tuple]:
    crypto = "/" in symbol
    bars = []
    for k, day in enumerate(_days(crypto)):
        t = datetime(day.year, day.month, day.day, tzinfo=UTC if crypto else NEW_YORK)  # Alpaca stamps a bar at its open
        close = round(base * (1 + k / 400 + math.sin(k / 3) / 40), 2)
        bars.append((t, close * 0.995, close * 1.01, close * 0.985, close, 1000 + k))
    return bars


@pytest.fixture
def fake():
    with FakeServices() as services:
        for symbol, base in (("AAPL", 180.0), ("MSFT", 400.0), ("BTC/USD", 60000.0)):
            services.set_history_bars(symbol, "1Day", _daily(symbol, base))
        services.bars_page_size = 40  # about 300 stock bars: several pages, each with both symbols' bars in turn
        services.news_page_size = 2
        for k in range(5):
            services.add_alpaca_news(["AAPL"], f"Apple headline {k}", datetime(2024, 3, 4 + k, 13, 0, tzinfo=UTC))
        services.add_alpaca_news(["BTCUSD", "ETHUSD"], "Bitcoin headline", datetime(2024, 3, 5, 9, 0, tzinfo=UTC))
        services.add_alpaca_news(["AAPL"], "Apple headline long before", datetime(2023, 6, 1, 9, 0, tzinfo=UTC))
        yield services


def _config(tmp_path, fake):
    return write_config(tmp_path, universe={"stocks": ["AAPL", "MSFT"], "crypto": ["BTC/USD"]},
                        market_data={"provider": "alpaca", "alpaca": {"data_url": fake.alpaca_data_url}})


KEYS = {"APCA_API_KEY_ID": "key-id", "APCA_API_SECRET_KEY": "secret-key"}


def test_alpaca_history_paged_bars_and_news_then_kept_for_the_next_run(tmp_path, fake):
    config = _config(tmp_path, fake)
    result = invoke("backtest", "--from", "2024-03-04", "--to", "2024-03-09", "--config", config, env=KEYS)
    assert result.exit_code == 0, result.stderr
    stock_calls = fake.calls("alpaca_data", "GET", "/v2/stocks/bars")
    crypto_calls = fake.calls("alpaca_data", "GET", "/v1beta3/crypto/us/bars")
    news_calls = fake.calls("alpaca_data", "GET", "/v1beta1/news")
    # One call per asset class per page: every stock call names both stocks, none names a coin.
    assert len(stock_calls) > 3 and all(c.query["symbols"] == "AAPL,MSFT" for c in stock_calls)
    assert all(c.query["feed"] == "iex" and c.query["timeframe"] == "1Day" for c in stock_calls)
    assert [bool(c.query.get("page_token")) for c in stock_calls] == [False] + [True] * (len(stock_calls) - 1)
    assert crypto_calls and all(c.query["symbols"] == "BTC/USD" for c in crypto_calls)
    assert len(news_calls) == 3 and news_calls[0].query["symbols"] == "AAPL,MSFT,BTCUSD"  # 6 items, 2 a page
    out = tmp_path / "backtest.db"
    stored = rows(out, "SELECT symbol, COUNT(*) AS n FROM backtest_bars GROUP BY symbol ORDER BY symbol")
    warmup = datetime(2024, 3, 4, tzinfo=UTC) - timedelta(days=100)  # daily bars for the indicators
    served = {s: sum(1 for b in _daily(s, 1.0) if warmup <= b[0] <= datetime(2024, 3, 9, tzinfo=UTC))  # Alpaca's end is inclusive
              for s in ("AAPL", "BTC/USD", "MSFT")}
    assert {r["symbol"]: r["n"] for r in stored} == served
    # The cycles: stocks at each session's close (21:00Z in winter), the coin at each UTC midnight.
    cycles = [r["started_at"] for r in rows(out, "SELECT started_at FROM cycles ORDER BY started_at")]
    assert "2024-03-04T21:00:00Z" in cycles and "2024-03-08T21:00:00Z" in cycles and "2024-03-05T00:00:00Z" in cycles
    # A quote at a session's close is that day's close, never the next day's.
    aapl = {b[0].astimezone(UTC).date(): b[4] for b in _daily("AAPL", 180.0)}
    quote = rows(out, "SELECT price FROM quotes WHERE symbol = 'AAPL' AND fetched_at = '2024-03-05T21:00:00Z'")[0]
    assert float(quote["price"]) == pytest.approx(aapl[date(2024, 3, 5)])
    # Headlines reached the cycles only after they were published.
    seen = rows(out, "SELECT n.headline, n.published_at, n.fetched_at FROM news n ORDER BY published_at")
    assert {r["headline"] for r in seen} >= {"Apple headline 0", "Bitcoin headline"}
    assert all(r["published_at"] < r["fetched_at"] for r in seen)
    calls_before = len(fake.calls("alpaca_data"))

    again = invoke("backtest", "--from", "2024-03-04", "--to", "2024-03-09", "--config", config, env=KEYS)
    assert again.exit_code == 0, again.stderr
    assert len(fake.calls("alpaca_data")) == calls_before  # everything came from the output database
    assert again.stdout.splitlines()[0] == result.stdout.splitlines()[0]


def test_alpaca_unreachable_stops_the_backtest_with_exit_1_and_one_line(tmp_path, fake):
    config = write_config(tmp_path, universe={"stocks": ["AAPL", "MSFT"], "crypto": ["BTC/USD"]},
                          market_data={"provider": "alpaca", "alpaca": {"data_url": fake.alpaca_data_url}},
                          cycle={"max_retries": 1, "retry_base_delay_seconds": 0.01, "retry_max_delay_seconds": 0.05})
    fake.fail("alpaca_data", "status", status=500)
    result = invoke("backtest", "--from", "2024-03-04", "--to", "2024-03-09", "--config", config, env=KEYS)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "alpaca-data" in result.stderr
    assert not rows(tmp_path / "backtest.db", "SELECT cycle_id FROM cycles")  # not one cycle on missing history


def test_alpaca_intraday_bars_close_an_interval_after_their_stamp(tmp_path, fake):
    start = datetime(2024, 3, 4, tzinfo=UTC)
    hourly = [(start + timedelta(hours=k), 60000 + k, 60010 + k, 59990 + k, 60005 + k, 3) for k in range(-48, 48)]
    fake.set_history_bars("BTC/USD", "1Hour", hourly)
    config = write_config(tmp_path, universe={"stocks": [], "crypto": ["BTC/USD"]},
                          market_data={"provider": "alpaca", "alpaca": {"data_url": fake.alpaca_data_url}})
    result = invoke("backtest", "--from", "2024-03-04", "--to", "2024-03-05", "--interval", "1h", "--config", config)
    assert result.exit_code == 0, result.stderr
    assert {c.query["timeframe"] for c in fake.calls("alpaca_data", "GET", "/v1beta3/crypto/us/bars")} == {"1Day", "1Hour"}
    out = tmp_path / "backtest.db"
    assert len(rows(out, "SELECT cycle_id FROM cycles")) == 24
    # At 05:00 the bar stamped 04:00 has just closed (k = 4): its close, not the 05:00 bar's.
    assert rows(out, "SELECT price FROM quotes WHERE fetched_at = '2024-03-04T05:00:00Z'")[0]["price"] == "60009.0"
