import http.server
import json
import re
import socket
import threading
import time

import pytest
import responses

from .ai_helpers import completion, decisions_json, item, make_input, news
from tradecycle.ai.openai_compat import OpenAICompatAnalyst
from tradecycle.ai.prompt import NEWS_CLOSE, NEWS_OPEN, decision_schema
from tradecycle.connectors.http import HttpSettings

BASE_URL = "https://llm.test/v1"
URL = f"{BASE_URL}/chat/completions"
KEY = "sk-test-0123456789abcdef"
SETTINGS = HttpSettings(timeout_seconds=5, max_retries=2, retry_base_delay_seconds=0.001, retry_max_delay_seconds=0.01)


def make_analyst(
    api_key: str = "", base_url: str = BASE_URL, events: list | None = None, temperature: float | None = 0.0, model: str = "gpt-4o-mini"
) -> OpenAICompatAnalyst:
    logger = (lambda event, fields: events.append((event, fields))) if events is not None else None
    return OpenAICompatAnalyst(base_url, model, temperature, api_key, SETTINGS, logger=logger)


def sent(call) -> dict:
    return json.loads(call.request.body)


def asked_symbol(body: dict) -> str:
    return re.search(r"^## (\S+)", body["messages"][1]["content"], re.MULTILINE).group(1)


def reply_for_each_symbol(request):
    symbol = asked_symbol(json.loads(request.body))
    content = decisions_json(item(symbol, "buy", 0.8, f"{symbol} looks strong"))
    return 200, {}, json.dumps(completion(content))


# -- the request ---------------------------------------------------------------


@responses.activate
def test_one_request_per_symbol_with_model_temperature_schema_and_fenced_news():
    responses.add_callback(responses.POST, URL, callback=reply_for_each_symbol)
    inputs = [
        make_input("AAPL", price="187.21", headlines=(news("AAPL", "Apple beats estimates"),)),
        make_input("BTC/USD", price="67000.1", headlines=(news("BTC/USD", "ETF inflows rise"),)),
    ]

    decisions = make_analyst().analyse(inputs, timeout_seconds=10)

    assert [(d.symbol, d.action, d.failure) for d in decisions] == [("AAPL", "buy", None), ("BTC/USD", "buy", None)]
    bodies = {asked_symbol(sent(call)): sent(call) for call in responses.calls}
    assert set(bodies) == {"AAPL", "BTC/USD"}
    for symbol, price, headline in [("AAPL", "187.21", "Apple beats estimates"), ("BTC/USD", "67000.1", "ETF inflows rise")]:
        body = bodies[symbol]
        assert body["model"] == "gpt-4o-mini"
        assert body["temperature"] == 0.0
        assert body["response_format"] == {
            "type": "json_schema",
            "json_schema": {"name": "trading_decisions", "schema": decision_schema(), "strict": True},
        }
        user = body["messages"][1]["content"]
        assert f"{price} USD" in user
        fenced = user.split(NEWS_OPEN, 1)[1].split(NEWS_CLOSE, 1)[0]
        assert headline in fenced
        other = "BTC/USD" if symbol == "AAPL" else "AAPL"
        assert f"## {other}" not in user  # each request speaks of one symbol only


@pytest.mark.parametrize("api_key, expected", [(KEY, f"Bearer {KEY}"), ("", None)])
@responses.activate
def test_bearer_header_only_with_a_key(api_key, expected):
    responses.add(responses.POST, URL, json=completion(decisions_json(item())))
    make_analyst(api_key=api_key).analyse([make_input()], timeout_seconds=10)
    assert responses.calls[0].request.headers.get("Authorization") == expected


@responses.activate
def test_no_inputs_no_calls():
    assert make_analyst().analyse([], timeout_seconds=10) == []
    assert len(responses.calls) == 0


# -- the reply -----------------------------------------------------------------

VALID = decisions_json(item("AAPL", "buy", 0.72, "Breakout on volume"))


