"""Provenance on every decision (issue 25, item 4), end to end against the fake
servers: the model the server says answered, its system_fingerprint, the
temperature and seed the request carried, the declared training cutoff, and
contaminated decisions left out of `score` unless asked for. Then the record
of those runs verifies (`tradecycle verify`)."""

from __future__ import annotations

import json
import sqlite3

import pytest

from .e2e_helpers import E2E, describe, e2e, fake  # noqa: F401  (fixtures)

ONE_STOCK = {"stocks": ["AAPL"], "crypto": []}
BUY_AAPL = {"AAPL": ("buy", 0.9, "breakout on volume")}
PROVENANCE = "served_model, system_fingerprint, temperature, seed, training_cutoff, contaminated"


def chat_bodies(e2e: E2E) -> list[dict]:
    return [r.json for r in e2e.fake.calls("openai", "POST", "/chat/completions")]


def provenance(e2e: E2E, role: str = "main") -> list[dict]:
    return e2e.rows(f"SELECT model, {PROVENANCE} FROM ai_decisions WHERE role = ? ORDER BY id", (role,))


def test_a_decision_records_who_answered_and_under_what_terms(e2e):
    e2e.fake.llm_decide = BUY_AAPL
    e2e.configure(universe=ONE_STOCK, ai={"model": "gpt-4o-mini", "temperature": 0.2, "seed": 42,
                                          "training_cutoff": "2023-10-01"})
    e2e.run()

    [body] = chat_bodies(e2e)
    assert (body["temperature"], body["seed"]) == (0.2, 42)
    assert provenance(e2e) == [{
        "model": "gpt-4o-mini", "served_model": "gpt-4o-mini-2024-07-18", "system_fingerprint": "fp_fake",
        "temperature": 0.2, "seed": 42, "training_cutoff": "2023-10-01", "contaminated": 0,
    }]
    assert e2e.decisions()["AAPL"]["outcome"] == "ordered"


@pytest.mark.parametrize("flavor, served, fingerprint", [
    ("openai", "gpt-4o-mini-2024-07-18", "fp_fake"),
    ("ollama", "gpt-4o-mini", "fp_ollama"),
    ("vllm", "gpt-4o-mini", None),  # vLLM sends no system_fingerprint
    ("llamacpp", "gpt-4o-mini", "b6490-fake"),
    ("deepseek", "gpt-4o-mini", "fp_fake_prod0820"),
])
def test_each_server_s_model_and_fingerprint_are_recorded_as_it_sent_them(e2e, flavor, served, fingerprint):
    e2e.fake.llm_flavor, e2e.fake.llm_decide = flavor, {"AAPL": ("hold", 0.6, "wait")}
    e2e.configure(universe=ONE_STOCK)
    e2e.run()

    [row] = provenance(e2e)
    assert (row["served_model"], row["system_fingerprint"]) == (served, fingerprint)
    assert (row["temperature"], row["seed"], row["training_cutoff"]) == (None, None, None)  # none configured: none sent


def test_a_gateway_that_routes_to_another_model_is_seen(e2e):
    e2e.fake.llm_served_model = {"gpt-4o-mini": "claude-3-5-haiku-20241022"}
    e2e.fake.llm_decide = {"AAPL": ("hold", 0.6, "wait")}
    e2e.configure(universe=ONE_STOCK)
    e2e.run()

    [row] = provenance(e2e)
    assert (row["model"], row["served_model"]) == ("gpt-4o-mini", "claude-3-5-haiku-20241022")


def test_a_seed_the_model_refuses_is_dropped_and_recorded_as_not_sent(e2e):
    e2e.fake.llm_refuse_params = {"seed": "unsupported_parameter"}
    e2e.fake.llm_decide = BUY_AAPL
    e2e.configure(universe=ONE_STOCK, ai={"temperature": 0.0, "seed": 7})
    e2e.run()

    first, second = chat_bodies(e2e)
    assert first["seed"] == 7 and "seed" not in second and second["temperature"] == 0.0
    [row] = provenance(e2e)
    assert (row["seed"], row["temperature"]) == (None, 0.0)


