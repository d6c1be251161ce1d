import json

import pytest

from .ai_helpers import decisions_json, item
from tradecycle.ai.parse import parse_reply, strip_wrapping

VALID = decisions_json(item("AAPL", "buy", 0.72, "Breakout on volume"))


@pytest.mark.parametrize(
    "reply",
    [
        VALID,
        f"```json\n{VALID}\n```",
        f"```\n{VALID}\n```",
        f"  \n```JSON\n{VALID}```  ",
        f"<think>The chart looks strong.</think>\n{VALID}",
        decisions_json(item("aapl", "buy", 0.72, "Breakout on volume")),  # symbol case
        decisions_json(item("AAPL", "buy", 0.72, "Breakout on volume", quantity=1000000, price=1, size="all")),
        # What models wrap around the object (issue 11, item 12):
        f"Here is my analysis of AAPL:\n{VALID}\nLet me know if you need anything else.",
        f"Sure! ```json\n{VALID}\n```",
        f"Sure! Here you go:\n\n```json\n{VALID}\n```\n\nThe breakout is confirmed by volume.",
        # DeepSeek-R1 / Qwen3 served raw: the template opened <think>, the reply only closes it.
        f"Okay, the user wants one decision for AAPL. The price broke out on volume, so buy.\n</think>\n\n{VALID}",
        f"The price {{as quoted}} broke out.\n</think>\n```json\n{VALID}\n```",
        f"<think>Drafting: {decisions_json(item('AAPL', 'sell', 0.9, 'draft'))}. No, buy.</think>\n{VALID}",
        f"{VALID}\n\nTo repeat: ```json\n{VALID}\n```",  # the same object twice is one answer
        f"In short {{not JSON}} and then: {VALID}",
    ],
    ids=["plain", "json-fence", "bare-fence", "fence-spacing", "think-block", "lowercase-symbol", "sizes-ignored",
         "prose-around", "prose-then-fence", "fence-inside-prose", "think-close-only", "think-close-then-fence",
         "draft-inside-think", "same-object-twice", "braces-in-prose"],
)
def test_valid_replies(reply):
    parsed = parse_reply(reply, ["AAPL"])
    assert parsed.invalid == {}
    decision = parsed.decisions["AAPL"]
    assert (decision.symbol, decision.action, decision.confidence, decision.reasoning) == (
        "AAPL", "buy", 0.72, "Breakout on volume",
    )


@pytest.mark.parametrize(
    "reply, expected_reason",
    [
        ("I think you should buy Apple.", "reply is not valid JSON: Expecting value: line 1 column 1 (char 0)"),
        ("", "reply is empty"),
        (None, "reply is empty"),
        ('{"decisions": [', "reply is not valid JSON"),
        ("```json\n{not json}\n```", "reply is not valid JSON"),
        ('{"decisions": [{"symbol": "AAPL", "action": "buy", "confidence": NaN, "reasoning": "x"}]}', "reply is not valid JSON: NaN is not a number"),
        ("[]", "reply is not a JSON object with a 'decisions' list"),
        (json.dumps(item()), "reply is not a JSON object with a 'decisions' list"),
        ('{"decisions": {"AAPL": "buy"}}', "reply is not a JSON object with a 'decisions' list"),
        (f"Option A: {VALID}\nOption B: {decisions_json(item(action='sell'))}", "reply holds 2 different JSON objects"),
        (f"Draft: {{\"note\": \"thinking\"}}\nFinal: {VALID}", "reply holds 2 different JSON objects"),
        (f"I would say {{\"decisions\": [broken", "reply is not valid JSON"),
        (f"<think>Maybe {VALID} but I am not done", "reply is unfinished thinking"),
        ("<think>Long thoughts</think>", "reply is empty after the model's thinking"),
        (decisions_json(item(action="moon")), "invalid decision for AAPL: action: Input should be 'buy', 'sell' or 'hold' (got 'moon')"),
        (decisions_json(item(action="BUY")), "invalid decision for AAPL: action: Input should be 'buy', 'sell' or 'hold' (got 'BUY')"),
        (decisions_json(item(confidence=7)), "invalid decision for AAPL: confidence: Input should be less than or equal to 1 (got 7)"),
        (decisions_json(item(confidence=-0.1)), "invalid decision for AAPL: confidence: Input should be greater than or equal to 0 (got -0.1)"),
        (decisions_json(item(confidence="0.9")), "invalid decision for AAPL: confidence: Input should be a valid number (got '0.9')"),
        (decisions_json(item(confidence=True)), "invalid decision for AAPL: confidence: Input should be a valid number (got True)"),
        (json.dumps({"decisions": [{"symbol": "AAPL", "action": "buy", "confidence": 0.7}]}), "invalid decision for AAPL: reasoning: Field required"),
        (decisions_json(), "no decision for AAPL in the reply"),
        (decisions_json(item("MSFT")), "no decision for AAPL in the reply"),
        (json.dumps({"decisions": ["buy"]}), "no decision for AAPL in the reply (item 1 has no symbol)"),
        (decisions_json(item(), item(action="sell")), "more than one decision for AAPL in the reply"),
    ],
)
def test_invalid_replies_hold_the_symbol_with_the_reason(reply, expected_reason):
    parsed = parse_reply(reply, ["AAPL"])
    assert parsed.decisions == {}
    assert parsed.invalid["AAPL"].startswith(expected_reason)


def test_a_reply_that_is_not_json_makes_every_symbol_invalid():
    parsed = parse_reply("garbage", ["AAPL", "BTC/USD"])
    assert set(parsed.invalid) == {"AAPL", "BTC/USD"}
    assert parsed.decisions == {}


def test_one_bad_item_does_not_spoil_the_others():
    reply = decisions_json(item("AAPL", action="moon"), item("BTC/USD", "sell", 0.8, "Breakdown"))
    parsed = parse_reply(reply, ["AAPL", "BTC/USD"])
    assert list(parsed.invalid) == ["AAPL"]
    assert parsed.decisions["BTC/USD"].action == "sell"


def test_symbols_outside_the_request_are_dropped_and_reported():
    reply = decisions_json(item("AAPL", "hold", 0.5, "Flat"), item("GME", "buy", 1.0, "To the moon"))
    parsed = parse_reply(reply, ["AAPL"])
    assert parsed.dropped == ("GME",)
    assert list(parsed.decisions) == ["AAPL"]
    assert parsed.invalid == {}


def test_crypto_symbol_written_the_position_way_matches():
    parsed = parse_reply(decisions_json(item("BTCUSD", "buy", 0.9, "x")), ["BTC/USD"])
    assert parsed.decisions["BTC/USD"].symbol == "BTC/USD"


def test_reasoning_is_one_line_and_bounded():
    parsed = parse_reply(decisions_json(item(reasoning="line one\nline two " + "y" * 5000)), ["AAPL"])
    reasoning = parsed.decisions["AAPL"].reasoning
    assert reasoning.startswith("line one line two ") and len(reasoning) <= 1000


def test_strip_wrapping_leaves_unfenced_text_alone():
    assert strip_wrapping(" {\"a\": 1} ") == '{"a": 1}'
