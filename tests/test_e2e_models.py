"""Any OpenAI-compatible model, end to end (issue 11, items 11-14): the real CLI
against the fake imitating OpenAI reasoning models, Ollama, vLLM, llama.cpp
and DeepSeek. Asserted: the orders that reached the broker, the requests that
reached the model server, the rows and log lines written, `check --online`'s
table and exit code."""

from __future__ import annotations

import json

import pytest

from .e2e_helpers import E2E, describe, e2e, fake  # noqa: F401  (fixtures)
from .fakeserver import LLAMACPP_MODEL_ID, LLM_FLAVORS

ONE_STOCK = {"stocks": ["AAPL"], "crypto": []}
BUY_AAPL = {"AAPL": ("buy", 0.9, "breakout on volume")}


def chat_bodies(e2e: E2E) -> list[dict]:
    return [r.json for r in e2e.fake.calls("openai", "POST", "/chat/completions")]


def log_events(e2e: E2E, name: str) -> list[dict]:
    events = [json.loads(line) for line in e2e.log_path.read_text().splitlines()]
    return [e for e in events if e["event"] == name]


def check_online(e2e: E2E):
    result = e2e.cli("check", "--online", "--json")
    services = {s["service"]: s for s in json.loads(result.stdout)["services"]}
    return result, services["ai"]


# -- 11: reasoning models that refuse temperature ---------------------------------------------------


@pytest.mark.parametrize(
    "model, refusal", [("gpt-5", "unsupported_value"), ("o3-mini", "unsupported_parameter")],
)
def test_a_reasoning_model_that_refuses_temperature_still_trades(e2e, model, refusal):
    e2e.fake.llm_model, e2e.fake.llm_refuse_params = model, {"temperature": refusal}
    e2e.fake.llm_decide = BUY_AAPL
    e2e.configure(universe=ONE_STOCK, ai={"model": model, "temperature": 0.0})
    e2e.run()

    assert [order["symbol"] for order in e2e.posted_orders()] == ["AAPL"]
    assert e2e.decisions()["AAPL"]["outcome"] == "ordered"
    first, second = chat_bodies(e2e)
    assert first["temperature"] == 0.0 and "temperature" not in second
    assert first["response_format"] == second["response_format"]  # not taken for a json_schema refusal
    [dropped] = log_events(e2e, "ai_parameter_dropped")
    assert (dropped["parameter"], dropped["symbol"], dropped["level"]) == ("temperature", "AAPL", "warning")


def test_temperature_left_out_of_the_config_is_not_sent(e2e):
    e2e.fake.llm_decide = BUY_AAPL
    e2e.configure(universe=ONE_STOCK)  # the fake's config has no ai.temperature
    e2e.run()
    [body] = chat_bodies(e2e)
    assert "temperature" not in body
    assert e2e.decisions()["AAPL"]["outcome"] == "ordered"


def test_check_online_asks_a_reasoning_model_for_one_decision_with_the_configured_parameters(e2e):
    e2e.fake.llm_model, e2e.fake.llm_refuse_params = "gpt-5", {"temperature": "unsupported_value"}
    e2e.fake.llm_decide = {"AAPL": ("hold", 0.6, "wait")}
    e2e.configure(universe=ONE_STOCK, ai={"model": "gpt-5", "temperature": 0.0})

    result, ai = check_online(e2e)

    assert result.returncode == 0, describe(result)
    assert ai["ok"] and ai["detail"].startswith("gpt-5 answered one decision (AAPL hold 0.6)")
    assert "the server refused temperature" in ai["detail"] and "unset ai.temperature" in ai["detail"]
    first, second = chat_bodies(e2e)
    assert first["model"] == "gpt-5" and first["temperature"] == 0.0 and "## AAPL" in first["messages"][1]["content"]
    assert "temperature" not in second
    assert e2e.fake.count("alpaca", "POST") == 0


def test_check_online_fails_when_the_model_cannot_answer(e2e):
    e2e.fake.llm_quota_exhausted = True  # /models answers; only a completion shows the problem
    result, ai = check_online(e2e)
    assert result.returncode == 1
    assert not ai["ok"] and "quota exhausted" in ai["detail"] and "You exceeded your current quota" in ai["detail"]
    assert e2e.fake.count("openai", "GET", "/models") == 1


# -- 12: replies wrapped the way real models wrap them --------------------------------------------


