"""`tradecycle replay`: the exact recorded messages sent to another model, both
decisions printed side by side, the replayed ones recorded (role "replay") and
scored, never traded."""

from __future__ import annotations

import json

import pytest
import sqlite3
import zlib

from .e2e_helpers import E2E, describe, e2e, fake  # noqa: F401  (fixtures)

ONE_EACH = {"stocks": ["AAPL"], "crypto": ["BTC/USD"]}


def chat_requests(e2e: E2E, model: str) -> list:
    return [r for r in e2e.fake.calls("openai", "POST", "/chat/completions") if r.json["model"] == model]


def stored_messages(e2e: E2E, request_id: str) -> bytes:
    conn = sqlite3.connect(e2e.db_path)
    try:
        (blob,) = conn.execute("SELECT messages FROM ai_requests WHERE request_id = ?", (request_id,)).fetchone()
    finally:
        conn.close()
    return zlib.decompress(blob)


def setup(e2e: E2E) -> None:
    e2e.fake.llm_models = ["gpt-4o-mini", "other"]
    e2e.fake.llm_decide = {"AAPL": ("buy", 0.9, "breakout on volume"), "BTC/USD": ("hold", 0.5, "no trend")}
    e2e.fake.llm_decide_by_model = {"other": {"AAPL": ("hold", 0.55, "extended, wait"), "BTC/USD": ("hold", 0.6, "flat")}}
    e2e.configure(universe=ONE_EACH)


def test_replay_last_sends_byte_identical_messages_and_prints_both_decisions(e2e):
    setup(e2e)
    e2e.run()
    originals = {r.json["messages"][1]["content"].split("\n")[0]: r for r in chat_requests(e2e, "gpt-4o-mini")}
    orders_before = len(e2e.posted_orders())

    result = e2e.cli("replay", "last", "--model", "other", env={**e2e.env, "COLUMNS": "100"})
    assert result.returncode == 0, describe(result)

    replays = chat_requests(e2e, "other")
    assert len(replays) == 2 and len(originals) == 2
    for replay in replays:
        original = originals[replay.json["messages"][1]["content"].split("\n")[0]]
        # Byte for byte: the messages part of the bodies as they crossed the wire.
        assert _messages_bytes(replay.body) == _messages_bytes(original.body)
        assert replay.json["messages"] == original.json["messages"]
    # ... and what the database recorded is exactly what was sent.
    rows = e2e.rows("SELECT symbol, request_id FROM ai_decisions WHERE role = 'main' ORDER BY id")
    for row in rows:
        recorded = json.loads(stored_messages(e2e, row["request_id"]))
        sent = next(r for r in replays if json.dumps(r.json["messages"]) == json.dumps(recorded))
        assert row["symbol"] in sent.json["messages"][1]["content"]

    out = result.stdout
    cycle_id = e2e.last_cycle()["cycle_id"]
    said = " ".join(out.split())  # prose wraps at 80 columns
    assert f"replayed 2 recorded request(s) of cycle {cycle_id} (the last one asked) on other" in said  # `last`, named
    assert "1 of 2 with the same" in said  # BTC/USD: hold and hold
    aapl = next(line for line in out.splitlines() if " AAPL " in line)
    assert "buy 0.90" in aapl and "hold 0.55" in aapl and " no" in aapl
    assert "breakout on volume" in out and "extended, wait" in out  # both reasonings, whole
    assert len(e2e.posted_orders()) == orders_before  # a replay never trades

    replayed = e2e.rows("SELECT symbol, role, model, action, outcome, replay_of, created_at, price FROM ai_decisions"
                        " WHERE role = 'replay' ORDER BY symbol")
    mains = {r["symbol"]: r for r in e2e.rows("SELECT * FROM ai_decisions WHERE role = 'main'")}
    assert [(r["symbol"], r["model"], r["action"], r["outcome"]) for r in replayed] == [
        ("AAPL", "other", "hold", "replay"), ("BTC/USD", "other", "hold", "replay")]
    for r in replayed:  # scored from the moment and price of the decision it re-asked
        main = mains[r["symbol"]]
        assert (r["replay_of"], r["created_at"], r["price"]) == (main["id"], main["created_at"], main["price"])

    # Asked again, it is answered again: the earlier replay row is replaced, not doubled.
    assert e2e.cli("replay", "last", "--model", "other").returncode == 0
    assert len(e2e.rows("SELECT id FROM ai_decisions WHERE role = 'replay'")) == 2


