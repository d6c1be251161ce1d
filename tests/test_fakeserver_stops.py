"""The fake Alpaca's stop orders behave as API_NOTES.md says the real ones do:
they hold the quantity (another sell is refused with "insufficient qty
available"), trigger when the price falls to them, are replaced by PATCH (a new
id, the old one ``replaced``) and canceled by DELETE (through ``pending_cancel``)."""

from __future__ import annotations

import pytest
import requests

from tests.fakeserver import FakeServices

AUTH = {"APCA-API-KEY-ID": "key-id", "APCA-API-SECRET-KEY": "secret"}


@pytest.fixture
def fake():
    with FakeServices() as services:
        services.set_price("AAPL", "200")
        services.add_position("AAPL", "10", "200")
        yield services
        assert services.errors == [], services.errors[0] if services.errors else ""


def call(fake, method, path, **kwargs):
    return requests.request(method, fake.alpaca_url + path, headers=AUTH, timeout=5, **kwargs)


def stop(**overrides):
    body = {"symbol": "AAPL", "side": "sell", "type": "stop", "time_in_force": "gtc", "qty": "10",
            "stop_price": "184", "client_order_id": "ts-1-AAPL"}
    return {k: v for k, v in (body | overrides).items() if v is not None}


def test_a_stop_holds_the_shares_so_another_sell_is_refused_until_it_is_canceled(fake):
    placed = call(fake, "POST", "/v2/orders", json=stop())
    assert placed.status_code == 200 and placed.json()["type"] == "stop" and placed.json()["stop_price"] == "184"
    [position] = call(fake, "GET", "/v2/positions").json()
    assert (position["qty"], position["qty_available"]) == ("10", "0")

    sell = {"symbol": "AAPL", "side": "sell", "type": "market", "time_in_force": "day", "qty": "10", "client_order_id": "tc-1"}
    refused = call(fake, "POST", "/v2/orders", json=sell)
    assert refused.status_code == 403
    assert refused.json()["message"] == "insufficient qty available for order (requested: 10, available: 0)"

    assert call(fake, "DELETE", f"/v2/orders/{placed.json()['id']}").status_code == 204
    assert call(fake, "GET", f"/v2/orders/{placed.json()['id']}").json()["status"] == "canceled"
    assert call(fake, "POST", "/v2/orders", json=sell | {"client_order_id": "tc-2"}).status_code == 200


def test_a_cancel_can_pass_through_pending_cancel(fake):
    fake.cancel_delay_reads = 2
    order = call(fake, "POST", "/v2/orders", json=stop()).json()
    assert call(fake, "DELETE", f"/v2/orders/{order['id']}").status_code == 204
    seen = [call(fake, "GET", f"/v2/orders/{order['id']}").json()["status"] for _ in range(3)]
    assert seen == ["pending_cancel", "canceled", "canceled"]


def test_a_stop_fills_when_the_price_falls_to_it_and_not_before(fake):
    order = call(fake, "POST", "/v2/orders", json=stop()).json()
    fake.set_price("AAPL", "185")
    assert call(fake, "GET", f"/v2/orders/{order['id']}").json()["status"] == "new"
    fake.set_price("AAPL", "183.5")
    filled = call(fake, "GET", f"/v2/orders/{order['id']}").json()
    assert (filled["status"], filled["filled_qty"], filled["filled_avg_price"]) == ("filled", "10", "183.5")
    assert call(fake, "GET", "/v2/positions").json() == []
    assert call(fake, "DELETE", f"/v2/orders/{order['id']}").status_code == 422  # too late to cancel


def test_a_crypto_stop_is_a_stop_limit_that_waits_under_its_limit(fake):
    fake.set_price("BTC/USD", "67000")
    fake.add_position("BTC/USD", "0.05", "67000")
    plain = call(fake, "POST", "/v2/orders", json=stop(symbol="BTC/USD", qty="0.05", stop_price="61640"))
    assert plain.status_code == 422 and "crypto" in plain.json()["message"]
    body = stop(symbol="BTC/USD", qty="0.05", type="stop_limit", stop_price="61640", limit_price="61000", client_order_id="ts-2")
    order = call(fake, "POST", "/v2/orders", json=body).json()
    fake.set_price("BTC/USD", "60000")  # through the stop and under the limit: no fill yet
    assert call(fake, "GET", f"/v2/orders/{order['id']}").json()["status"] == "new"
    fake.set_price("BTC/USD", "61200")
    assert call(fake, "GET", f"/v2/orders/{order['id']}").json()["status"] == "filled"


def test_patch_replaces_a_stop_with_a_new_order_and_refuses_a_final_one(fake):
    old = call(fake, "POST", "/v2/orders", json=stop()).json()
    new = call(fake, "PATCH", f"/v2/orders/{old['id']}", json={"stop_price": "190", "client_order_id": "ts-2-AAPL"})
    assert new.status_code == 200
    assert new.json()["id"] != old["id"] and new.json()["replaces"] == old["id"]
    assert (new.json()["stop_price"], new.json()["client_order_id"], new.json()["qty"]) == ("190", "ts-2-AAPL", "10")
    assert call(fake, "GET", f"/v2/orders/{old['id']}").json()["status"] == "replaced"
    again = call(fake, "PATCH", f"/v2/orders/{old['id']}", json={"stop_price": "191", "client_order_id": "ts-3-AAPL"})
    assert again.status_code == 422
    listed = call(fake, "GET", "/v2/orders", params={"status": "open"}).json()
    assert [o["client_order_id"] for o in listed] == ["ts-2-AAPL"]


def test_stops_alpaca_refuses(fake):
    fake.add_position("MSFT", "2.5", "400", "400")
    fractional = call(fake, "POST", "/v2/orders", json=stop(symbol="MSFT", qty="2.5", stop_price="368", client_order_id="x1"))
    assert fractional.status_code == 422 and "DAY" in fractional.json()["message"]
    above = call(fake, "POST", "/v2/orders", json=stop(stop_price="201", client_order_id="x2"))
    assert above.status_code == 422
    fake.stop_refusals["AAPL"] = "asset AAPL takes no stop orders"
    refused = call(fake, "POST", "/v2/orders", json=stop(client_order_id="x3"))
    assert (refused.status_code, refused.json()["message"]) == (422, "asset AAPL takes no stop orders")