@pytest.mark.parametrize(
    "content, finish_reason, action, failure, reasoning",
    [
        (VALID, "stop", "buy", None, "Breakout on volume"),
        (f"```json\n{VALID}\n```", "stop", "buy", None, "Breakout on volume"),
        (decisions_json(item(quantity=1000000)), "stop", "buy", None, "Breakout on volume"),
        (decisions_json(item("AAPL", "sell", 0.65, "Lower highs")), "stop", "sell", None, "Lower highs"),
        ("Buy AAPL, it is going up!", "stop", "hold", "ai_invalid", "reply is not valid JSON"),
        (decisions_json(item(action="moon")), "stop", "hold", "ai_invalid", "invalid decision for AAPL: action:"),
        (decisions_json(item(confidence=7)), "stop", "hold", "ai_invalid", "invalid decision for AAPL: confidence:"),
        (decisions_json(item("MSFT")), "stop", "hold", "ai_invalid", "no decision for AAPL in the reply"),
        (VALID[:30], "length", "hold", "ai_invalid", "reply truncated (finish_reason=length)"),
        (None, "stop", "hold", "ai_invalid", "reply is empty"),
    ],
    ids=["valid", "fenced", "quantity-ignored", "sell", "garbage", "moon", "confidence-7", "missing-symbol", "truncated", "no-content"],
)
@responses.activate
def test_reply_cases(content, finish_reason, action, failure, reasoning):
    responses.add(responses.POST, URL, json=completion(content, finish_reason=finish_reason))
    [decision] = make_analyst().analyse([make_input()], timeout_seconds=10)
    assert (decision.symbol, decision.action, decision.failure) == ("AAPL", action, failure)
    assert decision.reasoning.startswith(reasoning)
    assert decision.model == "gpt-4o-mini"
    assert decision.raw_reply == content
    if failure:
        assert decision.confidence == 0.0
    assert len(responses.calls) == 1


@responses.activate
def test_extra_symbol_is_dropped_and_logged():
    content = decisions_json(item("AAPL", "hold", 0.5, "Flat"), item("GME", "buy", 1.0, "Moon"))
    responses.add(responses.POST, URL, json=completion(content))
    events: list = []

    decisions = make_analyst(events=events).analyse([make_input()], timeout_seconds=10)

    assert [(d.symbol, d.action, d.failure) for d in decisions] == [("AAPL", "hold", None)]
    assert events == [
        ("ai_decision_dropped", {"model": "gpt-4o-mini", "symbol": "AAPL", "reply_symbol": "GME", "reason": "symbol outside the request"})
    ]


@responses.activate
def test_usage_latency_and_raw_reply_are_recorded():
    long_reasoning = "r" * 5000
    content = decisions_json(item(reasoning=long_reasoning))
    responses.add(responses.POST, URL, json=completion(content, usage={"prompt_tokens": 412, "completion_tokens": 38, "total_tokens": 450}))

    [decision] = make_analyst().analyse([make_input()], timeout_seconds=10)

    assert (decision.prompt_tokens, decision.completion_tokens) == (412, 38)
    assert isinstance(decision.latency_ms, int) and decision.latency_ms >= 0
    assert decision.raw_reply == content[:4000]
    assert decision.failure is None


@responses.activate
def test_missing_usage_leaves_tokens_empty():
    responses.add(responses.POST, URL, json=completion(VALID))
    [decision] = make_analyst().analyse([make_input()], timeout_seconds=10)
    assert (decision.prompt_tokens, decision.completion_tokens) == (None, None)


