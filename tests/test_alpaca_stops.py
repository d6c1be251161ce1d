"""AlpacaBroker's stop orders: the bodies it sends (POST and PATCH) and what it
makes of Alpaca's answers (tests/api_shapes.py)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import requests

from tests.api_shapes import (
    ALPACA_ERROR_ALREADY_FILLED,
    ALPACA_ERROR_INSUFFICIENT_QTY,
    ALPACA_ORDER_STOP_LIMIT_NEW,
    ALPACA_ORDER_STOP_NEW,
    ALPACA_ORDER_STOP_REPLACED,
)
from tests.http_helpers import fast_settings
from tradecycle.connectors.alpaca import AlpacaBroker
from tradecycle.infra.errors import OrderNotReceived, OrderRejected, OrderUncertain
from tradecycle.models import OrderIntent

BASE = "https://paper-api.alpaca.markets"
ORDERS = f"{BASE}/v2/orders"
BY_CLIENT_ID = f"{BASE}/v2/orders:by_client_order_id"
OLD_ID = ALPACA_ORDER_STOP_NEW["id"]


@pytest.fixture
def broker() -> AlpacaBroker:
    return AlpacaBroker(BASE, "PKTESTKEYID00000001", "SeCrEtKeY0123456789abcdefghijklmnopqrstu", fast_settings(),
                        order_timeout_seconds=2)


def stop(**overrides) -> OrderIntent:
    values = dict(symbol="AAPL", side="sell", client_order_id=ALPACA_ORDER_STOP_NEW["client_order_id"],
                  price=Decimal("180.50"), qty=Decimal("10"), order_type="stop", stop_price=Decimal("180.50"),
                  time_in_force="gtc")
    return OrderIntent(**(values | overrides))


def bodies(server, method: str) -> list[dict]:
    return [json.loads(c.request.body) for c in server.calls if c.request.method == method]


def test_a_stock_stop_is_posted_with_its_trigger_price_and_read_back(server, broker):
    server.post(ORDERS, json=ALPACA_ORDER_STOP_NEW)

    result = broker.submit_order(stop())

    assert bodies(server, "POST") == [{"symbol": "AAPL", "side": "sell", "type": "stop", "time_in_force": "gtc",
                                       "client_order_id": ALPACA_ORDER_STOP_NEW["client_order_id"],
                                       "stop_price": "180.5", "qty": "10"}]
    assert (result.order_type, result.stop_price, result.status, result.time_in_force) == ("stop", Decimal("180.5"), "new", "gtc")


def test_a_crypto_stop_is_a_stop_limit_with_both_prices(server, broker):
    server.post(ORDERS, json=ALPACA_ORDER_STOP_LIMIT_NEW)

    result = broker.submit_order(stop(symbol="BTC/USD", qty=Decimal("0.05"), order_type="stop_limit",
                                      stop_price=Decimal("61640"), limit_price=Decimal("61023.60"),
                                      client_order_id=ALPACA_ORDER_STOP_LIMIT_NEW["client_order_id"]))

    [body] = bodies(server, "POST")
    assert (body["type"], body["stop_price"], body["limit_price"], body["time_in_force"]) == ("stop_limit", "61640", "61023.6", "gtc")
    assert result.limit_price == Decimal("61023.6") and result.symbol == "BTC/USD"


@pytest.mark.parametrize("intent", [
    stop(stop_price=None),
    stop(order_type="stop_limit", limit_price=None),
    stop(qty=None, notional_usd=Decimal("1800")),
], ids=["no-stop-price", "stop-limit-without-limit", "by-notional"])
def test_an_unusable_stop_is_refused_before_anything_is_sent(server, broker, intent):
    with pytest.raises(OrderRejected) as caught:
        broker.submit_order(intent)
    assert caught.value.status_code is None and len(server.calls) == 0


def test_a_sell_while_a_stop_holds_the_shares_is_refused_with_alpacas_message(server, broker):
    server.post(ORDERS, json=ALPACA_ERROR_INSUFFICIENT_QTY, status=403)

    with pytest.raises(OrderRejected) as caught:
        broker.submit_order(OrderIntent("AAPL", "sell", "tc-1-AAPL", Decimal("190"), qty=Decimal("10")))

    assert caught.value.status_code == 403 and "insufficient qty available" in caught.value.message


def test_a_replace_patches_the_old_order_and_returns_the_new_one(server, broker):
    server.patch(f"{ORDERS}/{OLD_ID}", json=ALPACA_ORDER_STOP_REPLACED)
    new = stop(client_order_id=ALPACA_ORDER_STOP_REPLACED["client_order_id"], stop_price=Decimal("184.20"))

    result = broker.replace_order(OLD_ID, new)

    assert bodies(server, "PATCH") == [{"qty": "10", "stop_price": "184.2", "time_in_force": "gtc",
                                        "client_order_id": ALPACA_ORDER_STOP_REPLACED["client_order_id"]}]
    assert result.broker_order_id == ALPACA_ORDER_STOP_REPLACED["id"] != OLD_ID
    assert result.stop_price == Decimal("184.2")


def test_a_replace_of_a_filled_stop_is_refused(server, broker):
    server.patch(f"{ORDERS}/{OLD_ID}", json=ALPACA_ERROR_ALREADY_FILLED, status=422)

    with pytest.raises(OrderRejected) as caught:
        broker.replace_order(OLD_ID, stop(client_order_id="ts-2-AAPL"))

    assert caught.value.status_code == 422 and "filled" in caught.value.message


def test_a_replace_whose_answer_is_lost_is_looked_up_by_its_new_client_order_id(server, broker):
    server.patch(f"{ORDERS}/{OLD_ID}", body=requests.exceptions.ReadTimeout("read timed out"))
    server.get(BY_CLIENT_ID, json=ALPACA_ORDER_STOP_REPLACED)

    result = broker.replace_order(OLD_ID, stop(client_order_id=ALPACA_ORDER_STOP_REPLACED["client_order_id"]))

    assert result.broker_order_id == ALPACA_ORDER_STOP_REPLACED["id"]
    assert len([c for c in server.calls if c.request.method == "PATCH"]) == 1  # never sent twice


def test_a_replace_that_never_arrived_says_so_and_one_whose_fate_is_unknown_too(server, broker):
    server.patch(f"{ORDERS}/{OLD_ID}", body=requests.exceptions.ReadTimeout("read timed out"))
    server.get(BY_CLIENT_ID, json={"code": 40410000, "message": "order not found"}, status=404)
    with pytest.raises(OrderNotReceived):
        broker.replace_order(OLD_ID, stop(client_order_id="ts-3-AAPL"))

    server.get(BY_CLIENT_ID, body=requests.exceptions.ConnectionError("reset"))
    with pytest.raises(OrderUncertain):
        broker.replace_order(OLD_ID, stop(client_order_id="ts-4-AAPL"))