def test_shadows_record_their_own_provenance(e2e):
    e2e.fake.llm_models = ["gpt-4o-mini", "gpt-4o"]
    e2e.fake.llm_decide = {"AAPL": ("hold", 0.6, "wait")}
    e2e.configure(universe=ONE_STOCK, ai={"training_cutoff": "2023-10-01", "shadow": [
        {"model": "gpt-4o", "seed": 3, "training_cutoff": "2023-09-30"}]})
    e2e.run()

    [shadow] = provenance(e2e, "shadow")
    assert shadow == {"model": "gpt-4o", "served_model": "gpt-4o-2024-08-06", "system_fingerprint": "fp_fake",
                      "temperature": None, "seed": 3, "training_cutoff": "2023-09-30", "contaminated": 0}
    assert provenance(e2e)[0]["training_cutoff"] == "2023-10-01"
    shadow_body = next(b for b in chat_bodies(e2e) if b["model"] == "gpt-4o")
    assert shadow_body["seed"] == 3


def test_a_bad_training_cutoff_is_a_config_error_naming_the_key(e2e):
    e2e.configure(universe=ONE_STOCK, ai={"training_cutoff": "last spring"})
    result = e2e.run(expect=2)
    assert "ai.training_cutoff: must be a date" in result.stderr
    assert e2e.fake.count("openai", "POST") == 0


def test_a_replay_on_or_before_the_model_s_cutoff_is_contaminated_and_left_out_of_score(e2e):
    e2e.fake.llm_models = ["gpt-4o-mini", "other"]
    e2e.fake.llm_decide = {"AAPL": ("hold", 0.6, "wait")}
    e2e.fake.llm_decide_by_model = {"other": {"AAPL": ("buy", 0.7, "it went up, I remember")}}
    e2e.configure(universe=ONE_STOCK)
    e2e.run()

    replayed = e2e.cli("replay", "last", "--model", "other", "--training-cutoff", "2099-12-31")
    assert replayed.returncode == 0, describe(replayed)
    [row] = provenance(e2e, "replay")
    assert (row["training_cutoff"], row["contaminated"]) == ("2099-12-31", 1)

    score = json.loads(e2e.cli("score", "--json").stdout)
    assert {a["role"] for a in score["analysts"]} == {"main"}
    assert score["filters"]["contaminated"] == 1 and score["filters"]["include_contaminated"] is False
    counted = json.loads(e2e.cli("score", "--json", "--include-contaminated").stdout)
    assert {a["role"] for a in counted["analysts"]} == {"main", "replay"}
    shown = e2e.cli("score", env={**e2e.env, "COLUMNS": "160"})
    assert "1 decisions about a moment on or before their model's training cutoff: left out" in shown.stdout


def test_a_replay_after_the_cutoff_counts(e2e):
    e2e.fake.llm_models = ["gpt-4o-mini", "other"]
    e2e.fake.llm_decide = {"AAPL": ("hold", 0.6, "wait")}
    e2e.configure(universe=ONE_STOCK, ai={"shadow": [{"model": "other", "training_cutoff": "2024-06-01"}]})
    e2e.run()

    assert e2e.cli("replay", "last", "--model", "other").returncode == 0  # the cutoff of the shadow with that model
    [row] = provenance(e2e, "replay")
    assert (row["training_cutoff"], row["contaminated"]) == ("2024-06-01", 0)
    score = json.loads(e2e.cli("score", "--json").stdout)
    assert "replay" in {a["role"] for a in score["analysts"]}


def test_the_record_of_real_cycles_verifies_and_names_an_edited_decision(e2e):
    e2e.fake.llm_decide = BUY_AAPL
    e2e.configure(universe=ONE_STOCK)
    e2e.run()
    e2e.run()  # the second cycle syncs the first one's order: an update, a new link

    result = e2e.cli("verify", "--json")
    assert result.returncode == 0, describe(result)
    verdict = json.loads(result.stdout)
    assert verdict["ok"] and verdict["rows"]["trades"] == 1 and verdict["rows"]["ai_decisions"] >= 2
    assert len(verdict["head"]["hash"]) == 64 and verdict["links"] > verdict["rows"]["ai_decisions"] + 1
    shown = e2e.cli("verify")
    assert shown.returncode == 0 and f"head {verdict['head']['hash']}" in shown.stdout

    kept = verdict["head"]["hash"][:16]
    e2e.run()
    assert e2e.cli("verify", "--head", kept).returncode == 0  # later writes leave an earlier head in the chain

    decision_id = e2e.rows("SELECT id FROM ai_decisions WHERE outcome = 'ordered'")[0]["id"]
    conn = sqlite3.connect(e2e.db_path, isolation_level=None)  # someone editing the file by hand
    conn.execute("UPDATE ai_decisions SET confidence = 0.99 WHERE id = ?", (decision_id,))
    conn.close()
    edited = e2e.cli("verify")
    assert edited.returncode == 1
    assert f"ai_decisions row {decision_id} differs from what its last link" in edited.stderr
    assert "The record differs from its chain" in edited.stdout