# -- errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    "status, body, calls, reasoning",
    [
        (500, {"error": {"message": "upstream overloaded"}}, 3, "model server unavailable: HTTP 500: upstream overloaded"),
        (503, "Service Unavailable", 3, "model server unavailable: HTTP 503: Service Unavailable"),
        (429, {"error": {"message": "Rate limit reached for gpt-4o-mini", "type": "requests"}}, 3, "model server rate limited: Rate limit reached for gpt-4o-mini"),
        (
            401,
            {"error": {"message": f"Incorrect API key provided: {KEY}.", "type": "invalid_request_error", "code": "invalid_api_key"}},
            1,
            "model server refused the request: HTTP 401: Incorrect API key provided: ***. (check OPENAI_API_KEY)",
        ),
        (
            404,
            {"error": {"message": "The model `gpt-9` does not exist or you do not have access to it.", "code": "model_not_found"}},
            1,
            "model server refused the request: HTTP 404: The model `gpt-9` does not exist or you do not have access to it. (check ai.model and ai.base_url)",
        ),
        (
            400,
            {"error": {"message": "'messages' must contain the word 'json'", "type": "invalid_request_error", "param": "messages", "code": None}},
            2,  # json_schema, then json_object: both refused
            "model server refused the request: HTTP 400: 'messages' must contain the word 'json'",
        ),
        (
            429,
            {"error": {"message": "You exceeded your current quota, please check your plan and billing details.",
                       "type": "insufficient_quota", "param": None, "code": "insufficient_quota"}},
            1,  # not transient: no retry
            "model server quota exhausted (not retried): You exceeded your current quota, please check your plan and billing details. (check the plan and billing of the account)",
        ),
    ],
    ids=["500", "503-text", "429", "401", "404-model", "400-twice", "429-insufficient-quota"],
)
@responses.activate
def test_service_errors_hold_with_ai_unavailable(status, body, calls, reasoning):
    if isinstance(body, dict):
        responses.add(responses.POST, URL, json=body, status=status)
    else:
        responses.add(responses.POST, URL, body=body, status=status)

    [decision] = make_analyst(api_key=KEY).analyse([make_input()], timeout_seconds=10)

    assert (decision.action, decision.failure, decision.reasoning) == ("hold", "ai_unavailable", reasoning)
    assert len(responses.calls) == calls
    assert KEY not in decision.reasoning


@responses.activate
def test_json_schema_refused_falls_back_to_json_object_once():
    responses.add(
        responses.POST,
        URL,
        status=400,
        json={"error": {"message": "Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model."}},
    )
    responses.add(responses.POST, URL, json=completion(VALID))
    events: list = []

    [decision] = make_analyst(events=events).analyse([make_input()], timeout_seconds=10)

    assert (decision.action, decision.failure) == ("buy", None)
    assert len(responses.calls) == 2
    assert sent(responses.calls[0])["response_format"]["type"] == "json_schema"
    assert sent(responses.calls[1])["response_format"] == {"type": "json_object"}
    assert sent(responses.calls[1])["messages"] == sent(responses.calls[0])["messages"]
    assert [event for event, _ in events] == ["ai_json_schema_refused"]


@responses.activate
def test_fallback_is_not_remembered_across_calls():
    refused = {"error": {"message": "response_format json_schema not supported"}}
    responses.add(responses.POST, URL, status=400, json=refused)
    responses.add(responses.POST, URL, json=completion(VALID))
    analyst = make_analyst()
    analyst.analyse([make_input()], timeout_seconds=10)
    analyst.analyse([make_input()], timeout_seconds=10)
    assert [sent(c)["response_format"]["type"] for c in responses.calls] == ["json_schema", "json_object", "json_schema"]


@pytest.mark.parametrize(
    "kwargs, reasoning",
    [
        ({"body": "<html>502 from a proxy</html>", "status": 200}, "model server sent an unusable answer: HTTP 200 but the body is not JSON"),
        ({"json": {"error": {"message": "No endpoints found for gpt-4o-mini"}}}, "model server error: No endpoints found for gpt-4o-mini"),
        ({"json": {"choices": []}}, "model server reply has no choices[0].message"),
    ],
    ids=["html", "error-in-200", "no-choices"],
)
@responses.activate
def test_a_body_that_is_not_a_chat_completion_holds(kwargs, reasoning):
    responses.add(responses.POST, URL, **kwargs)
    [decision] = make_analyst().analyse([make_input()], timeout_seconds=10)
    assert (decision.action, decision.failure, decision.reasoning) == ("hold", "ai_unavailable", reasoning)