@pytest.mark.parametrize(
    "setup",
    [{"llm_wrap": "prose"}, {"llm_wrap": "prose_fence"}, {"llm_wrap": "think_close_only"}, {"llm_content_parts": True}],
    ids=["prose", "fence-in-prose", "think-close-only", "content-parts"],
)
def test_a_wrapped_reply_reaches_the_broker(e2e, setup):
    for name, value in setup.items():
        setattr(e2e.fake, name, value)
    e2e.fake.llm_decide = BUY_AAPL
    e2e.configure(universe=ONE_STOCK)
    e2e.run()

    assert [order["symbol"] for order in e2e.posted_orders()] == ["AAPL"]
    decision = e2e.decisions()["AAPL"]
    assert (decision["action"], decision["outcome"], decision["reasoning"]) == ("buy", "ordered", "breakout on volume")


def test_a_reply_with_two_different_answers_holds(e2e):
    buy = {"decisions": [{"symbol": "AAPL", "action": "buy", "confidence": 0.9, "reasoning": "up"}]}
    sell = {"decisions": [{"symbol": "AAPL", "action": "sell", "confidence": 0.9, "reasoning": "down"}]}
    e2e.fake.llm_reply = f"Either {json.dumps(buy)} or maybe {json.dumps(sell)}."
    e2e.configure(universe=ONE_STOCK)
    e2e.run()

    assert e2e.posted_orders() == []
    decision = e2e.decisions()["AAPL"]
    assert (decision["outcome"], decision["reasoning"]) == (
        "ai_invalid", "reply holds 2 different JSON objects: which one is the answer is unclear")


# -- 13: a used-up quota is not a rate limit ------------------------------------------------------


def test_insufficient_quota_is_not_retried_and_holds_with_the_reason(e2e):
    e2e.fake.llm_quota_exhausted = True
    e2e.fake.llm_decide = BUY_AAPL
    e2e.configure(universe=ONE_STOCK)  # cycle.max_retries = 2: a rate limit would be asked 3 times
    e2e.run()

    assert len(chat_bodies(e2e)) == 1
    assert e2e.posted_orders() == []
    decision = e2e.decisions()["AAPL"]
    assert decision["outcome"] == "ai_unavailable"
    assert decision["reasoning"].startswith("model server quota exhausted (not retried): You exceeded your current quota")


# -- 14: llama.cpp and friends ---------------------------------------------------------------------


def test_check_online_accepts_llamacpp_listing_its_model_by_file_name(e2e):
    e2e.fake.llm_flavor = "llamacpp"
    e2e.fake.llm_decide = {"AAPL": ("hold", 0.5, "flat")}
    e2e.configure(universe=ONE_STOCK, ai={"model": "qwen3"})

    result, ai = check_online(e2e)

    assert result.returncode == 0, describe(result)
    assert ai["ok"]
    assert ai["detail"] == (f"qwen3 answered one decision (AAPL hold 0.5); "
                            f"the server lists one model, '{LLAMACPP_MODEL_ID}', and serves it as 'qwen3'")


def test_check_online_notes_a_model_served_but_not_listed(e2e):
    e2e.fake.llm_flavor, e2e.fake.llm_models = "llamacpp", ["models/a.gguf", "models/b.gguf"]  # router mode
    e2e.fake.llm_decide = {"AAPL": ("hold", 0.5, "flat")}
    e2e.configure(universe=ONE_STOCK, ai={"model": "qwen3"})
    result, ai = check_online(e2e)
    assert result.returncode == 0, describe(result)
    assert "'qwen3' is not among the 2 models listed (models/a.gguf, models/b.gguf), but it answered" in ai["detail"]


def test_check_online_still_fails_a_model_neither_listed_nor_served(e2e):
    e2e.fake.llm_flavor, e2e.fake.llm_models = "ollama", ["llama3.2:latest", "qwen3:8b"]
    e2e.configure(universe=ONE_STOCK, ai={"model": "gpt-oss"})
    result, ai = check_online(e2e)
    assert result.returncode == 1
    assert 'model "gpt-oss" not found, try pulling it first' in ai["detail"]
    assert "the server does not offer model 'gpt-oss' (it lists llama3.2:latest, qwen3:8b): check ai.model" in ai["detail"]


@pytest.mark.parametrize("flavor", LLM_FLAVORS)
def test_every_server_flavour_trades_and_records_its_token_counts(e2e, flavor):
    e2e.fake.llm_flavor, e2e.fake.llm_reasoning = flavor, "Breakout above the 20-day high."
    e2e.fake.llm_decide = BUY_AAPL
    model = "llama3.2" if flavor == "ollama" else "gpt-4o-mini"  # Ollama finds "llama3.2:latest"
    e2e.fake.llm_models = ["llama3.2:latest"] if flavor == "ollama" else None
    e2e.configure(universe=ONE_STOCK, ai={"model": model})
    e2e.run()

    assert [order["symbol"] for order in e2e.posted_orders()] == ["AAPL"]
    decision = e2e.decisions()["AAPL"]
    assert decision["outcome"] == "ordered"
    assert decision["prompt_tokens"] > 0 and decision["completion_tokens"] > 0