def _messages_bytes(body: bytes) -> bytes:
    """The ``"messages": [...]`` part of a JSON request body, as sent."""
    start = body.index(b'"messages": ')
    decoded, end = json.JSONDecoder().raw_decode(body.decode("utf-8"), start + len('"messages": '))
    return body[start:end]


def test_replay_since_scores_the_replayed_model_like_a_shadow(e2e):
    setup(e2e)
    e2e.run()
    first = e2e.last_cycle()["started_at"]
    e2e.fake.llm_decide["AAPL"] = ("hold", 0.5, "waiting")  # the market moved on: a second cycle asks again
    with e2e.fake.lock:
        e2e.fake.quotes["AAPL"] = e2e.fake._quote_from_price("AAPL", "190.00")
    e2e.run()

    result = e2e.cli("replay", "--since", first, "--model", "other", "--json")
    assert result.returncode == 0, describe(result)
    data = json.loads(result.stdout)
    asked = e2e.rows("SELECT id FROM ai_decisions WHERE role = 'main' AND request_id IS NOT NULL")
    assert len(data["replayed"]) == len(asked) >= 3
    analysts = {(a["model"], a["role"]) for a in data["score"]["analysts"]}
    assert analysts == {("gpt-4o-mini", "main"), ("other", "replay")}
    [agreement] = data["score"]["agreement"]
    same = sum(1 for p in data["replayed"] if p["recorded"]["action"] == p["replayed"]["action"])
    assert (agreement["role"], agreement["n"], agreement["hits"]) == ("replay", len(asked), same)

    score = json.loads(e2e.cli("score", "--json").stdout)
    assert ("other", "replay") in {(a["model"], a["role"]) for a in score["analysts"]}


def test_replay_errors_are_one_line_with_the_right_exit_code(e2e):
    setup(e2e)
    assert e2e.cli("replay", "last").returncode == 1  # no database yet
    e2e.run()

    both = e2e.cli("replay", "last", "--since", "2026-01-01")
    assert both.returncode == 2 and "not both" in both.stderr
    unknown = e2e.cli("replay", "2020-01-01T00:00Z-dead")
    assert unknown.returncode == 1 and "no cycle '2020-01-01T00:00Z-dead'" in unknown.stderr
    secret = e2e.cli("replay", "last", "--key-env", "APCA_API_SECRET_KEY")
    assert secret.returncode == 2 and "another service's secret" in secret.stderr

    down = e2e.cli("replay", "last", "--base-url", "http://127.0.0.1:9/v1")
    assert down.returncode == 1 and "no replayed request was answered" in down.stderr
    assert "Traceback" not in down.stderr + unknown.stderr + both.stderr


def test_replay_sends_the_configured_key_only_to_the_configured_server(e2e):
    setup(e2e)
    e2e.fake.openai_api_key = "sk-test-main-key-123"
    e2e.env = e2e.fake.env() | {k: v for k, v in e2e.env.items() if k not in e2e.fake.env()}
    e2e.run()
    same_server = e2e.cli("replay", "last", "--model", "other")
    assert same_server.returncode == 0, describe(same_server)
    # Another server (here the same fake under another name) gets no key unless --key-env names one.
    other_url = e2e.fake.openai_url.replace("127.0.0.1", "localhost")
    keyless = e2e.cli("replay", "last", "--model", "other", "--base-url", other_url)
    assert keyless.returncode == 1
    named = e2e.cli("replay", "last", "--model", "other", "--base-url", other_url, "--key-env", "OTHER_LLM_KEY",
                    env={**e2e.env, "OTHER_LLM_KEY": "sk-test-main-key-123"})
    assert named.returncode == 0, describe(named)
    assert "sk-test-main-key-123" not in keyless.stdout + keyless.stderr + named.stdout + named.stderr


@pytest.mark.parametrize("args, code, says", [
    (["2020-01-01T00:00Z-dead"], 1, "no cycle '2020-01-01T00:00Z-dead'"),
    (["last", "--since", "2026-01-01"], 2, "not both"),
    (["last", "--base-url", "http://127.0.0.1:9/v1"], 1, "no replayed request was answered"),
])
def test_replay_json_is_json_on_failure_too(e2e, args, code, says):
    setup(e2e)
    e2e.run()

    result = e2e.cli("replay", *args, "--json")

    assert result.returncode == code and says in result.stderr
    data = json.loads(result.stdout)  # a script that asked for JSON reads JSON, whatever happened
    assert says in data["error"] if "error" in data else data["replayed"]
