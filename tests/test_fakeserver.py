"""The fake services behave like the real ones (shapes from API_NOTES.md), record
what they receive, and inject the faults the end-to-end tests rely on."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import tomllib
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from tests.fakeserver import LLAMACPP_MODEL_ID, LLM_FLAVORS, LLM_WRAPS, OPENAI_INSUFFICIENT_QUOTA, FakeServices

AUTH = {"APCA-API-KEY-ID": "key-id", "APCA-API-SECRET-KEY": "secret"}
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def fake():
    with FakeServices() as services:
        yield services
        assert services.errors == [], services.errors[0] if services.errors else ""


@pytest.fixture
def http():
    with requests.Session() as session:
        yield session


def alpaca(fake, http, method, path, **kwargs):
    kwargs.setdefault("headers", AUTH)
    kwargs.setdefault("timeout", 5)
    return http.request(method, fake.alpaca_url + path, **kwargs)


def order_body(**overrides):
    body = {"symbol": "AAPL", "side": "buy", "type": "market", "time_in_force": "day",
            "notional": "1000", "client_order_id": "cyc1-AAPL"}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


# --------------------------------------------------------------------------- URLs and lifecycle


def test_urls_point_at_one_loopback_port(fake):
    port = fake.port
    assert fake.alpaca_url == f"http://127.0.0.1:{port}/alpaca"
    assert fake.finnhub_url == f"http://127.0.0.1:{port}/finnhub"
    assert fake.coingecko_url == f"http://127.0.0.1:{port}/coingecko"
    assert fake.openai_url == f"http://127.0.0.1:{port}/openai/v1"


def test_exit_is_prompt_even_with_a_sleeping_handler(http):
    fake = FakeServices().start()
    fake.fail("alpaca", "delay", seconds=30)
    with pytest.raises(requests.ReadTimeout):
        alpaca(fake, http, "GET", "/v2/account", timeout=0.2)
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 2
    with pytest.raises(requests.ConnectionError):
        requests.get(fake.alpaca_url + "/v2/account", headers=AUTH, timeout=1)


# --------------------------------------------------------------------------- Alpaca


def test_alpaca_requires_both_key_headers(fake, http):
    response = alpaca(fake, http, "GET", "/v2/account", headers={"APCA-API-KEY-ID": "key-id"})
    assert response.status_code == 401
    assert response.json()["code"] == 40110000
    fake.require_auth = False
    assert alpaca(fake, http, "GET", "/v2/account", headers={}).status_code == 200


def test_account_numbers_are_strings(fake, http):
    account = alpaca(fake, http, "GET", "/v2/account").json()
    for key in ("equity", "last_equity", "cash", "buying_power", "portfolio_value"):
        assert isinstance(account[key], str), key
        Decimal(account[key])
    assert account["status"] == "ACTIVE"
    assert account["trading_blocked"] is False and account["account_blocked"] is False
    assert account["currency"] == "USD" and account["id"]
    fake.account["trading_blocked"] = True
    assert alpaca(fake, http, "GET", "/v2/account").json()["trading_blocked"] is True


def test_clock_and_market_closed(fake, http):
    clock = alpaca(fake, http, "GET", "/v2/clock").json()
    assert clock["is_open"] is True
    assert set(clock) >= {"timestamp", "is_open", "next_open", "next_close"}
    assert clock["timestamp"][-6] in "+-"  # Alpaca gives an ET offset, nanoseconds
    fake.set_market_open(False)
    assert alpaca(fake, http, "GET", "/v2/clock").json()["is_open"] is False


def test_positions_report_crypto_without_slash(fake, http):
    assert alpaca(fake, http, "GET", "/v2/positions").json() == []
    fake.add_position("BTC/USD", "0.5", "60000")
    fake.add_position("AAPL", "3", "180")
    positions = {p["symbol"]: p for p in alpaca(fake, http, "GET", "/v2/positions").json()}
    assert set(positions) == {"BTCUSD", "AAPL"}
    btc = positions["BTCUSD"]
    assert btc["asset_class"] == "crypto" and positions["AAPL"]["asset_class"] == "us_equity"
    assert btc["qty"] == "0.5" and btc["avg_entry_price"] == "60000"
    assert btc["current_price"] == "67000.1" and btc["market_value"] == "33500.05"
    assert all(isinstance(btc[k], str) for k in ("qty", "market_value", "unrealized_pl", "current_price"))


def test_assets_by_url_encoded_symbol(fake, http):
    asset = alpaca(fake, http, "GET", "/v2/assets/BTC%2FUSD").json()
    assert asset["symbol"] == "BTC/USD" and asset["class"] == "crypto"
    assert asset["min_order_size"] == "0.0001" and asset["min_trade_increment"] == "0.0001"
    assert alpaca(fake, http, "GET", "/v2/assets/AAPL").json()["class"] == "us_equity"
    assert alpaca(fake, http, "GET", "/v2/assets/NOPE").status_code == 404
    assert fake.calls("alpaca", "GET", "/v2/assets/")[0].path == "/alpaca/v2/assets/BTC%2FUSD"


def test_order_accepted_then_duplicate_client_order_id_refused(fake, http):
    first = alpaca(fake, http, "POST", "/v2/orders", json=order_body())
    assert first.status_code == 200
    order = first.json()
    assert order["status"] in ("new", "accepted")
    assert order["client_order_id"] == "cyc1-AAPL" and order["notional"] == "1000" and order["qty"] is None
    assert order["filled_qty"] == "0" and order["order_class"] == ""
    assert fake.orders["cyc1-AAPL"]["id"] == order["id"]

    again = alpaca(fake, http, "POST", "/v2/orders", json=order_body(notional="5"))
    assert again.status_code == 422
    assert again.json() == {"code": 40010001, "message": "client_order_id must be unique"}
    fake.set_order_status("cyc1-AAPL", "canceled")  # even a canceled order keeps its id taken
    assert alpaca(fake, http, "POST", "/v2/orders", json=order_body()).status_code == 422
    assert len(fake.orders) == 1 and len(fake.orders_posted()) == 3


def test_order_lookup_by_client_order_id_and_id(fake, http):
    order = alpaca(fake, http, "POST", "/v2/orders", json=order_body()).json()
    found = alpaca(fake, http, "GET", "/v2/orders:by_client_order_id", params={"client_order_id": "cyc1-AAPL"})
    assert found.status_code == 200 and found.json()["id"] == order["id"]
    assert alpaca(fake, http, "GET", f"/v2/orders/{order['id']}").json()["client_order_id"] == "cyc1-AAPL"
    missing = alpaca(fake, http, "GET", "/v2/orders:by_client_order_id", params={"client_order_id": "nope"})
    assert missing.status_code == 404
    assert missing.json() == {"code": 40410000, "message": "order not found"}
    assert alpaca(fake, http, "GET", "/v2/orders/00000000-0000-0000-0000-000000000000").status_code == 404


def test_orders_listed_in_any_state_submitted_after_a_time(fake, http):
    first = alpaca(fake, http, "POST", "/v2/orders", json=order_body()).json()
    time.sleep(0.01)
    second = alpaca(fake, http, "POST", "/v2/orders", json=order_body(client_order_id="cyc2-AAPL")).json()
    fake.fill("cyc1-AAPL")
    listed = alpaca(fake, http, "GET", "/v2/orders", params={"status": "all", "limit": 500, "direction": "desc"}).json()
    assert [o["client_order_id"] for o in listed] == ["cyc2-AAPL", "cyc1-AAPL"] and listed[1]["status"] == "filled"
    assert [o["id"] for o in alpaca(fake, http, "GET", "/v2/orders").json()] == [second["id"]]  # open only, by default
    after = alpaca(fake, http, "GET", "/v2/orders", params={"status": "all", "after": first["submitted_at"]}).json()
    assert [o["client_order_id"] for o in after] == ["cyc2-AAPL"]  # strictly after
    day = alpaca(fake, http, "GET", "/v2/orders", params={"status": "all", "after": "2001-01-01T00:00:00Z"}).json()
    assert len(day) == 2
    bad = alpaca(fake, http, "GET", "/v2/orders", params={"status": "all", "after": "yesterday"})
    assert bad.status_code == 422


def test_a_hook_runs_the_tests_code_between_making_a_reply_and_sending_it(fake, http):
    alpaca(fake, http, "POST", "/v2/orders", json=order_body())
    seen = []
    fake.fail("/v2/positions", "hook", times=1, before=lambda req: seen.append(req.subpath),
              after=lambda req, reply: fake.fill("cyc1-AAPL"))  # the fill lands after this reply was made
    assert alpaca(fake, http, "GET", "/v2/positions").json() == [] and seen == ["/v2/positions"]
    assert [p["symbol"] for p in alpaca(fake, http, "GET", "/v2/positions").json()] == ["AAPL"]


@pytest.mark.parametrize(
    "overrides, status",
    [
        ({"symbol": "BTC/USD", "time_in_force": "day", "notional": "100"}, 422),  # crypto refuses day
        ({"qty": "1"}, 422),  # qty and notional together
        ({"notional": None}, 422),  # neither
        ({"type": "limit"}, 422),
        ({"symbol": "ZZZZ"}, 422),
        ({"notional": "0.5"}, 422),  # below $1
        ({"symbol": "BTC/USD", "time_in_force": "gtc", "notional": None, "qty": "0.00001"}, 422),  # < min
        ({"notional": "500000"}, 403),  # insufficient buying power
        ({"side": "sell", "notional": None, "qty": "1"}, 403),  # nothing to sell
        ({"symbol": "BTC/USD", "time_in_force": "gtc", "notional": "100"}, 200),
        ({"symbol": "BTC/USD", "time_in_force": "ioc", "notional": None, "qty": "0.0012"}, 200),
    ],
)
def test_order_validation(fake, http, overrides, status):
    response = alpaca(fake, http, "POST", "/v2/orders", json=order_body(**overrides))
    assert response.status_code == status, response.text
    if status != 200:
        assert set(response.json()) == {"code", "message"}
        assert not fake.orders


def test_fill_orders_updates_order_positions_and_cash(fake, http):
    fake.fill_orders = True
    order = alpaca(fake, http, "POST", "/v2/orders",
                   json=order_body(symbol="BTC/USD", time_in_force="gtc", client_order_id="c-btc")).json()
    assert order["status"] == "filled"
    assert order["filled_avg_price"] == "67000.1"
    assert Decimal(order["filled_qty"]) == (Decimal(1000) / Decimal("67000.1")).quantize(Decimal("1e-9"), "ROUND_DOWN")
    [position] = alpaca(fake, http, "GET", "/v2/positions").json()
    assert position["symbol"] == "BTCUSD" and position["qty"] == order["filled_qty"]
    account = alpaca(fake, http, "GET", "/v2/account").json()
    assert account["cash"] == "99000" and account["equity"] == "100000"

    fake.set_market_open(False)  # stock orders queue while the market is closed
    queued = alpaca(fake, http, "POST", "/v2/orders", json=order_body(client_order_id="c-aapl")).json()
    assert queued["status"] == "accepted"
    fake.fill("c-aapl", price="200")
    assert fake.orders["c-aapl"]["status"] == "filled" and fake.orders["c-aapl"]["filled_qty"] == "5"


# --------------------------------------------------------------------------- Finnhub


def test_finnhub_quote_known_and_unknown(fake, http):
    quote = http.get(fake.finnhub_url + "/quote", params={"symbol": "AAPL"},
                     headers={"X-Finnhub-Token": "tok"}).json()
    assert set(quote) == {"c", "d", "dp", "h", "l", "o", "pc", "t"}
    assert quote["c"] == 187.21 and abs(quote["t"] - time.time()) < 5
    unknown = http.get(fake.finnhub_url + "/quote", params={"symbol": "ZZZZ", "token": "tok"}).json()
    assert unknown == {"c": 0, "d": None, "dp": None, "h": 0, "l": 0, "o": 0, "pc": 0, "t": 0}
    assert [r.token_via for r in fake.calls("finnhub")] == ["header", "query"]
    assert http.get(fake.finnhub_url + "/quote", params={"symbol": "AAPL"}).status_code == 401
    fake.set_price("AAPL", "190", t=1_700_000_000)
    assert http.get(fake.finnhub_url + "/quote?symbol=AAPL&token=x").json()["t"] == 1_700_000_000


def test_finnhub_company_news(fake, http):
    today = time.strftime("%Y-%m-%d", time.gmtime())
    fake.add_news("AAPL", "Apple unveils something", hours_ago=0.5)
    news = http.get(fake.finnhub_url + "/company-news",
                    params={"symbol": "AAPL", "from": today, "to": today, "token": "t"}).json()
    assert news[0]["headline"] == "Apple unveils something"
    assert [n["datetime"] for n in news] == sorted((n["datetime"] for n in news), reverse=True)
    assert set(news[0]) == {"category", "datetime", "headline", "id", "image", "related", "source",
                            "summary", "url"}
    assert http.get(fake.finnhub_url + "/company-news",
                    params={"symbol": "ZZZZ", "from": today, "to": today, "token": "t"}).json() == []


# --------------------------------------------------------------------------- CoinGecko


def test_coingecko_simple_price(fake, http):
    params = {"ids": "bitcoin,nosuchcoin", "vs_currencies": "usd", "include_24hr_change": "true",
              "include_last_updated_at": "true"}
    prices = http.get(fake.coingecko_url + "/simple/price", params=params).json()
    assert set(prices) == {"bitcoin"}
    assert set(prices["bitcoin"]) == {"usd", "usd_24h_change", "last_updated_at"}
    assert prices["bitcoin"]["usd"] == 67000.1 and isinstance(prices["bitcoin"]["last_updated_at"], int)
    assert http.get(fake.coingecko_url + "/simple/price",
                    params={"ids": "nosuchcoin", "vs_currencies": "usd"}).json() == {}


def test_coingecko_is_the_public_host_it_refuses_a_pro_key_and_dates_prices_by_its_time_source(fake, http):
    params = {"ids": "bitcoin", "vs_currencies": "usd", "include_last_updated_at": "true"}
    refused = http.get(fake.coingecko_url + "/simple/price", params=params, headers={"x-cg-pro-api-key": "CG-x"})
    assert refused.status_code == 400 and refused.json()["status"]["error_code"] == 10010
    fake.coingecko_pro_keys.add("CG-pro")  # a key CoinGecko knows as Pro: refused in the demo header too
    in_demo_header = http.get(fake.coingecko_url + "/simple/price", params=params, headers={"x-cg-demo-api-key": "CG-pro"})
    assert in_demo_header.status_code == 400 and in_demo_header.json()["status"]["error_code"] == 10010
    fake.time_source = lambda: 1_900_000_000.0
    demo = http.get(fake.coingecko_url + "/simple/price", params=params, headers={"x-cg-demo-api-key": "CG-x"})
    assert demo.json()["bitcoin"]["last_updated_at"] == 1_900_000_000


# --------------------------------------------------------------------------- OpenAI-compatible


def chat(fake, http, content="Analyze AAPL", **kwargs):
    body = {"model": "gpt-4o-mini", "temperature": 0, "messages": [
        {"role": "system", "content": "You are a trader. Universe: AAPL MSFT BTC/USD"},
        {"role": "user", "content": content}]}
    return http.post(fake.openai_url + "/chat/completions", json=body, timeout=5, **kwargs)


def test_chat_completion_shape_and_default_reply(fake, http):
    reply = chat(fake, http).json()
    # OpenAI names the dated snapshot behind the alias asked for.
    assert reply["object"] == "chat.completion" and reply["model"] == "gpt-4o-mini-2024-07-18" and reply["id"]
    assert reply["choices"][0]["finish_reason"] == "stop"
    assert {"prompt_tokens", "completion_tokens", "total_tokens"} <= set(reply["usage"])
    assert reply["usage"]["completion_tokens_details"]["reasoning_tokens"] == 0
    assert json.loads(reply["choices"][0]["message"]["content"]) == {"decisions": []}
    models = http.get(fake.openai_url + "/models").json()
    assert models["object"] == "list" and models["data"][0]["id"] == "gpt-4o-mini"


def test_llm_decide_answers_the_symbols_asked_about(fake, http):
    fake.llm_decide = {"AAPL": ("buy", 0.9, "breakout"), "MSFT": ("hold", 0.5, "flat"), "BTC/USD": ("sell", 0.8, "x")}
    content = chat(fake, http, "Symbol: AAPL").json()["choices"][0]["message"]["content"]
    assert json.loads(content) == {"decisions": [
        {"symbol": "AAPL", "action": "buy", "confidence": 0.9, "reasoning": "breakout"}]}
    content = chat(fake, http, "Decide for each: AAPL, MSFT, BTC/USD").json()["choices"][0]["message"]["content"]
    assert [d["symbol"] for d in json.loads(content)["decisions"]] == ["AAPL", "MSFT", "BTC/USD"]
    content = chat(fake, http, "no symbol here").json()["choices"][0]["message"]["content"]
    assert len(json.loads(content)["decisions"]) == 3  # nothing mentioned: everything


def test_llm_reply_string_callable_and_override(fake, http):
    fake.llm_reply = "```json\n{\"decisions\": []}\n```"
    assert chat(fake, http).json()["choices"][0]["message"]["content"].startswith("```json")
    seen = []
    fake.llm_reply = lambda request: seen.append(request) or {"status": 503}
    response = chat(fake, http)
    assert response.status_code == 503 and response.json()["error"]["type"] == "server_error"
    assert seen[0]["messages"][1]["content"] == "Analyze AAPL"
    fake.llm_reply = lambda request: {"status": 400, "body": {"error": {"message": "bad", "type": "x"}}}
    assert chat(fake, http).json() == {"error": {"message": "bad", "type": "x"}}
    fake.llm_reply, fake.openai_api_key = None, "sk-test"
    assert chat(fake, http).status_code == 401
    assert chat(fake, http, headers={"Authorization": "Bearer sk-test"}).status_code == 200


@pytest.mark.parametrize("flavor", LLM_FLAVORS)
def test_every_flavor_answers_a_chat_completion_and_lists_its_models(fake, http, flavor):
    fake.llm_flavor, fake.llm_reasoning = flavor, "Thinking about AAPL."
    fake.llm_decide = {"AAPL": ("buy", 0.9, "breakout")}
    models = http.get(fake.openai_url + "/models").json()
    assert models["object"] == "list" and len(models["data"]) == 1
    listed = models["data"][0]["id"]
    assert listed == (LLAMACPP_MODEL_ID if flavor == "llamacpp" else "gpt-4o-mini")
    reply = chat(fake, http, "## AAPL").json()
    message = reply["choices"][0]["message"]
    assert json.loads(message["content"])["decisions"][0]["action"] == "buy"
    assert reply["usage"]["total_tokens"] == reply["usage"]["prompt_tokens"] + reply["usage"]["completion_tokens"]
    thinking = {"openai": None, "ollama": "reasoning", "vllm": "reasoning_content", "llamacpp": "reasoning_content",
                "deepseek": "reasoning_content"}[flavor]
    if thinking:
        assert message[thinking] == "Thinking about AAPL."


@pytest.mark.parametrize(
    "flavor, status, words",
    [("openai", 404, "does not exist or you do not have access"), ("ollama", 404, "try pulling it first"),
     ("vllm", 404, "does not exist"), ("deepseek", 400, "Model Not Exist"), ("llamacpp", 200, None)],
)
def test_an_unknown_model_is_refused_except_by_llamacpp(fake, http, flavor, status, words):
    fake.llm_flavor = flavor
    body = {"model": "llama3", "messages": [{"role": "user", "content": "hi"}]}
    response = http.post(fake.openai_url + "/chat/completions", json=body, timeout=5)
    assert response.status_code == status
    if words:
        assert words in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "refuse, temperature, status, code",
    [("unsupported_value", 0, 400, "unsupported_value"), ("unsupported_value", 1, 200, None),
     ("unsupported_parameter", 1, 400, "unsupported_parameter"), ("unsupported_parameter", None, 200, None)],
)
def test_reasoning_model_refusals_have_openais_shape(fake, http, refuse, temperature, status, code):
    fake.llm_refuse_params = {"temperature": refuse}
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    if temperature is not None:
        body["temperature"] = temperature
    response = http.post(fake.openai_url + "/chat/completions", json=body, timeout=5)
    assert response.status_code == status
    if code:
        error = response.json()["error"]
        assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", "temperature", code)
        assert error["message"].startswith("Unsupported ")


@pytest.mark.parametrize("wrap", LLM_WRAPS)
def test_wraps_dress_the_answer(fake, http, wrap):
    fake.llm_wrap, fake.llm_decide = wrap, {"AAPL": ("hold", 0.5, "flat")}
    content = chat(fake, http, "## AAPL").json()["choices"][0]["message"]["content"]
    answer = json.dumps({"decisions": [{"symbol": "AAPL", "action": "hold", "confidence": 0.5, "reasoning": "flat"}]})
    assert answer in content and (content == answer) == (wrap is None)
    assert ("</think>" in content) == (wrap in ("think", "think_close_only"))
    assert content.startswith("<think>") == (wrap == "think")


def test_content_parts_quota_and_json_schema_refusal(fake, http):
    fake.llm_content_parts = True
    assert chat(fake, http).json()["choices"][0]["message"]["content"] == [{"type": "text", "text": '{"decisions": []}'}]
    fake.llm_json_schema = False
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {}, "strict": True}}
    refused = http.post(
        fake.openai_url + "/chat/completions", timeout=5,
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "response_format": schema})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "response_format"
    fake.llm_quota_exhausted = True
    exhausted = chat(fake, http)
    assert exhausted.status_code == 429 and exhausted.json() == OPENAI_INSUFFICIENT_QUOTA


# --------------------------------------------------------------------------- faults


def test_status_fault_with_retry_after_then_normal(fake, http):
    fault = fake.fail("coingecko", "status", times=1, status=429, headers={"Retry-After": "2"})
    params = {"ids": "bitcoin", "vs_currencies": "usd"}
    limited = http.get(fake.coingecko_url + "/simple/price", params=params)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "2"
    assert limited.json()["status"]["error_code"] == 429
    assert http.get(fake.coingecko_url + "/simple/price", params=params).status_code == 200
    assert fault.used == 1


def test_status_faults_have_per_service_bodies_and_are_consumed_in_order(fake, http):
    fake.fail("/alpaca/v2/orders", "status", times=1, status=429)
    fake.fail("/v2/orders", "status", times=1, status=500)
    fake.fail("finnhub", "status", status=429)  # forever
    assert alpaca(fake, http, "GET", "/v2/account").status_code == 200  # other paths unaffected
    assert alpaca(fake, http, "POST", "/v2/orders", json=order_body()).json()["code"] == 42910000
    assert alpaca(fake, http, "POST", "/v2/orders", json=order_body()).status_code == 500
    assert alpaca(fake, http, "POST", "/v2/orders", json=order_body()).status_code == 200
    for _ in range(2):
        response = http.get(fake.finnhub_url + "/quote?symbol=AAPL&token=t")
        assert response.status_code == 429 and response.json()["error"].startswith("API limit reached")
    fake.reset_faults()
    assert http.get(fake.finnhub_url + "/quote?symbol=AAPL&token=t").status_code == 200
    fake.fail("openai", "status", times=1, status=429)
    assert chat(fake, http).json()["error"]["code"] == "rate_limit_exceeded"


def test_drop_closes_the_connection_without_reply(fake, http):
    fake.fail("alpaca", "drop", times=1)
    with pytest.raises(requests.ConnectionError):
        alpaca(fake, http, "GET", "/v2/account")
    assert alpaca(fake, http, "GET", "/v2/account").status_code == 200
    fake.fail("/v2/orders", "drop", times=1, method="POST", accept=True)  # arrived, then hung up
    with pytest.raises(requests.ConnectionError):
        alpaca(fake, http, "POST", "/v2/orders", json=order_body())
    assert "cyc1-AAPL" in fake.orders


def test_delay_and_latency(http):
    with FakeServices(latency_seconds=0.15) as fake:
        fake.fail("finnhub", "delay", times=1, seconds=0.3)
        started = time.monotonic()
        assert http.get(fake.finnhub_url + "/quote?symbol=AAPL&token=t").status_code == 200
        assert time.monotonic() - started >= 0.45
        started = time.monotonic()
        http.get(fake.finnhub_url + "/quote?symbol=AAPL&token=t")
        assert 0.15 <= time.monotonic() - started < 0.4


def test_late_accept_records_the_order_but_the_client_times_out(fake, http):
    fake.fail("/alpaca/v2/orders", "late_accept", times=1, method="POST", seconds=1.0)
    with pytest.raises(requests.ReadTimeout):
        alpaca(fake, http, "POST", "/v2/orders", json=order_body(), timeout=0.2)
    assert fake.orders["cyc1-AAPL"]["status"] in ("new", "accepted")
    found = alpaca(fake, http, "GET", "/v2/orders:by_client_order_id", params={"client_order_id": "cyc1-AAPL"})
    assert found.status_code == 200
    assert alpaca(fake, http, "POST", "/v2/orders", json=order_body()).status_code == 422


def test_garbage_is_a_200_that_is_not_json(fake, http):
    fake.fail("openai", "garbage", times=1)
    response = chat(fake, http)
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()


def test_fail_rejects_unknown_kinds_and_targets(fake):
    with pytest.raises(ValueError):
        fake.fail("alpaca", "explode")
    with pytest.raises(ValueError):
        fake.fail("binance", "drop")


# --------------------------------------------------------------------------- recording


def test_requests_are_recorded_with_headers_and_bodies(fake, http):
    alpaca(fake, http, "POST", "/v2/orders", json=order_body())
    http.get(fake.coingecko_url + "/simple/price", params={"ids": "bitcoin", "vs_currencies": "usd"},
             headers={"x-cg-demo-api-key": "demo"})
    [posted] = fake.calls("alpaca", "POST", "/v2/orders")
    assert posted.method == "POST" and posted.path == "/alpaca/v2/orders" and posted.subpath == "/v2/orders"
    assert posted.headers["apca-api-key-id"] == "key-id" and posted["headers"]["APCA-API-SECRET-KEY"] == "secret"
    assert posted.json["client_order_id"] == "cyc1-AAPL" and posted.time <= time.time()
    assert fake.orders_posted() == [order_body()]
    [gecko] = fake.calls(service="coingecko")
    assert gecko.query == {"ids": "bitcoin", "vs_currencies": "usd"} and gecko.json is None
    assert gecko.headers.get("X-CG-Demo-API-Key") == "demo"
    assert fake.count() == 2 and fake.count("alpaca", "GET") == 0
    fake.clear_requests()
    assert fake.requests == []


# --------------------------------------------------------------------------- config.toml


def test_config_toml_points_every_service_at_the_fake(fake, tmp_path):
    path = fake.config_toml(tmp_path, universe={"stocks": ["AAPL"]}, cycle={"order_timeout_seconds": 0.5},
                            market_data={"coingecko": {"ids": {"BTC/USD": "bitcoin"}}}, news={"provider": "none"},
                            ai={"temperature": 0.0}, log={"path": "x\\\"y.jsonl"})
    assert path == tmp_path / "config.toml"
    config = tomllib.loads(path.read_text())
    assert config["broker"] == {"provider": "alpaca", "alpaca": {"base_url": fake.alpaca_url}}
    assert config["market_data"]["provider"] == "live"
    assert config["market_data"]["finnhub"]["base_url"] == fake.finnhub_url
    assert config["market_data"]["coingecko"] == {"base_url": fake.coingecko_url, "ids": {"BTC/USD": "bitcoin"}}
    assert config["ai"] == {"provider": "openai", "base_url": fake.openai_url, "model": "gpt-4o-mini",
                            "temperature": 0.0}
    assert config["news"] == {"provider": "none"}
    assert config["universe"] == {"stocks": ["AAPL"], "crypto": ["BTC/USD", "ETH/USD"]}
    assert config["cycle"] == {"order_timeout_seconds": 0.5}
    assert config["database"] == {"path": "tradecycle.db"} and config["log"] == {"path": 'x\\"y.jsonl'}


def test_config_toml_is_a_valid_tradecycle_config(fake, tmp_path):
    config_module = pytest.importorskip("tradecycle.config")
    config = config_module.load_config(fake.config_toml(tmp_path))
    assert config.broker.alpaca.base_url == fake.alpaca_url
    assert config.market_data.alpaca.data_url == fake.alpaca_data_url
    assert config.ai.base_url == fake.openai_url
    assert config.market_data.coingecko.ids == {"BTC/USD": "bitcoin", "ETH/USD": "ethereum"}


# --------------------------------------------------------------------------- standalone


def test_standalone_prints_urls_and_serves():
    process = subprocess.Popen([sys.executable, "-m", "tests.fakeserver", "--port", "0", "--no-auth"],
                               cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        lines = [process.stdout.readline() for _ in range(6)]
        urls = dict(line.split() for line in lines[:5])
        assert set(urls) == {"alpaca", "alpaca_data", "finnhub", "coingecko", "openai"}
        assert requests.get(urls["alpaca"] + "/v2/clock", timeout=5).json()["is_open"] is True
    finally:
        process.terminate()
        process.wait(timeout=5)
