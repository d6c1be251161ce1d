"""Alpaca market data against replies shaped like Alpaca's (tests/api_shapes.py):
one snapshots call per asset class, the IEX feed, bars followed across pages."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from responses import matchers

from tests.api_shapes import (
    ALPACA_CRYPTO_SNAPSHOTS,
    ALPACA_SIP_REFUSED,
    ALPACA_STOCK_BARS_PAGE_1,
    ALPACA_STOCK_BARS_PAGE_2,
    ALPACA_STOCK_SNAPSHOTS,
)
from tests.http_helpers import fast_settings
from tradecycle.connectors.alpaca_data import AlpacaMarketData
from tradecycle.infra.errors import BadResponse, ServiceError
from tradecycle.models import DailyBar

DATA = "https://data.alpaca.markets"
KEY, SECRET = "PKDATAKEY0123456789", "data-secret-0123456789abcdef"
NOW = datetime(2022, 3, 18, 15, 0, tzinfo=UTC)


def source(key: str = KEY, secret: str = SECRET) -> AlpacaMarketData:
    return AlpacaMarketData(DATA, key, secret, fast_settings())


def test_one_snapshots_call_prices_every_stock_on_the_iex_feed(server):
    server.get(
        f"{DATA}/v2/stocks/snapshots",
        match=[matchers.query_param_matcher({"symbols": "AAPL,NOSUCH", "feed": "iex"}),
               matchers.header_matcher({"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET})],
        json=ALPACA_STOCK_SNAPSHOTS,
    )

    quotes = source().get_quotes(["AAPL", "NOSUCH"])

    assert len(server.calls) == 1
    aapl = quotes["AAPL"]
    assert aapl.price == Decimal("161.1998") and aapl.source == "alpaca"
    assert aapl.as_of == datetime(2022, 3, 18, 14, 33, 58, 448432, tzinfo=UTC)
    assert aapl.previous_close == Decimal("160.62")
    assert aapl.change_percent == Decimal("0.36")  # 161.1998 / 160.62 - 1
    assert aapl.today == DailyBar("2022-03-18", Decimal("160.59"), Decimal("161.92"), Decimal("159.76"),
                                  Decimal("161.365"), Decimal("31749988"))
    assert isinstance(quotes["NOSUCH"], BadResponse) and "no quote for NOSUCH" in str(quotes["NOSUCH"])


def test_crypto_snapshots_need_no_key(server):
    server.get(
        f"{DATA}/v1beta3/crypto/us/snapshots",
        match=[matchers.query_param_matcher({"symbols": "BTC/USD"})],
        json=ALPACA_CRYPTO_SNAPSHOTS,
    )

    quotes = source(key="", secret="").get_quotes(["BTC/USD"])

    assert "APCA-API-KEY-ID" not in server.calls[0].request.headers
    assert quotes["BTC/USD"].price == Decimal("47458.69")
    assert quotes["BTC/USD"].today.volume == Decimal("8720.15520728")


def test_a_failed_snapshots_call_fails_only_its_asset_class(server):
    server.get(f"{DATA}/v2/stocks/snapshots", status=500, json={"code": 50010000, "message": "internal server error occurred"})
    server.get(f"{DATA}/v1beta3/crypto/us/snapshots", json=ALPACA_CRYPTO_SNAPSHOTS)

    quotes = source().get_quotes(["AAPL", "MSFT", "BTC/USD"])

    assert isinstance(quotes["AAPL"], ServiceError) and quotes["AAPL"] is quotes["MSFT"]
    assert quotes["BTC/USD"].price == Decimal("47458.69")


def test_a_snapshot_without_a_latest_trade_is_no_quote(server):
    snapshot = {k: v for k, v in ALPACA_STOCK_SNAPSHOTS["AAPL"].items() if k != "latestTrade"}
    server.get(f"{DATA}/v2/stocks/snapshots", json={"AAPL": snapshot})

    assert isinstance(source().get_quotes(["AAPL"])["AAPL"], BadResponse)


def test_bars_follow_next_page_token_and_keep_the_last_days(server):
    query = {"symbols": "AAPL,TSLA,NOSUCH", "timeframe": "1Day", "start": "2021-12-14", "feed": "iex", "adjustment": "split",
             "limit": "10000"}
    server.get(f"{DATA}/v2/stocks/bars", match=[matchers.query_param_matcher(query)], json=ALPACA_STOCK_BARS_PAGE_1)
    token = ALPACA_STOCK_BARS_PAGE_1["next_page_token"]
    server.get(f"{DATA}/v2/stocks/bars", match=[matchers.query_param_matcher(query | {"page_token": token})],
               json=ALPACA_STOCK_BARS_PAGE_2)

    bars = source().get_daily_bars(["AAPL", "TSLA", "NOSUCH"], 60, NOW)

    assert len(server.calls) == 2
    assert [b.day for b in bars["AAPL"]] == ["2022-02-01", "2022-02-02"]
    assert bars["AAPL"][1].close == Decimal("175.84") and bars["AAPL"][1].volume == Decimal("84817432")
    assert [b.close for b in bars["TSLA"]] == [Decimal("858.97")]
    assert bars["NOSUCH"] == []


def test_bars_keep_only_the_last_days_asked_for(server):
    server.get(f"{DATA}/v2/stocks/bars", json=ALPACA_STOCK_BARS_PAGE_1 | {"next_page_token": None})

    bars = source().get_daily_bars(["AAPL"], 1, NOW)

    assert [b.day for b in bars["AAPL"]] == ["2022-02-02"]


def test_the_free_plans_sip_refusal_is_a_clear_error(server):
    server.get(f"{DATA}/v2/stocks/bars", status=403, json=ALPACA_SIP_REFUSED)

    with pytest.raises(BadResponse, match="subscription does not permit querying recent SIP data"):
        source().get_daily_bars(["AAPL"], 60, NOW)


def test_crypto_bars_come_from_the_v1beta3_endpoint_in_one_call(server):
    body = {"bars": {"BTC/USD": [dict(ALPACA_CRYPTO_SNAPSHOTS["snapshots"]["BTC/USD"]["prevDailyBar"])]}, "next_page_token": None}
    server.get(f"{DATA}/v1beta3/crypto/us/bars",
               match=[matchers.query_param_matcher({"symbols": "BTC/USD,ETH/USD", "timeframe": "1Day", "start": "2022-03-14",
                                                    "limit": "10000"})], json=body)

    bars = source().get_daily_bars(["BTC/USD", "ETH/USD"], 2, NOW)

    assert bars == {"BTC/USD": [DailyBar("2022-03-27", Decimal("44598.44"), Decimal("47694"), Decimal("44437.22"),
                                         Decimal("47148.98"), Decimal("12278.6017929"))], "ETH/USD": []}
