"""Challengers in shadow (``[[ai.shadow]]``): asked the same messages as the main
analyst, recorded with ``role = "shadow"``, never traded; a shadow that fails or
is slow changes nothing else."""

from __future__ import annotations

import json
import time

import pytest

from tradecycle.ai.shadow import ShadowedAnalyst
from tradecycle.config import Config, ConfigError, load_config
from tradecycle.cycle.run import run_cycle

from .e2e_helpers import E2E, describe, e2e, fake  # noqa: F401  (fixtures)
from .fakes import FakeBroker, FakeQuotes, FakeClock, ScriptedAnalyst, services, settings


class BrokenAnalyst:
    model = "broken"

    def analyse(self, inputs, timeout_seconds):
        raise RuntimeError("shadow bug")


class SlowAnalyst(ScriptedAnalyst):
    model = "slow"

    def analyse(self, inputs, timeout_seconds):
        time.sleep(timeout_seconds + 5)
        return super().analyse(inputs, timeout_seconds)


def rows(db):
    return db.query("SELECT symbol, role, model, analyst, action, outcome FROM ai_decisions ORDER BY id")


def run(db, store, log, shadows):
    clock = FakeClock()
    broker = FakeBroker()
    main = ScriptedAnalyst({"AAPL": ("buy", 0.9), "MSFT": ("hold", 0.5)})
    analyst = ShadowedAnalyst(main, shadows) if shadows is not None else main
    svc = services(broker=broker, analyst=analyst, clock=clock, quotes=FakeQuotes({"AAPL": "200", "MSFT": "400"}, clock))
    started = time.monotonic()
    report = run_cycle(svc, store, settings(stocks=("AAPL", "MSFT"), analysis_timeout_seconds=0.5), log)
    return report, broker, time.monotonic() - started


def test_each_analysed_symbol_gets_a_main_and_a_shadow_row_and_only_the_main_trades(db, store, log):
    challenger = ScriptedAnalyst({"AAPL": ("sell", 0.8), "MSFT": ("buy", 0.95)})
    challenger.model = "challenger"
    report, broker, _ = run(db, store, log, [challenger])

    assert report.status == "completed"
    assert [(o.symbol, o.side) for o in broker.orders] == [("AAPL", "buy")]  # never MSFT, the shadow's buy
    assert [(r["symbol"], r["role"], r["model"], r["action"], r["outcome"]) for r in rows(db)] == [
        ("MSFT", "main", "scripted", "hold", "hold"),
        ("MSFT", "shadow", "challenger", "buy", "shadow"),
        ("AAPL", "main", "scripted", "buy", "ordered"),
        ("AAPL", "shadow", "challenger", "sell", "shadow"),
    ]
    assert [[i.symbol for i in call] for call in challenger.seen] == [["AAPL", "MSFT"]]  # asked once, like the main


@pytest.mark.parametrize("shadow", [BrokenAnalyst(), SlowAnalyst()], ids=["raises", "too slow"])
def test_a_failing_shadow_changes_nothing_else(db, store, log, shadow, tmp_path):
    report, broker, seconds = run(db, store, log, [shadow])

    assert report.status == "completed" and [(o.symbol, o.side) for o in broker.orders] == [("AAPL", "buy")]
    main = [(r["symbol"], r["action"], r["outcome"]) for r in rows(db) if r["role"] == "main"]
    assert main == [("MSFT", "hold", "hold"), ("AAPL", "buy", "ordered")]
    shadows = [(r["symbol"], r["model"], r["outcome"]) for r in rows(db) if r["role"] == "shadow"]
    assert shadows == [("MSFT", shadow.model, "ai_unavailable"), ("AAPL", shadow.model, "ai_unavailable")]
    assert seconds < 3  # inside the analysis timeout (0.5 s), not the slow shadow's 5.5 s


def test_shadow_config_keys_are_checked_and_name_the_key(tmp_path):
    def load(shadow: str) -> Config:
        path = tmp_path / "config.toml"
        path.write_text(f'[ai]\nprovider = "openai"\n[[ai.shadow]]\n{shadow}\n')
        return load_config(path)

    assert load('model = "gpt-4o"').ai.shadow[0].model == "gpt-4o"
    for bad, words in [
        ('model = "x"\napi_key_env = "APCA_API_SECRET_KEY"', "ai.shadow.0.api_key_env: APCA_API_SECRET_KEY is another service's secret"),
        ('model = "x"\napi_key_env = "not a name"', "ai.shadow.0.api_key_env: 'not a name' is not an environment variable name"),
        ('provider = "openai"', "ai.shadow.0: model: required"),
        ('model = "x"\nbase_url = "ftp://x"', "ai.shadow.0.base_url: not an http(s) URL"),
        ('model = "x"\ncolour = 1', "ai.shadow.0.colour: unknown key"),
    ]:
        with pytest.raises(ConfigError, match=__import__("re").escape(words)):
            load(bad)


# -- end to end: the real CLI against the fake ---------------------------------------------------

