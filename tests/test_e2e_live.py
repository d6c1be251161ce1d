"""End to end, live connectors and the AI analyst: the real ``tradecycle`` CLI in
a subprocess against the local fake of Alpaca, Finnhub, CoinGecko and an
OpenAI-compatible server. Each test asserts what reached the fake, the rows
in the database, the exit code and the messages."""

from __future__ import annotations

import json
import re
import time
from decimal import Decimal

import pytest

from .e2e_helpers import E2E, describe, e2e, fake  # noqa: F401  (fixtures)


def _equity(e2e: E2E) -> Decimal:
    return Decimal(e2e.fake.account["equity"])


# -- 1-3, 5: orders through Alpaca ------------------------------------------------------


def test_buy_decisions_become_two_market_orders_sized_within_the_limit(e2e):
    e2e.fake.llm_decide = {"AAPL": ("buy", 0.9, "breakout"), "BTC/USD": ("buy", 0.9, "momentum")}
    result = e2e.run()

    posted = {body["symbol"]: body for body in e2e.posted_orders()}
    assert len(e2e.posted_orders()) == 2 and set(posted) == {"AAPL", "BTC/USD"}
    assert posted["AAPL"]["time_in_force"] == "day"
    assert posted["BTC/USD"]["time_in_force"] == "gtc"
    ceiling = _equity(e2e) * Decimal("0.10")
    for body in posted.values():
        assert body["type"] == "market" and body["side"] == "buy"
        assert body["client_order_id"]
        assert "qty" not in body and Decimal(body["notional"]) <= ceiling

    trades = {t["symbol"]: t for t in e2e.trades()}
    assert set(trades) == {"AAPL", "BTC/USD"}
    for symbol, trade in trades.items():
        at_broker = e2e.fake.orders[posted[symbol]["client_order_id"]]
        assert trade["client_order_id"] == posted[symbol]["client_order_id"]
        assert trade["broker_order_id"] == at_broker["id"]
        assert trade["status"] == at_broker["status"] == "new"
    assert {s: d["outcome"] for s, d in e2e.decisions().items()} == {"AAPL": "ordered", "BTC/USD": "ordered"}
    assert "2 orders" in result.stdout and result.stdout.count("\n") == 1  # cron: one line


def test_dry_run_sends_no_order_and_records_the_would_be_orders(e2e):
    e2e.fake.llm_decide = {"AAPL": ("buy", 0.9, "breakout"), "BTC/USD": ("buy", 0.9, "momentum")}
    result = e2e.run("--dry-run")

    assert e2e.fake.count("alpaca", "POST", "/v2/orders") == 0
    trades = e2e.trades()
    assert {t["symbol"] for t in trades} == {"AAPL", "BTC/USD"}
    assert all(t["status"] == "dry_run" and t["broker_order_id"] is None for t in trades)
    assert {d["outcome"] for d in e2e.decisions().values()} == {"dry_run"}
    assert e2e.last_cycle()["dry_run"] == 1
    assert "dry run" in result.stdout


def test_a_403_on_the_order_is_a_rejected_trade_with_the_brokers_message(e2e):
    e2e.configure(universe={"stocks": ["AAPL"], "crypto": []})
    e2e.fake.llm_decide = {"AAPL": ("buy", 0.9, "breakout")}
    e2e.fake.fail("/v2/orders", "status", status=403, method="POST", message="insufficient buying power")
    e2e.run()

    assert len(e2e.posted_orders()) == 1
    [trade] = e2e.trades()
    assert trade["status"] == "rejected"
    assert "insufficient buying power" in trade["notes"]
    assert e2e.decisions()["AAPL"]["outcome"] == "rejected"
    assert e2e.last_cycle()["status"] == "completed"


def test_the_live_alpaca_url_is_refused_before_any_request(e2e):
    e2e.configure(broker={"alpaca": {"base_url": "https://api.alpaca.markets"}})
    result = e2e.run(expect=2)

    assert "paper" in result.stderr
    assert "broker.alpaca.base_url" in result.stderr
    assert e2e.fake.requests == []
    assert not e2e.db_path.exists()


# -- 4: quotes from the cache when Finnhub rate-limits ---------------------------------------