@responses.activate
def test_one_failing_symbol_does_not_hold_the_others():
    def callback(request):
        if asked_symbol(json.loads(request.body)) == "AAPL":
            return 500, {}, json.dumps({"error": {"message": "boom"}})
        return reply_for_each_symbol(request)

    responses.add_callback(responses.POST, URL, callback=callback)
    decisions = make_analyst().analyse([make_input("AAPL"), make_input("MSFT"), make_input("ETH/USD")], timeout_seconds=10)
    assert [(d.symbol, d.action, d.failure) for d in decisions] == [
        ("AAPL", "hold", "ai_unavailable"),
        ("MSFT", "buy", None),
        ("ETH/USD", "buy", None),
    ]


def test_connection_refused_holds_with_ai_unavailable():
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    [decision] = make_analyst(base_url=f"http://127.0.0.1:{port}/v1").analyse([make_input()], timeout_seconds=5)
    assert (decision.failure, decision.reasoning) == ("ai_unavailable", "model server unavailable: cannot connect (connection refused)")


# -- the time budget -----------------------------------------------------------


class _SlowHandler(http.server.BaseHTTPRequestHandler):
    release: threading.Event

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.release.wait(5)  # a model server that takes 5 s to answer
        body = json.dumps(completion(VALID)).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up long ago

    def log_message(self, *args):
        pass


@pytest.fixture
def slow_server():
    release = threading.Event()
    handler = type("Handler", (_SlowHandler,), {"release": release})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def test_a_slow_server_cannot_outlive_the_analysis_timeout(slow_server):
    analyst = make_analyst(base_url=slow_server)
    inputs = [make_input("AAPL"), make_input("MSFT")]

    started = time.monotonic()
    decisions = analyst.analyse(inputs, timeout_seconds=1)
    elapsed = time.monotonic() - started

    assert elapsed < 2
    assert [(d.symbol, d.action, d.failure) for d in decisions] == [("AAPL", "hold", "ai_unavailable"), ("MSFT", "hold", "ai_unavailable")]
    for decision in decisions:
        # Either the wait ended first or the request's own deadline-bounded timeout did.
        assert decision.reasoning == "analysis did not finish within 1s" or decision.reasoning.startswith(
            "model server unavailable: no answer within"
        )


@responses.activate
def test_analysis_still_running_at_the_timeout_holds_and_does_not_block():
    release = threading.Event()

    def stuck(request):  # `responses` ignores timeouts: this request would block for 5 s
        release.wait(5)
        return 200, {}, json.dumps(completion(VALID))

    responses.add_callback(responses.POST, URL, callback=stuck)
    try:
        started = time.monotonic()
        [decision] = make_analyst().analyse([make_input()], timeout_seconds=0.5)
        elapsed = time.monotonic() - started
    finally:
        release.set()

    assert elapsed < 1.5
    assert (decision.action, decision.failure) == ("hold", "ai_unavailable")
    # Whichever limit notices first says so: the step's deadline, or the request's own.
    assert decision.reasoning in ("analysis did not finish within 0.5s", "model server unavailable: no answer within 0.5s")
    assert decision.latency_ms is not None and decision.latency_ms >= 400


@responses.activate
def test_a_key_of_any_shape_never_reaches_a_reasoning_or_a_log_field():
    key = "gateway-token-not-sk-shaped"
    echo = {"error": {"message": f"key {key} may not use response_format json_schema"}}
    responses.add(responses.POST, URL, status=400, json=echo)
    responses.add(responses.POST, URL, status=401, json={"error": {"message": f"key {key} revoked"}})
    events: list = []

    [decision] = make_analyst(api_key=key, events=events).analyse([make_input()], timeout_seconds=10)

    assert decision.reasoning == "model server refused the request: HTTP 401: key *** revoked (check OPENAI_API_KEY)"
    assert key not in repr(events) and "***" in repr(events)


