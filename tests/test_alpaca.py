"""AlpacaBroker against replies shaped like Alpaca paper's (tests/api_shapes.py)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import requests
from responses import matchers
from urllib3.exceptions import MaxRetryError, NewConnectionError

from tests.api_shapes import (
    ALPACA_ACCOUNT,
    ALPACA_ASSET_BTC,
    ALPACA_CLOCK_CLOSED,
    ALPACA_CLOCK_OPEN,
    ALPACA_ERROR_BUYING_POWER,
    ALPACA_ERROR_DUPLICATE_CLIENT_ID,
    ALPACA_ERROR_INVALID_TIF,
    ALPACA_ERROR_NOT_FOUND,
    ALPACA_ORDER_CRYPTO_NEW,
    ALPACA_ORDER_FILLED,
    ALPACA_ORDER_NEW,
    ALPACA_POSITION_CRYPTO,
    ALPACA_POSITION_STOCK,
)
from tradecycle.connectors.alpaca import CRYPTO_FALLBACK_MIN_NOTIONAL_USD, AlpacaBroker
from tests.http_helpers import fast_settings
from tradecycle.infra.errors import (
    BadResponse,
    DuplicateOrder,
    OrderRejected,
    OrderNotReceived,
    OrderUncertain,
    RateLimited,
    ServiceUnavailable,
)
from tradecycle.models import OrderIntent, OrderResult
from tradecycle.rules.risk import account_problem

BASE = "https://paper-api.alpaca.markets"
ORDERS = f"{BASE}/v2/orders"
BY_CLIENT_ID = f"{BASE}/v2/orders:by_client_order_id"
KEY_ID = "PKTESTKEYID00000001"
SECRET_KEY = "SeCrEtKeY0123456789abcdefghijklmnopqrstu"


@pytest.fixture
def broker() -> AlpacaBroker:
    return AlpacaBroker(BASE, KEY_ID, SECRET_KEY, fast_settings(), order_timeout_seconds=2)


def stock_buy(**overrides) -> OrderIntent:
    values = dict(symbol="AAPL", side="buy", client_order_id="c1-AAPL", price=Decimal("187.21"), notional_usd=Decimal("500"))
    return OrderIntent(**(values | overrides))


def posted_bodies(server) -> list[dict]:
    return [json.loads(call.request.body) for call in server.calls if call.request.method == "POST"]


def lookup_by_client_id(server, client_order_id: str, **reply) -> None:
    server.get(BY_CLIENT_ID, match=[matchers.query_param_matcher({"client_order_id": client_order_id})], **reply)


def connection_refused() -> requests.exceptions.ConnectionError:
    reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] Connection refused")
    return requests.exceptions.ConnectionError(MaxRetryError(None, "/v2/orders", reason))


# -- account, clock, positions ----------------------------------------------------


def test_account_numbers_sent_as_strings_become_decimals(server, broker):
    server.get(f"{BASE}/v2/account", json=ALPACA_ACCOUNT)

    account = broker.get_account()

    assert account.equity == Decimal("100523.17")
    assert account.last_equity == Decimal("100000")
    assert account.cash == Decimal("100000")
    assert account.buying_power == Decimal("200000")
    assert isinstance(account.equity, Decimal)
    assert account_problem(account) is None


def test_auth_travels_in_headers_never_in_the_url(server, broker):
    server.get(f"{BASE}/v2/account", json=ALPACA_ACCOUNT)

    broker.get_account()

    request = server.calls[0].request
    assert request.headers["APCA-API-KEY-ID"] == KEY_ID
    assert request.headers["APCA-API-SECRET-KEY"] == SECRET_KEY
    assert KEY_ID not in request.url and SECRET_KEY not in request.url


def test_account_without_extra_fields_still_parses(server, broker):
    lean = {k: ALPACA_ACCOUNT[k] for k in ("equity", "last_equity", "cash", "buying_power", "status")}
    server.get(f"{BASE}/v2/account", json=lean)

    account = broker.get_account()

    assert account.equity == Decimal("100523.17")
    assert account.trading_blocked is False and account.account_blocked is False


@pytest.mark.parametrize(
    ("change", "tradable"),
    [({"status": "ACCOUNT_UPDATED"}, False), ({"trading_blocked": True}, False), ({"account_blocked": True}, False)],
)
def test_account_status_and_blocks_are_read(server, broker, change, tradable):
    server.get(f"{BASE}/v2/account", json=ALPACA_ACCOUNT | change)

    assert (account_problem(broker.get_account()) is None) is tradable


def test_account_missing_a_used_field_is_a_bad_response(server, broker):
    server.get(f"{BASE}/v2/account", json={k: v for k, v in ALPACA_ACCOUNT.items() if k != "last_equity"})

    with pytest.raises(BadResponse, match="last_equity"):
        broker.get_account()


@pytest.mark.parametrize(("reply", "is_open"), [(ALPACA_CLOCK_OPEN, True), (ALPACA_CLOCK_CLOSED, False)])
def test_clock(server, broker, reply, is_open):
    server.get(f"{BASE}/v2/clock", json=reply)

    clock = broker.get_clock()

    assert clock.is_open is is_open
    assert clock.next_open == reply["next_open"]
    assert clock.next_close == reply["next_close"]


def test_positions_are_decimal_and_crypto_symbols_normalized(server, broker):
    server.get(f"{BASE}/v2/positions", json=[ALPACA_POSITION_STOCK, ALPACA_POSITION_CRYPTO])

    positions = {p.symbol: p for p in broker.get_positions()}

    assert set(positions) == {"AAPL", "BTC/USD"}
    assert positions["BTC/USD"].qty == Decimal("0.004987")
    assert positions["AAPL"].avg_entry_price == Decimal("187.21")
    assert positions["AAPL"].unrealized_pl == Decimal("13.5")


def test_no_positions(server, broker):
    server.get(f"{BASE}/v2/positions", json=[])

    assert broker.get_positions() == []


# -- the order that reaches the broker ----------------------------------------------


@pytest.mark.parametrize(
    ("intent", "expected_body"),
    [
        (
            stock_buy(notional_usd=Decimal("500")),
            {"symbol": "AAPL", "side": "buy", "type": "market", "time_in_force": "day", "notional": "500.00"},
        ),
        (
            stock_buy(notional_usd=Decimal("10.129")),  # never rounded up
            {"symbol": "AAPL", "side": "buy", "type": "market", "time_in_force": "day", "notional": "10.12"},
        ),
        (
            stock_buy(side="sell", notional_usd=None, qty=Decimal("3")),
            {"symbol": "AAPL", "side": "sell", "type": "market", "time_in_force": "day", "qty": "3"},
        ),
        (
            stock_buy(symbol="BTC/USD", notional_usd=Decimal("250")),
            {"symbol": "BTC/USD", "side": "buy", "type": "market", "time_in_force": "gtc", "notional": "250.00"},
        ),
        (
            stock_buy(symbol="BTC/USD", side="sell", notional_usd=None, qty=Decimal("0.0049871234567")),
            {"symbol": "BTC/USD", "side": "sell", "type": "market", "time_in_force": "gtc", "qty": "0.004987123"},
        ),
    ],
    ids=["stock-notional", "notional-rounded-down", "stock-qty", "crypto-notional", "crypto-qty-9-decimals"],
)
def test_order_body(server, broker, intent, expected_body):
    server.post(ORDERS, json=ALPACA_ORDER_NEW)

    broker.submit_order(intent)

    assert posted_bodies(server) == [expected_body | {"client_order_id": intent.client_order_id}]


@pytest.mark.parametrize(
    "sizes",
    [
        {"notional_usd": Decimal("10"), "qty": Decimal("1")},
        {"notional_usd": None, "qty": None},
        {"notional_usd": Decimal("0.004")},
        {"notional_usd": None, "qty": Decimal("-1")},
    ],
    ids=["both", "neither", "rounds-to-zero", "negative"],
)
def test_an_unusable_size_is_rejected_before_anything_is_sent(server, broker, sizes):
    with pytest.raises(OrderRejected) as caught:
        broker.submit_order(stock_buy(**sizes))

    assert caught.value.status_code is None
    assert len(server.calls) == 0


def test_order_request_has_auth_headers_and_reply_is_parsed(server, broker):
    server.post(ORDERS, json=ALPACA_ORDER_NEW)

    result = broker.submit_order(stock_buy())

    assert server.calls[0].request.headers["APCA-API-SECRET-KEY"] == SECRET_KEY
    assert result == OrderResult(
        client_order_id="c1-AAPL",
        broker_order_id=ALPACA_ORDER_NEW["id"],
        status="accepted",
        symbol="AAPL",
        side="buy",
        filled_qty=Decimal("0"),
        filled_avg_price=None,
        submitted_at=ALPACA_ORDER_NEW["submitted_at"],
        filled_at=None,
        order_type="market",
        time_in_force="day",
    )


def test_crypto_order_reply_keeps_the_slash_symbol(server, broker):
    server.post(ORDERS, json=ALPACA_ORDER_CRYPTO_NEW)

    result = broker.submit_order(stock_buy(symbol="BTC/USD", client_order_id="c1-BTC-USD", notional_usd=Decimal("250")))

    assert (result.symbol, result.status) == ("BTC/USD", "pending_new")


# -- rejections -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (403, ALPACA_ERROR_BUYING_POWER, "insufficient buying power"),
        (422, ALPACA_ERROR_INVALID_TIF, "invalid crypto time_in_force"),
    ],
)
def test_a_refused_order_is_rejected_with_the_broker_message(server, broker, status, body, message):
    server.post(ORDERS, status=status, json=body)

    with pytest.raises(OrderRejected) as caught:
        broker.submit_order(stock_buy())

    assert not isinstance(caught.value, DuplicateOrder)
    assert str(caught.value) == f"alpaca: {message}"
    assert caught.value.status_code == status
    assert len(server.calls) == 1  # no retry, no lookup


def test_duplicate_client_order_id_returns_the_order_already_there(server, broker):
    server.post(ORDERS, status=422, json=ALPACA_ERROR_DUPLICATE_CLIENT_ID)
    lookup_by_client_id(server, "c1-AAPL", json=ALPACA_ORDER_FILLED)

    result = broker.submit_order(stock_buy())

    assert result.broker_order_id == ALPACA_ORDER_FILLED["id"]
    assert result.status == "filled"
    assert result.filled_avg_price == Decimal("187.21")
    assert len(posted_bodies(server)) == 1


@pytest.mark.parametrize(
    "lookup",
    [{"status": 404, "json": ALPACA_ERROR_NOT_FOUND}, {"status": 503, "json": {"message": "service unavailable"}}],
    ids=["not-found", "lookup-down"],
)
def test_duplicate_that_cannot_be_read_is_uncertain_never_rejected(server, broker, lookup):
    # The broker says the id is taken: the order exists, so it must stay pending, not final "rejected".
    server.post(ORDERS, status=422, json=ALPACA_ERROR_DUPLICATE_CLIENT_ID)
    lookup_by_client_id(server, "c1-AAPL", **lookup)

    with pytest.raises(OrderUncertain, match="client_order_id must be unique"):
        broker.submit_order(stock_buy())
    assert len(posted_bodies(server)) == 1


def test_duplicate_id_used_by_a_different_order_raises_duplicate_order(server, broker):
    server.post(ORDERS, status=422, json=ALPACA_ERROR_DUPLICATE_CLIENT_ID)
    lookup_by_client_id(server, "c1-AAPL", json=ALPACA_ORDER_FILLED | {"side": "sell"})

    with pytest.raises(DuplicateOrder, match="already used by a sell AAPL order"):
        broker.submit_order(stock_buy())


def test_rate_limited_order_is_not_retried(server, broker):
    server.post(ORDERS, status=429, json={"code": 42910000, "message": "rate limit exceeded"})

    with pytest.raises(RateLimited):
        broker.submit_order(stock_buy())

    assert len(server.calls) == 1


# -- an order that may or may not have arrived -------------------------------------------


def test_read_timeout_then_lookup_finds_the_order_returns_it_without_resending(server, broker):
    server.post(ORDERS, body=requests.exceptions.ReadTimeout())
    lookup_by_client_id(server, "c1-AAPL", json=ALPACA_ORDER_NEW)

    result = broker.submit_order(stock_buy())

    assert result.broker_order_id == ALPACA_ORDER_NEW["id"]
    assert len(posted_bodies(server)) == 1


def test_read_timeout_then_not_found_is_not_received_and_never_resent_here(server, broker):
    # Resending is the cycle's decision, after it re-reads the kill switch.
    server.post(ORDERS, body=requests.exceptions.ReadTimeout())
    lookup_by_client_id(server, "c1-AAPL", status=404, json=ALPACA_ERROR_NOT_FOUND)

    with pytest.raises(OrderNotReceived, match="c1-AAPL did not arrive"):
        broker.submit_order(stock_buy())

    assert len(posted_bodies(server)) == 1


def test_sending_the_same_intent_again_after_a_late_landing_returns_that_order(server, broker):
    server.post(ORDERS, body=requests.exceptions.ReadTimeout())
    server.post(ORDERS, status=422, json=ALPACA_ERROR_DUPLICATE_CLIENT_ID)
    lookup_by_client_id(server, "c1-AAPL", status=404, json=ALPACA_ERROR_NOT_FOUND)
    lookup_by_client_id(server, "c1-AAPL", json=ALPACA_ORDER_FILLED)

    with pytest.raises(OrderNotReceived):
        broker.submit_order(stock_buy())
    result = broker.submit_order(stock_buy())  # the cycle's one resend, same client order id

    first, second = posted_bodies(server)
    assert first == second and second["client_order_id"] == "c1-AAPL"
    assert result.status == "filled"


def test_read_timeout_and_a_failing_lookup_is_uncertain(server, broker):
    server.post(ORDERS, body=requests.exceptions.ReadTimeout())
    lookup_by_client_id(server, "c1-AAPL", status=503, json={"message": "service unavailable"})

    with pytest.raises(OrderUncertain, match="lookup failed"):
        broker.submit_order(stock_buy())

    assert len(posted_bodies(server)) == 1


@pytest.mark.parametrize(
    "reply",
    [{"status": 500, "json": {"message": "internal server error"}}, {"status": 200, "body": "<html>oops</html>"}],
    ids=["5xx", "unreadable-200"],
)
def test_an_answer_we_cannot_trust_leads_to_a_lookup_not_a_blind_resend(server, broker, reply):
    server.post(ORDERS, **reply)
    lookup_by_client_id(server, "c1-AAPL", json=ALPACA_ORDER_NEW)

    result = broker.submit_order(stock_buy())

    assert result.broker_order_id == ALPACA_ORDER_NEW["id"]
    assert len(posted_bodies(server)) == 1


def test_connection_refused_is_unavailable_with_no_lookup(server, broker):
    server.post(ORDERS, body=connection_refused())

    with pytest.raises(ServiceUnavailable) as caught:
        broker.submit_order(stock_buy())

    assert not isinstance(caught.value, OrderUncertain)
    assert "not sent" in str(caught.value)
    assert len(server.calls) == 1


def test_order_post_uses_the_order_timeout(server):
    server.post(ORDERS, json=ALPACA_ORDER_NEW)
    broker = AlpacaBroker(BASE, KEY_ID, SECRET_KEY, fast_settings(timeout_seconds=9), order_timeout_seconds=2)

    broker.submit_order(stock_buy())

    connect_timeout, read_timeout = server.calls[0].request.req_kwargs["timeout"]
    assert read_timeout == 2


# -- reading orders back -------------------------------------------------------------------


def test_lookup_by_client_id_sends_it_as_a_query_parameter(server, broker):
    lookup_by_client_id(server, "c1-BTC-USD", json=ALPACA_ORDER_CRYPTO_NEW)

    result = broker.get_order_by_client_id("c1-BTC-USD")

    assert result is not None and result.client_order_id == "c1-BTC-USD"
    assert server.calls[0].request.url == f"{BY_CLIENT_ID}?client_order_id=c1-BTC-USD"


def test_lookup_by_client_id_of_an_unknown_order_is_none(server, broker):
    lookup_by_client_id(server, "never-sent", status=404, json=ALPACA_ERROR_NOT_FOUND)

    assert broker.get_order_by_client_id("never-sent") is None


def test_get_order_reads_fill_details(server, broker):
    server.get(f"{ORDERS}/{ALPACA_ORDER_FILLED['id']}", json=ALPACA_ORDER_FILLED)

    result = broker.get_order(ALPACA_ORDER_FILLED["id"])

    assert result.status == "filled"
    assert result.filled_qty == Decimal("2.670798")
    assert result.filled_avg_price == Decimal("187.21")
    assert result.filled_at == ALPACA_ORDER_FILLED["filled_at"]


# -- minimums ---------------------------------------------------------------------------------


def test_stock_minimum_is_one_dollar_without_a_request(server, broker):
    assert broker.min_order_notional("AAPL", Decimal("187.21")) == Decimal("1")
    assert len(server.calls) == 0


def test_crypto_minimum_is_min_order_size_times_price_read_once(server, broker):
    server.get(f"{BASE}/v2/assets/BTC%2FUSD", json=ALPACA_ASSET_BTC)

    first = broker.min_order_notional("BTC/USD", Decimal("67349"))
    second = broker.min_order_notional("BTC/USD", Decimal("70000"))

    assert first == Decimal("6.74")  # 0.0001 * 67349 = 6.7349, rounded up to the cent
    assert second == Decimal("7.00")
    assert len(server.calls) == 1
    assert server.calls[0].request.url == f"{BASE}/v2/assets/BTC%2FUSD"


def test_crypto_minimum_falls_back_when_the_asset_cannot_be_read(server, broker):
    server.get(f"{BASE}/v2/assets/BTC%2FUSD", status=503, json={"message": "unavailable"})

    assert broker.min_order_notional("BTC/USD", Decimal("67349")) == CRYPTO_FALLBACK_MIN_NOTIONAL_USD


# -- secrets ------------------------------------------------------------------------------------


def test_a_secret_echoed_by_the_broker_never_reaches_the_exception(server, broker):
    server.post(ORDERS, status=403, json={"code": 40110000, "message": f"key {KEY_ID} / {SECRET_KEY} forbidden"})

    with pytest.raises(OrderRejected) as caught:
        broker.submit_order(stock_buy())

    assert KEY_ID not in str(caught.value) and SECRET_KEY not in str(caught.value)