ONE_EACH = {"stocks": ["AAPL"], "crypto": ["BTC/USD"]}


def shadow_e2e(e2e: E2E, base_url: str) -> None:
    e2e.fake.llm_models = ["gpt-4o-mini", "other-model"]
    e2e.fake.llm_decide = {"AAPL": ("buy", 0.9, "breakout"), "BTC/USD": ("hold", 0.5, "range")}
    e2e.fake.llm_decide_by_model = {"other-model": {"AAPL": ("hold", 0.6, "too late"), "BTC/USD": ("buy", 0.9, "dip")}}
    e2e.configure(universe=ONE_EACH, ai={"shadow": [{"base_url": base_url, "model": "other-model", "temperature": 0.2}]})


def test_one_shadow_against_the_fake_is_recorded_beside_the_main_and_never_traded(e2e):
    shadow_e2e(e2e, e2e.fake.openai_url)
    e2e.run()

    assert [o["symbol"] for o in e2e.posted_orders()] == ["AAPL"]  # the shadow's BTC buy never reaches the broker
    decided = e2e.rows("SELECT symbol, role, model, analyst, action, outcome, request_id FROM ai_decisions ORDER BY id")
    by_role = {(r["symbol"], r["role"]): r for r in decided}
    assert len(decided) == 4
    assert (by_role[("AAPL", "main")]["outcome"], by_role[("BTC/USD", "main")]["outcome"]) == ("ordered", "hold")
    assert (by_role[("AAPL", "shadow")]["action"], by_role[("BTC/USD", "shadow")]["action"]) == ("hold", "buy")
    assert {by_role[(s, "shadow")]["outcome"] for s in ("AAPL", "BTC/USD")} == {"shadow"}
    # The shadow was sent exactly the main's messages: one stored request serves both rows.
    for symbol in ("AAPL", "BTC/USD"):
        assert by_role[(symbol, "main")]["request_id"] == by_role[(symbol, "shadow")]["request_id"]
    bodies = [r.json for r in e2e.fake.calls("openai", "POST", "/chat/completions")]
    main = {b["messages"][1]["content"]: b for b in bodies if b["model"] == "gpt-4o-mini"}
    shadow = {b["messages"][1]["content"]: b for b in bodies if b["model"] == "other-model"}
    assert len(main) == len(shadow) == 2 and set(main) == set(shadow)
    assert all(b["temperature"] == 0.2 for b in shadow.values()) and all("temperature" not in b for b in main.values())
    analyst_ids = {r["analyst"] for r in decided}
    assert {a.split("#")[0] for a in analyst_ids} == {"gpt-4o-mini", "other-model"}

    result = e2e.cli("score", "--json")
    assert result.returncode == 0, describe(result)
    card = json.loads(result.stdout)
    assert [(a["model"], a["role"]) for a in card["analysts"]] == [("gpt-4o-mini", "main"), ("other-model", "shadow")]
    assert card["agreement"][0] | {"analyst": None} == {"analyst": None, "role": "shadow", "n": 2, "hits": 0, "rate": None}
    days = {(t["role"], t["requests"]) for t in card["tokens_per_day"]}
    assert days == {("main", 2), ("shadow", 2)} and all(t["prompt_tokens"] > 0 for t in card["tokens_per_day"])
    table = e2e.cli("score", env={**e2e.env, "COLUMNS": "80"})
    assert "(shadow)" in table.stdout and "(main)" in table.stdout and "tokens per day" in table.stdout

    # `decisions` lists what the agent decided; `explain` shows the shadows apart.
    history = json.loads(e2e.cli("decisions", "--json").stdout)
    assert sorted((d["symbol"], d["model"]) for d in history) == [("AAPL", "gpt-4o-mini"), ("BTC/USD", "gpt-4o-mini")]
    story = e2e.cli("explain", "last", env={**e2e.env, "COLUMNS": "80"}).stdout
    assert "shadow and replayed analysts (recorded, never traded)" in story and "other-model#" in story


def test_a_shadow_server_that_is_down_changes_nothing_else(e2e):
    shadow_e2e(e2e, "http://127.0.0.1:9/v1")  # the discard port: nothing listens
    started = time.monotonic()
    result = e2e.run()
    elapsed = time.monotonic() - started

    assert result.stdout.startswith("cycle ") and "2 symbols, 1 order, 0 errors" in result.stdout
    assert [o["symbol"] for o in e2e.posted_orders()] == ["AAPL"]
    decided = e2e.rows("SELECT symbol, role, action, outcome FROM ai_decisions ORDER BY id")
    assert [(r["symbol"], r["action"], r["outcome"]) for r in decided if r["role"] == "main"] == [
        ("BTC/USD", "hold", "hold"), ("AAPL", "buy", "ordered")]
    assert [(r["symbol"], r["outcome"]) for r in decided if r["role"] == "shadow"] == [
        ("BTC/USD", "ai_unavailable"), ("AAPL", "ai_unavailable")]
    assert e2e.last_cycle()["status"] == "completed" and elapsed < 10