@responses.activate
def test_an_unexpected_error_below_holds_instead_of_raising():
    # http.py lets a malformed Retry-After escape as a bare ValueError; the analyst must still hold.
    responses.add(responses.POST, URL, status=429, headers={"Retry-After": "soon"}, json={"error": {"message": "slow down"}})
    [decision] = make_analyst().analyse([make_input()], timeout_seconds=10)
    assert (decision.action, decision.failure) == ("hold", "ai_unavailable")


# -- reasoning models and parameters they refuse (issue 11, item 11) -----------------------

# The bodies OpenAI sends (seen in openai-python, litellm and OpenHands issue threads).
GPT5_TEMPERATURE = {"error": {
    "message": "Unsupported value: 'temperature' does not support 0.0 with this model. Only the default (1) value is supported.",
    "type": "invalid_request_error", "param": "temperature", "code": "unsupported_value"}}
O3_MINI_TEMPERATURE = {"error": {
    "message": "Unsupported parameter: 'temperature' is not supported with this model.",
    "type": "invalid_request_error", "param": "temperature", "code": "unsupported_parameter"}}
# Early o3-mini replies named "model" as the param; the message still names the culprit.
O3_MINI_TEMPERATURE_PARAM_MODEL = {"error": dict(O3_MINI_TEMPERATURE["error"], param="model")}


@pytest.mark.parametrize("refusal", [GPT5_TEMPERATURE, O3_MINI_TEMPERATURE, O3_MINI_TEMPERATURE_PARAM_MODEL],
                         ids=["gpt-5-unsupported-value", "o3-mini-unsupported-parameter", "param-says-model"])
@responses.activate
def test_a_refused_temperature_is_dropped_and_the_request_sent_once_more(refusal):
    responses.add(responses.POST, URL, status=400, json=refusal)
    responses.add(responses.POST, URL, json=completion(VALID))
    events: list = []

    [decision] = make_analyst(events=events, model="o3-mini").analyse([make_input()], timeout_seconds=10)

    assert (decision.action, decision.failure) == ("buy", None)
    first, second = (sent(call) for call in responses.calls)
    assert first["temperature"] == 0.0 and "temperature" not in second
    assert second["response_format"]["type"] == "json_schema"  # not mistaken for a json_schema refusal
    assert second["messages"] == first["messages"]
    assert [(event, fields["parameter"]) for event, fields in events] == [("ai_parameter_dropped", "temperature")]
    assert "Unsupported" in events[0][1]["error"]


@responses.activate
def test_temperature_left_unset_is_not_sent():
    responses.add(responses.POST, URL, json=completion(VALID))
    [decision] = make_analyst(temperature=None).analyse([make_input()], timeout_seconds=10)
    assert decision.failure is None
    assert "temperature" not in sent(responses.calls[0])


@responses.activate
def test_a_dropped_parameter_and_a_refused_json_schema_are_both_repaired():
    responses.add(responses.POST, URL, status=400, json=GPT5_TEMPERATURE)
    responses.add(responses.POST, URL, status=400, json={"error": {
        "message": "Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model.",
        "type": "invalid_request_error", "param": "response_format", "code": None}})
    responses.add(responses.POST, URL, json=completion(VALID))
    events: list = []

    [decision] = make_analyst(events=events).analyse([make_input()], timeout_seconds=10)

    assert (decision.action, decision.failure) == ("buy", None)
    bodies = [sent(call) for call in responses.calls]
    assert [("temperature" in b, b["response_format"]["type"]) for b in bodies] == [
        (True, "json_schema"), (False, "json_schema"), (False, "json_object")]
    assert [event for event, _ in events] == ["ai_parameter_dropped", "ai_json_schema_refused"]


