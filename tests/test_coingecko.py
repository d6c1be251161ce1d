"""CoinGecko prices against replies shaped like CoinGecko's (tests/api_shapes.py)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from responses import matchers

from tests.api_shapes import COINGECKO_RATE_LIMITED, COINGECKO_SIMPLE_PRICE, COINGECKO_UNKNOWN_ID
from tradecycle.connectors.coingecko import CoinGeckoQuotes
from tests.http_helpers import fast_settings
from tradecycle.infra.errors import BadResponse, RateLimited, ServiceUnavailable
from tradecycle.models import Deadline, Quote

BASE = "https://api.coingecko.com/api/v3"
PRICE_URL = f"{BASE}/simple/price"
IDS = {"BTC/USD": "bitcoin", "ETH/USD": "ethereum", "DOGE/USD": "dogecoin-typo"}
DEMO_KEY = "CG-demokey0123456789abcd"


def source(api_key: str = "", **settings) -> CoinGeckoQuotes:
    return CoinGeckoQuotes(BASE, IDS, api_key, fast_settings(**settings))


def price_query(ids: str) -> list:
    params = {"ids": ids, "vs_currencies": "usd", "include_24hr_change": "true", "include_last_updated_at": "true"}
    return [matchers.query_param_matcher(params)]


def test_one_request_serves_every_coin(server):
    server.get(PRICE_URL, match=price_query("bitcoin,ethereum"), json=COINGECKO_SIMPLE_PRICE)

    quotes = source().get_quotes(["BTC/USD", "ETH/USD"])

    assert len(server.calls) == 1
    assert quotes["BTC/USD"] == Quote(
        symbol="BTC/USD",
        price=Decimal("67000.1"),
        as_of=datetime.fromtimestamp(1732500000, UTC),
        source="coingecko",
        change_percent=Decimal("-1.2"),
    )
    assert quotes["ETH/USD"].price == Decimal("3412.55")
    assert quotes["ETH/USD"].change_percent == Decimal("2.0485")


def test_an_unknown_id_answered_with_empty_object_is_no_quote(server):
    server.get(PRICE_URL, match=price_query("dogecoin-typo"), json=COINGECKO_UNKNOWN_ID)

    quotes = source().get_quotes(["DOGE/USD"])

    assert isinstance(quotes["DOGE/USD"], BadResponse)
    assert "no quote for DOGE/USD" in str(quotes["DOGE/USD"])


def test_a_missing_coin_does_not_spoil_the_others(server):
    server.get(PRICE_URL, match=price_query("bitcoin,dogecoin-typo"), json={"bitcoin": COINGECKO_SIMPLE_PRICE["bitcoin"]})

    quotes = source().get_quotes(["BTC/USD", "DOGE/USD"])

    assert isinstance(quotes["BTC/USD"], Quote)
    assert isinstance(quotes["DOGE/USD"], BadResponse)


def test_a_symbol_without_a_configured_id_names_the_config_key_and_costs_no_request(server):
    quotes = source().get_quotes(["SOL/USD"])

    assert isinstance(quotes["SOL/USD"], BadResponse)
    assert "market_data.coingecko.ids" in str(quotes["SOL/USD"])
    assert len(server.calls) == 0


@pytest.mark.parametrize(("api_key", "sends_header"), [("", False), (DEMO_KEY, True)])
def test_demo_key_header_only_when_a_key_is_set(server, api_key, sends_header):
    server.get(PRICE_URL, json=COINGECKO_SIMPLE_PRICE)

    source(api_key).get_quotes(["BTC/USD"])

    request = server.calls[0].request
    assert ("x-cg-demo-api-key" in request.headers) is sends_header
    if sends_header:
        assert request.headers["x-cg-demo-api-key"] == DEMO_KEY
        assert DEMO_KEY not in request.url


@pytest.mark.parametrize(("base_url", "sent", "never"), [
    ("https://pro-api.coingecko.com/api/v3", "x-cg-pro-api-key", "x-cg-demo-api-key"),
    (BASE, "x-cg-demo-api-key", "x-cg-pro-api-key"),
    ("http://127.0.0.1:8080/coingecko", "x-cg-demo-api-key", "x-cg-pro-api-key"),
], ids=["pro", "public", "loopback"])
def test_the_key_goes_in_the_header_its_host_expects(server, base_url, sent, never):
    server.get(f"{base_url}/simple/price", json=COINGECKO_SIMPLE_PRICE)

    quotes = CoinGeckoQuotes(base_url, IDS, DEMO_KEY, fast_settings()).get_quotes(["BTC/USD"])

    request = server.calls[0].request
    assert isinstance(quotes["BTC/USD"], Quote)
    assert request.headers[sent] == DEMO_KEY and never not in request.headers
    assert DEMO_KEY not in request.url


PRO = "https://pro-api.coingecko.com/api/v3"


@pytest.mark.parametrize(("base_url", "code", "says"), [
    (BASE, 10010, 'COINGECKO_API_KEY is a Pro key, which api.coingecko.com refuses: '
                  'set market_data.coingecko.base_url = "https://pro-api.coingecko.com/api/v3"'),
    (PRO, 10011, 'COINGECKO_API_KEY is a demo key, which pro-api.coingecko.com refuses: '
                 'set market_data.coingecko.base_url = "https://api.coingecko.com/api/v3" (the default)'),
], ids=["pro key on the public host", "demo key on the pro host"])
def test_a_key_on_the_wrong_host_names_the_setting_and_the_root_url(server, base_url, code, says):
    """The 400 CoinGecko sends for a key on the other API (its message carries the key: redacted)."""
    server.get(f"{base_url}/simple/price", status=400, json={"status": {
        "error_code": code, "error_message": f"If you are using this API key ({DEMO_KEY}), please change your root URL"}})

    quotes = CoinGeckoQuotes(base_url, IDS, DEMO_KEY, fast_settings()).get_quotes(["BTC/USD", "ETH/USD"])

    assert quotes["BTC/USD"] is quotes["ETH/USD"] and isinstance(quotes["BTC/USD"], BadResponse)
    assert str(quotes["BTC/USD"]) == f"coingecko: {says}"
    assert len(server.calls) == 1  # a 400 is not retried


def test_another_refusal_keeps_the_services_words_redacted(server):
    server.get(f"{PRO}/simple/price", status=400, json={"status": {
        "error_code": 10002, "error_message": f"API Key Missing or invalid ({DEMO_KEY})"}})

    quotes = CoinGeckoQuotes(PRO, IDS, DEMO_KEY, fast_settings()).get_quotes(["BTC/USD"])

    assert "HTTP 400: API Key Missing" in str(quotes["BTC/USD"]) and DEMO_KEY not in str(quotes["BTC/USD"])


def test_when_the_call_fails_every_symbol_gets_that_error(server, monkeypatch):
    sleeps: list[float] = []
    monkeypatch.setattr(time, "sleep", sleeps.append)
    server.get(PRICE_URL, status=429, headers={"retry-after": "60"}, json=COINGECKO_RATE_LIMITED)

    quotes = source(retry_max_delay_seconds=120, deadline=Deadline(5)).get_quotes(["BTC/USD", "ETH/USD", "SOL/USD"])

    assert quotes["BTC/USD"] is quotes["ETH/USD"]
    assert isinstance(quotes["BTC/USD"], RateLimited)
    assert "exceeded the Rate Limit" in str(quotes["BTC/USD"])
    assert "market_data.coingecko.ids" in str(quotes["SOL/USD"])  # its own, more useful, error
    assert sleeps == []


def test_an_unreachable_service_is_reported_not_raised(server):
    server.get(PRICE_URL, status=502, body="bad gateway")

    quotes = source(max_retries=0).get_quotes(["BTC/USD"])

    assert isinstance(quotes["BTC/USD"], ServiceUnavailable)


@pytest.mark.parametrize(
    "entry",
    [
        {"usd": 67000.1, "usd_24h_change": -1.2},
        {"usd": 0, "last_updated_at": 1732500000},
        {"usd_24h_change": -1.2, "last_updated_at": 1732500000},
    ],
    ids=["no-timestamp", "zero-price", "no-price"],
)
def test_an_entry_that_cannot_drive_a_trade_is_no_quote(server, entry):
    server.get(PRICE_URL, json={"bitcoin": entry})

    quotes = source().get_quotes(["BTC/USD"])

    assert isinstance(quotes["BTC/USD"], BadResponse)
    assert "no quote for BTC/USD" in str(quotes["BTC/USD"])


def test_change_may_be_null(server):
    server.get(PRICE_URL, json={"bitcoin": COINGECKO_SIMPLE_PRICE["bitcoin"] | {"usd_24h_change": None}})

    assert source().get_quotes(["BTC/USD"])["BTC/USD"].change_percent is None


def test_the_demo_key_echoed_in_an_error_is_redacted(server):
    server.get(PRICE_URL, status=401, json={"status": {"error_code": 10002, "error_message": f"bad key {DEMO_KEY}"}})

    quotes = source(DEMO_KEY).get_quotes(["BTC/USD"])

    assert DEMO_KEY not in str(quotes["BTC/USD"])
