"""Finnhub quotes and news against replies shaped like Finnhub's (tests/api_shapes.py)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import responses
from freezegun import freeze_time
from responses import matchers

from tests.api_shapes import FINNHUB_NEWS_AAPL, FINNHUB_QUOTE_AAPL, FINNHUB_QUOTE_UNKNOWN, FINNHUB_RATE_LIMITED
from tradecycle.connectors.finnhub import FinnhubNews, FinnhubQuotes
from tests.http_helpers import fast_settings
from tradecycle.connectors.http import HttpSettings
from tradecycle.infra.errors import BadResponse, RateLimited, ServiceError, ServiceUnavailable
from tradecycle.models import Deadline, Quote

BASE = "https://finnhub.io/api/v1"
API_KEY = "cfinnhubtestkey0123456789"


def quote_for(server, symbol: str, **reply) -> None:
    server.get(f"{BASE}/quote", match=[matchers.query_param_matcher({"symbol": symbol})], **reply)


# -- quotes --------------------------------------------------------------------------


def test_quote_is_parsed_with_decimal_prices_and_the_trade_time(server):
    quote_for(server, "AAPL", json=FINNHUB_QUOTE_AAPL)

    quotes = FinnhubQuotes(BASE, API_KEY, fast_settings()).get_quotes(["AAPL"])

    assert quotes == {
        "AAPL": Quote(
            symbol="AAPL",
            price=Decimal("191.71"),
            as_of=datetime(2025, 1, 15, 15, 30, tzinfo=UTC),
            source="finnhub",
            change_percent=Decimal("0.8788"),
            previous_close=Decimal("190.04"),
        )
    }


def test_token_travels_only_in_the_header(server):
    quote_for(server, "AAPL", json=FINNHUB_QUOTE_AAPL)

    FinnhubQuotes(BASE, API_KEY, fast_settings()).get_quotes(["AAPL"])

    request = server.calls[0].request
    assert request.headers["X-Finnhub-Token"] == API_KEY
    assert request.url == f"{BASE}/quote?symbol=AAPL"
    assert API_KEY not in request.url and "token" not in request.url


def test_unknown_symbol_all_zero_reply_is_no_quote_and_others_still_quote(server):
    quote_for(server, "AAPL", json=FINNHUB_QUOTE_AAPL)
    quote_for(server, "ZZZZ", json=FINNHUB_QUOTE_UNKNOWN)

    quotes = FinnhubQuotes(BASE, API_KEY, fast_settings()).get_quotes(["AAPL", "ZZZZ"])

    assert isinstance(quotes["AAPL"], Quote)
    assert isinstance(quotes["ZZZZ"], BadResponse)
    assert str(quotes["ZZZZ"]) == "finnhub: no quote for ZZZZ (unknown symbol?)"


@pytest.mark.parametrize(
    "reply",
    [FINNHUB_QUOTE_AAPL | {"c": 0}, FINNHUB_QUOTE_AAPL | {"t": 0}, {"error": "odd"}, []],
    ids=["zero-price", "zero-time", "not-a-quote", "list"],
)
def test_a_reply_that_is_not_a_usable_quote_is_bad_response(server, reply):
    quote_for(server, "AAPL", json=reply)

    quotes = FinnhubQuotes(BASE, API_KEY, fast_settings()).get_quotes(["AAPL"])

    assert isinstance(quotes["AAPL"], BadResponse)


def test_quote_without_change_percent_has_none(server):
    quote_for(server, "AAPL", json=FINNHUB_QUOTE_AAPL | {"dp": None, "d": None})

    quote = FinnhubQuotes(BASE, API_KEY, fast_settings()).get_quotes(["AAPL"])["AAPL"]

    assert quote.change_percent is None


def test_symbols_are_fetched_concurrently(server):
    """Each reply waits until the other request has arrived: only concurrent requests can finish."""
    both_arrived = threading.Barrier(2, timeout=2)

    def reply(request):
        both_arrived.wait()
        return 200, {}, '{"c": 100.5, "dp": 1, "pc": 99.5, "t": 1736955000}'

    server.add_callback(responses.GET, f"{BASE}/quote", callback=reply)

    quotes = FinnhubQuotes(BASE, API_KEY, fast_settings()).get_quotes(["AAPL", "MSFT"])

    assert {symbol: q.price for symbol, q in quotes.items()} == {"AAPL": Decimal("100.5"), "MSFT": Decimal("100.5")}


def test_no_more_than_max_workers_requests_are_in_flight(server):
    in_flight, peak, lock = 0, 0, threading.Lock()

    def reply(request):
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.02)
        with lock:
            in_flight -= 1
        return 200, {}, '{"c": 1.5, "dp": 0, "pc": 1.5, "t": 1736955000}'

    server.add_callback(responses.GET, f"{BASE}/quote", callback=reply)

    quotes = FinnhubQuotes(BASE, API_KEY, fast_settings(), max_workers=2).get_quotes(["A", "B", "C", "D", "E"])

    assert len(quotes) == 5 and len(server.calls) == 5
    assert peak <= 2


def test_rate_limit_beyond_the_budget_is_returned_per_symbol_without_sleeping(server, monkeypatch):
    sleeps: list[float] = []
    monkeypatch.setattr(time, "sleep", sleeps.append)
    quote_for(server, "AAPL", status=429, headers={"Retry-After": "60"}, json=FINNHUB_RATE_LIMITED)
    quotes_source = FinnhubQuotes(BASE, API_KEY, fast_settings(retry_max_delay_seconds=120, deadline=Deadline(5)))

    quotes = quotes_source.get_quotes(["AAPL"])

    assert isinstance(quotes["AAPL"], RateLimited)
    assert quotes["AAPL"].retry_after_seconds == 60
    assert "API limit reached" in str(quotes["AAPL"])
    assert sleeps == []
    assert len(server.calls) == 1


def test_an_unreachable_service_is_an_error_per_symbol_not_raised(server):
    server.get(f"{BASE}/quote", status=503, body="down")

    quotes = FinnhubQuotes(BASE, API_KEY, fast_settings(max_retries=0)).get_quotes(["AAPL", "MSFT"])

    assert set(quotes) == {"AAPL", "MSFT"}
    assert all(isinstance(error, ServiceUnavailable) for error in quotes.values())


def test_a_repeated_symbol_is_fetched_once(server):
    quote_for(server, "AAPL", json=FINNHUB_QUOTE_AAPL)

    quotes = FinnhubQuotes(BASE, API_KEY, fast_settings()).get_quotes(["AAPL", "AAPL"])

    assert list(quotes) == ["AAPL"] and len(server.calls) == 1


def test_no_symbols_no_request(server):
    assert FinnhubQuotes(BASE, API_KEY, fast_settings()).get_quotes([]) == {}
    assert len(server.calls) == 0


def test_the_key_echoed_in_an_error_is_redacted(server):
    quote_for(server, "AAPL", status=401, json={"error": f"Invalid API key {API_KEY}"})

    quotes = FinnhubQuotes(BASE, API_KEY, fast_settings()).get_quotes(["AAPL"])

    assert API_KEY not in str(quotes["AAPL"])


# -- news --------------------------------------------------------------------------


def news_for(server, symbol: str, day_from: str, day_to: str, **reply) -> None:
    params = {"symbol": symbol, "from": day_from, "to": day_to}
    server.get(f"{BASE}/company-news", match=[matchers.query_param_matcher(params)], **reply)


@freeze_time("2025-01-15T16:00:00Z")
def test_news_since_a_time_today_keeps_only_newer_items_newest_first(server):
    oldest_first = list(reversed(FINNHUB_NEWS_AAPL))
    news_for(server, "AAPL", "2025-01-15", "2025-01-15", json=oldest_first)

    items = FinnhubNews(BASE, API_KEY, fast_settings()).get_news("AAPL", datetime(2025, 1, 15, 10, tzinfo=UTC))

    assert [item.headline for item in items] == [
        "Apple shares climb as iPhone demand steadies",
        "Analysts split on Apple's services growth",
    ]
    first = items[0]
    assert first.symbol == "AAPL"
    assert first.published_at == datetime(2025, 1, 15, 15, tzinfo=UTC)
    assert (first.source, first.url, first.news_id) == ("Reuters", "https://finnhub.io/api/news?id=aaa", "132100001")
    assert first.summary.startswith("Apple's stock rose")


@freeze_time("2025-01-15T16:00:00Z")
def test_news_from_is_the_date_of_since_and_to_is_today(server):
    news_for(server, "AAPL", "2025-01-14", "2025-01-15", json=FINNHUB_NEWS_AAPL)

    items = FinnhubNews(BASE, API_KEY, fast_settings()).get_news("AAPL", datetime(2025, 1, 14, 10, tzinfo=UTC))

    assert len(items) == 3
    assert server.calls[0].request.headers["X-Finnhub-Token"] == API_KEY
    assert API_KEY not in server.calls[0].request.url


@freeze_time("2025-01-15T16:00:00Z")
def test_news_keeps_at_most_max_items(server):
    news_for(server, "AAPL", "2025-01-14", "2025-01-15", json=FINNHUB_NEWS_AAPL)

    items = FinnhubNews(BASE, API_KEY, fast_settings(), max_items=1).get_news("AAPL", datetime(2025, 1, 14, tzinfo=UTC))

    assert [item.news_id for item in items] == ["132100001"]


@freeze_time("2025-01-15T16:00:00Z")
def test_news_item_without_an_id_is_identified_by_its_url_and_broken_items_are_skipped(server):
    reply = [
        FINNHUB_NEWS_AAPL[0] | {"id": None},
        {"headline": "no time"},
        FINNHUB_NEWS_AAPL[1] | {"headline": ""},
        "not an item",
    ]
    news_for(server, "AAPL", "2025-01-15", "2025-01-15", json=reply)

    items = FinnhubNews(BASE, API_KEY, fast_settings()).get_news("AAPL", datetime(2025, 1, 15, tzinfo=UTC))

    assert [item.news_id for item in items] == ["https://finnhub.io/api/news?id=aaa"]


@freeze_time("2025-01-15T16:00:00Z")
@pytest.mark.parametrize(
    ("reply", "error"),
    [({"status": 403, "json": {"error": "You don't have access to this resource."}}, BadResponse),
     ({"status": 200, "json": {"error": "odd"}}, BadResponse),
     ({"status": 503, "body": "down"}, ServiceUnavailable)],
    ids=["forbidden", "not-a-list", "down"],
)
def test_news_failure_raises_a_service_error(server, reply, error):
    news_for(server, "AAPL", "2025-01-15", "2025-01-15", **reply)

    with pytest.raises(error) as caught:
        FinnhubNews(BASE, API_KEY, fast_settings(max_retries=0)).get_news("AAPL", datetime(2025, 1, 15, tzinfo=UTC))

    assert isinstance(caught.value, ServiceError)
    assert caught.value.service == "finnhub"


def test_a_429_without_retry_after_is_not_retried_so_the_quota_is_not_burned():
    import responses as responses_lib

    from tradecycle.connectors.finnhub import FinnhubQuotes
    from tradecycle.infra.errors import RateLimited

    with responses_lib.RequestsMock() as server:
        server.get("https://finnhub.test/api/v1/quote", status=429, json={"error": "API limit reached. Please try again later."})
        quotes = FinnhubQuotes("https://finnhub.test/api/v1", "key", HttpSettings(max_retries=3, retry_base_delay_seconds=0.001))
        result = quotes.get_quotes(["AAPL", "MSFT"])
        assert all(isinstance(v, RateLimited) for v in result.values())
        assert len(server.calls) == 2  # one call per symbol, no retries