@responses.activate
def test_each_repair_is_tried_once_then_the_symbol_holds():
    responses.add(responses.POST, URL, status=400, json=GPT5_TEMPERATURE)  # answered to every request

    [decision] = make_analyst().analyse([make_input()], timeout_seconds=10)

    assert (decision.action, decision.failure) == ("hold", "ai_unavailable")
    assert decision.reasoning.startswith("model server refused the request: HTTP 400: Unsupported value: 'temperature'")
    assert len(responses.calls) == 3  # as configured, without temperature, with json_object


@responses.activate
def test_a_refusal_naming_a_required_parameter_is_not_repaired_by_dropping_it():
    refusal = {"error": {"message": "Unsupported value: 'messages' must not be empty.", "type": "invalid_request_error",
                         "param": "messages", "code": "unsupported_value"}}
    responses.add(responses.POST, URL, status=400, json=refusal)
    events: list = []
    make_analyst(events=events).analyse([make_input()], timeout_seconds=10)
    assert all("messages" in sent(call) for call in responses.calls)
    assert [event for event, _ in events] == ["ai_json_schema_refused"]


# -- reply shapes of other servers (issue 11, item 12) ----------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        [{"type": "text", "text": VALID}],
        [{"type": "text", "text": VALID[:20]}, {"type": "text", "text": VALID[20:]}],
        # Mistral's reasoning models: a thinking part, then the answer.
        [{"type": "thinking", "thinking": [{"type": "text", "text": "Volume confirms it."}]}, {"type": "text", "text": VALID}],
    ],
    ids=["one-text-part", "two-text-parts", "thinking-part-first"],
)
@responses.activate
def test_content_as_a_list_of_text_parts_is_read(content):
    responses.add(responses.POST, URL, json=completion(content))
    [decision] = make_analyst().analyse([make_input()], timeout_seconds=10)
    assert (decision.action, decision.confidence, decision.failure) == ("buy", 0.72, None)
    assert decision.raw_reply == VALID


@responses.activate
def test_reasoning_content_beside_the_answer_is_not_the_answer():
    # DeepSeek-reasoner, vLLM and llama.cpp put the thinking in reasoning_content.
    thinking = 'Maybe {"decisions": [{"symbol": "AAPL", "action": "sell", "confidence": 1, "reasoning": "x"}]}?'
    responses.add(responses.POST, URL, json=completion(VALID, reasoning_content=thinking))
    [decision] = make_analyst().analyse([make_input()], timeout_seconds=10)
    assert (decision.action, decision.failure) == ("buy", None)


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
@responses.activate
def test_thinking_without_an_answer_is_invalid(field):
    responses.add(responses.POST, URL, json=completion("", **{field: "Let me weigh the breakout against the RSI..."}))
    [decision] = make_analyst().analyse([make_input()], timeout_seconds=10)
    assert (decision.action, decision.failure) == ("hold", "ai_invalid")
    assert decision.reasoning == "reply is empty: the model only reasoned (44 characters of reasoning)"


@pytest.mark.parametrize(
    "content, action, failure",
    [
        (f"Based on the data, here is my decision:\n{VALID}", "buy", None),
        (f"The stock broke out on volume, so a buy.\n</think>\n\n{VALID}", "buy", None),
        (f"{VALID}\n{decisions_json(item('AAPL', 'sell', 0.9, 'or sell'))}", "hold", "ai_invalid"),
    ],
    ids=["prose-wrapped", "think-close-only", "two-different-objects"],
)
@responses.activate
def test_wrapped_replies_reach_the_decision(content, action, failure):
    responses.add(responses.POST, URL, json=completion(content))
    [decision] = make_analyst().analyse([make_input()], timeout_seconds=10)
    assert (decision.action, decision.failure) == (action, failure)
    assert decision.raw_reply == content