def test_finnhub_rate_limited_falls_back_to_the_cached_price(e2e):
    e2e.configure(universe={"stocks": ["AAPL"], "crypto": []})
    e2e.fake.llm_decide = {"AAPL": ("buy", 0.5, "not sure")}  # low confidence: analysed every cycle, never ordered
    e2e.run()
    first = e2e.last_cycle()["cycle_id"]
    assert e2e.decisions(first)["AAPL"]["quote_source"] == "finnhub"

    e2e.fake.fail("/finnhub/quote", "status", status=429)  # every quote from now on
    e2e.fake.clear_requests()
    result = e2e.run()

    assert e2e.fake.count("finnhub", "GET", "/quote") >= 1
    assert all(r.fault == "status" for r in e2e.fake.calls("finnhub", "GET", "/quote"))
    second = e2e.last_cycle()
    assert second["cycle_id"] != first and second["status"] == "completed", describe(result)
    decision = e2e.decisions(second["cycle_id"])["AAPL"]
    assert decision["quote_source"] == "cache"
    assert Decimal(decision["price"]) == Decimal("187.21")
    assert decision["outcome"] == "low_confidence"  # analysed with the cached price
    assert e2e.fake.count("openai", "POST", "/chat/completions") == 1


# -- 6: what the analyst is asked ------------------------------------------------------------------


def _chat_requests(e2e: E2E):
    return e2e.fake.calls("openai", "POST", "/chat/completions")


def _user_text(request) -> str:
    return " ".join(m["content"] for m in request.json["messages"] if m["role"] == "user")


@pytest.mark.parametrize("api_key", ["sk-e2eTESTKEY0123456789", None], ids=["with-key", "without-key"])
def test_the_analyst_is_asked_with_prices_headlines_and_a_response_format(e2e, api_key):
    e2e.fake.openai_api_key = api_key  # the fake then demands exactly this bearer token (or none)
    e2e.env = {**e2e.env, **({"OPENAI_API_KEY": api_key} if api_key else {})}
    e2e.configure(universe={"stocks": ["AAPL", "MSFT"], "crypto": ["BTC/USD"]}, ai={"temperature": 0.2})
    e2e.fake.add_news("MSFT", "Microsoft unveils a new datacenter chip", hours_ago=1)
    e2e.fake.llm_decide = {
        "AAPL": ("hold", 0.7, "AAPL waits for earnings"),
        "MSFT": ("hold", 0.6, "MSFT chip news is priced in"),
        "BTC/USD": ("hold", 0.55, "BTC range-bound"),
    }
    e2e.run()

    requests = _chat_requests(e2e)
    assert len(requests) == 3
    by_symbol = {}
    for request in requests:
        body = request.json
        assert body["response_format"]["type"] in ("json_schema", "json_object")
        assert body["temperature"] == 0.2
        assert body["model"] == "gpt-4o-mini"
        if api_key:
            assert request.headers.get("Authorization") == f"Bearer {api_key}"
        else:
            assert "Authorization" not in request.headers
        text = _user_text(request)
        [symbol] = [s for s in ("AAPL", "MSFT", "BTC/USD") if f"## {s}" in text]
        by_symbol[symbol] = text
    assert "187.21" in by_symbol["AAPL"] and "415.5" in by_symbol["MSFT"] and "67000.1" in by_symbol["BTC/USD"]
    assert "AAPL shares edge higher ahead of earnings" in by_symbol["AAPL"]
    assert "Analysts weigh in on AAPL outlook" in by_symbol["AAPL"]
    assert "Microsoft unveils a new datacenter chip" in by_symbol["MSFT"]
    assert "Microsoft unveils" not in by_symbol["AAPL"]

    decisions = e2e.decisions()
    assert decisions["AAPL"]["reasoning"] == "AAPL waits for earnings"
    assert decisions["MSFT"]["reasoning"] == "MSFT chip news is priced in"
    assert decisions["BTC/USD"]["reasoning"] == "BTC range-bound"
    assert {d["outcome"] for d in decisions.values()} == {"hold"}
    assert e2e.posted_orders() == []


# -- 7-9: replies that must not trade -----------------------------------------------------------------


def _reply(decisions: list[dict]) -> str:
    return json.dumps({"decisions": decisions})


BAD_REPLIES = [
    # (id, llm_reply or None, fault args or None, expected outcome, words in the recorded reason)
    ("garbage", "Sure! I would definitely buy AAPL right now.", None, "ai_invalid", "not valid json"),
    ("moon", _reply([{"symbol": "AAPL", "action": "moon", "confidence": 0.9, "reasoning": "to the moon"}]), None,
     "ai_invalid", "action"),
    ("confidence-7", _reply([{"symbol": "AAPL", "action": "buy", "confidence": 7, "reasoning": "sure thing"}]), None,
     "ai_invalid", "confidence"),
    ("http-500", None, {"status": 500}, "ai_unavailable", "500"),
    ("extra-symbol", _reply([{"symbol": "TSLA", "action": "buy", "confidence": 0.95, "reasoning": "not asked"}]), None,
     "ai_invalid", "no decision for aapl"),
]


@pytest.mark.parametrize("reply, fault, outcome, reason", [c[1:] for c in BAD_REPLIES], ids=[c[0] for c in BAD_REPLIES])
def test_a_bad_or_missing_reply_holds_with_the_reason_recorded(e2e, reply, fault, outcome, reason):
    e2e.configure(universe={"stocks": ["AAPL"], "crypto": []})
    if reply is not None:
        e2e.fake.llm_reply = reply
    if fault is not None:
        e2e.fake.fail("openai", "status", **fault)
    result = e2e.run()

    assert e2e.posted_orders() == [] and e2e.trades() == []
    decisions = e2e.decisions()
    assert set(decisions) == {"AAPL"}  # an extra symbol in the reply gets no row
    assert decisions["AAPL"]["action"] == "hold"
    assert decisions["AAPL"]["outcome"] == outcome
    assert reason in decisions["AAPL"]["reasoning"].lower()
    assert e2e.last_cycle()["status"] == "completed"
    assert re.search(r"\b1 errors?\b", result.stdout), result.stdout
    if fault is not None:
        assert len(_chat_requests(e2e)) >= 2  # 5xx is retried (max_retries = 2) before holding


def test_a_decision_for_a_symbol_outside_the_universe_is_dropped_and_logged(e2e):
    e2e.configure(universe={"stocks": ["AAPL"], "crypto": []})
    e2e.fake.llm_reply = _reply([
        {"symbol": "AAPL", "action": "buy", "confidence": 0.9, "reasoning": "breakout"},
        {"symbol": "TSLA", "action": "buy", "confidence": 0.99, "reasoning": "sneaked in"},
    ])
    e2e.run()

    assert [b["symbol"] for b in e2e.posted_orders()] == ["AAPL"]
    assert set(e2e.decisions()) == {"AAPL"}
    events = [json.loads(line) for line in e2e.log_path.read_text().splitlines()]
    dropped = [e for e in events if "dropped" in e["event"]]
    assert dropped and any("TSLA" in json.dumps(e) for e in dropped)


def test_a_quantity_in_the_reply_is_ignored_and_the_order_stays_within_the_position_limit(e2e):
    e2e.configure(universe={"stocks": ["AAPL"], "crypto": []})
    e2e.fake.llm_decide = {"AAPL": {"action": "buy", "confidence": 0.95, "reasoning": "all in", "quantity": 1000000}}
    e2e.run()

    [body] = e2e.posted_orders()
    assert "qty" not in body
    assert Decimal(body["notional"]) <= _equity(e2e) * Decimal("0.10")
    [trade] = e2e.trades()
    # The recorded size is the tool's: notional / price, nowhere near the model's million shares.
    assert Decimal(trade["quantity"]) * Decimal(trade["price"]) <= Decimal(body["notional"])


def test_a_slow_model_holds_every_symbol_inside_the_analysis_timeout(e2e):
    e2e.configure(cycle={"analysis_timeout_seconds": 1})
    e2e.fake.llm_decide = {"AAPL": ("buy", 0.9, "late"), "BTC/USD": ("buy", 0.9, "late")}
    e2e.fake.fail("openai", "delay", seconds=10)
    started = time.monotonic()
    e2e.run()
    elapsed = time.monotonic() - started

    assert elapsed < 7, f"the CLI took {elapsed:.1f}s"  # it never waited for the 10 s reply (start-up is slow on a busy machine)
    assert e2e.posted_orders() == []
    decisions = e2e.decisions()
    assert {s: d["outcome"] for s, d in decisions.items()} == {"AAPL": "ai_unavailable", "BTC/USD": "ai_unavailable"}
    assert all(d["action"] == "hold" and d["reasoning"] for d in decisions.values())
