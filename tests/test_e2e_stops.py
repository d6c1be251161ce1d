"""End to end against the fake Alpaca: sell stops held at the broker
(risk.broker_held_stops), through the real CLI."""

from __future__ import annotations

import json
from decimal import Decimal

from .e2e_helpers import E2E, e2e, fake  # noqa: F401  (fixtures)
from .fakeserver import FakeServices

STOPS_ON = {"broker_held_stops": True, "stop_loss_percent": 8}


def stop_rows(e2e):
    return e2e.rows("SELECT * FROM trades WHERE order_type != 'market' ORDER BY id")


def test_a_stop_is_placed_after_the_fill_raised_as_the_price_rises_and_canceled_before_the_analysts_sell(e2e):
    e2e.configure(universe={"stocks": ["AAPL"], "crypto": []}, risk=STOPS_ON | {"trailing_stop_percent": 5})
    e2e.fake.fill_orders = True
    e2e.fake.cancel_delay_reads = 2  # the stop shows pending_cancel once before canceled
    e2e.fake.set_price("AAPL", "203")
    e2e.fake.llm_decide = {"AAPL": ("buy", 0.9, "breakout")}
    e2e.run()

    buy, stop = e2e.posted_orders()
    [position] = json.loads(e2e.cli("status", "--json").stdout)["positions"]
    assert buy["side"] == "buy" and Decimal(position["qty"]) > 0
    # A fractional quantity takes a day stop; 5 % under the price beats the 8 % stop-loss.
    assert (stop["type"], stop["side"], stop["qty"], stop["stop_price"], stop["time_in_force"]) == (
        "stop", "sell", position["qty"], "192.85", "day")
    [row] = stop_rows(e2e)
    assert (row["order_type"], row["stop_price"], row["status"]) == ("stop", "192.85", "new")

    e2e.fake.set_price("AAPL", "220")
    e2e.fake.llm_decide = {"AAPL": ("hold", 0.5, "let it run")}
    e2e.run()
    [patch] = e2e.fake.calls("alpaca", "PATCH")
    assert patch.subpath == f"/v2/orders/{row['broker_order_id']}" and patch.json["stop_price"] == "209"
    old, new = stop_rows(e2e)
    assert (old["status"], new["status"], new["stop_price"]) == ("replaced", "new", "209.00")
    assert len(e2e.posted_orders()) == 2  # raised in place, never placed twice

    e2e.fake.llm_decide = {"AAPL": ("sell", 0.9, "take the gain")}
    e2e.fake.set_price("AAPL", "224")  # a move that asks the analyst again
    e2e.fake.clear_requests()
    e2e.run()
    order_calls = [(r.method, r.subpath) for r in e2e.fake.calls("alpaca") if r.subpath.startswith("/v2/orders/")
                   or r.method == "POST"]
    assert order_calls[0] == ("DELETE", f"/v2/orders/{new['broker_order_id']}")
    assert order_calls[1:3] == [("GET", f"/v2/orders/{new['broker_order_id']}")] * 2  # pending_cancel, then canceled
    assert order_calls[3] == ("POST", "/v2/orders")
    [sell] = e2e.posted_orders()
    assert (sell["side"], sell["qty"]) == ("sell", position["qty"])
    assert e2e.decisions()["AAPL"]["outcome"] == "ordered"
    assert stop_rows(e2e)[-1]["status"] == "canceled"
    assert json.loads(e2e.cli("status", "--json").stdout)["positions"] == []
    assert [r for r in e2e.trades() if r["side"] == "sell" and r["order_type"] == "market"][0]["status"] == "filled"


def test_a_stop_that_filled_while_no_cycle_ran_is_recorded_by_the_next_cycle_as_a_stop_loss(e2e):
    e2e.configure(universe={"stocks": ["AAPL"], "crypto": []}, risk=STOPS_ON)
    e2e.fake.set_price("AAPL", "200")
    with e2e.fake.lock:
        e2e.fake.add_position("AAPL", "10", "200")
    e2e.fake.llm_decide = {"AAPL": ("hold", 0.5, "wait")}
    e2e.run()
    [stop] = e2e.posted_orders()
    assert (stop["type"], stop["qty"], stop["stop_price"], stop["time_in_force"]) == ("stop", "10", "184", "gtc")

    e2e.fake.set_price("AAPL", "183.40")  # no cycle runs: the broker's stop sells
    e2e.fake.clear_requests()
    e2e.run()

    [row] = stop_rows(e2e)
    assert (row["status"], row["filled_qty"], row["filled_avg_price"]) == ("filled", "10", "183.4")
    exit_row = e2e.rows("SELECT * FROM ai_decisions WHERE outcome = 'stop_loss'")
    assert [(r["symbol"], r["action"], r["model"], r["cycle_id"]) for r in exit_row] == [
        ("AAPL", "sell", "broker-stop", e2e.last_cycle()["cycle_id"])]
    notes = json.loads(e2e.last_cycle()["summary"])["notes"]
    assert any(n.startswith("AAPL: stop-loss held at the broker: sold 10 at 183.4") for n in notes), notes
    assert e2e.posted_orders() == []  # nothing sold twice, no stop for a position that is gone
    assert json.loads(e2e.cli("status", "--json").stdout)["positions"] == []


def test_killswitch_on_keeps_the_stop_and_flatten_cancels_it_then_sells(e2e):
    e2e.configure(universe={"stocks": ["AAPL"], "crypto": []}, risk=STOPS_ON)
    e2e.fake.set_price("AAPL", "200")
    with e2e.fake.lock:
        e2e.fake.add_position("AAPL", "10", "200")
    e2e.fake.llm_decide = {"AAPL": ("hold", 0.5, "wait")}
    e2e.run()
    [stop] = stop_rows(e2e)

    assert e2e.cli("killswitch", "on").returncode == 0
    e2e.run()
    assert e2e.fake.calls("alpaca", "DELETE") == [] and stop_rows(e2e)[0]["status"] == "new"

    assert e2e.cli("killswitch", "on", "--flatten").returncode == 0
    e2e.fake.clear_requests()
    e2e.run()
    assert [r.subpath for r in e2e.fake.calls("alpaca", "DELETE")] == [f"/v2/orders/{stop['broker_order_id']}"]
    [sell] = e2e.posted_orders()
    assert (sell["type"], sell["side"], sell["qty"]) == ("market", "sell", "10")
    assert e2e.decisions()["AAPL"]["outcome"] == "flatten"
    assert stop_rows(e2e)[0]["status"] == "canceled"


def held_positions(fake: FakeServices, symbols: list[str]) -> None:
    for i, symbol in enumerate(symbols):
        fake.set_price(symbol, str(100 + i))
        with fake.lock:
            fake.add_position(symbol, "5", str(100 + i))
    fake.llm_decide = {s: ("hold", 0.5, "wait") for s in symbols}


def steady_broker_calls(e2e: E2E, symbols: list[str], held_stops: bool) -> tuple[int, list]:
    e2e.configure(universe={"stocks": symbols, "crypto": []}, risk=STOPS_ON | {"broker_held_stops": held_stops},
                  news={"provider": "none"})
    e2e.run()
    e2e.fake.clear_requests()
    e2e.run()
    return len(e2e.fake.calls("alpaca")), [(r.method, r.subpath) for r in e2e.fake.calls("alpaca")]


def test_a_steady_cycle_with_15_stops_makes_no_more_broker_calls_than_one_without(e2e, tmp_path):
    symbols = [f"S{i:02d}" for i in range(15)]
    held_positions(e2e.fake, symbols)
    with_stops, calls = steady_broker_calls(e2e, symbols, True)
    assert len(stop_rows(e2e)) == 15 and {r["status"] for r in stop_rows(e2e)} == {"new"}
    with FakeServices() as other:
        held_positions(other, symbols)
        without, _ = steady_broker_calls(E2E(other, tmp_path / "no-stops"), symbols, False)
    assert with_stops <= without, calls
    assert all(method == "GET" for method, _ in calls)  # nothing placed, raised or canceled in steady state


def test_a_refused_stop_leaves_the_cycle_protecting_and_status_names_the_position(e2e):
    e2e.configure(universe={"stocks": ["AAPL", "MSFT"], "crypto": []}, risk=STOPS_ON)
    for symbol, price in (("AAPL", "200"), ("MSFT", "400")):
        e2e.fake.set_price(symbol, price)
        with e2e.fake.lock:
            e2e.fake.add_position(symbol, "10", price)
    e2e.fake.stop_refusals["MSFT"] = "asset MSFT takes no stop orders"
    e2e.fake.llm_decide = {"AAPL": ("hold", 0.5, "wait"), "MSFT": ("hold", 0.5, "wait")}
    e2e.run()
    e2e.fake.set_price("MSFT", "401")
    e2e.run()  # the refusal is not asked again the same day

    assert [(o["symbol"], o["type"]) for o in e2e.posted_orders()] == [("AAPL", "stop"), ("MSFT", "stop")]
    assert [(r["symbol"], r["status"], r["notes"]) for r in stop_rows(e2e)] == [
        ("AAPL", "new", None), ("MSFT", "rejected", "asset MSFT takes no stop orders")]
    data = json.loads(e2e.cli("status", "--json").stdout)
    assert data["broker_held_stops"] == {"enabled": True, "missing": {
        "MSFT": "the broker refused it: asset MSFT takes no stop orders"}}
    assert {p["symbol"]: p["broker_stop"].get("stop_price") for p in data["positions"]} == {"AAPL": "184.00", "MSFT": None}
    shown = e2e.cli("status")
    assert "no stop at the broker for MSFT (the broker refused it: asset MSFT takes no stop orders)" in " ".join(shown.stdout.split())

    e2e.fake.set_price("MSFT", "365")  # under its 8 % stop-loss: the cycle's own exit sells
    e2e.run()
    assert [(o["symbol"], o["type"], o["side"]) for o in e2e.posted_orders()][-1] == ("MSFT", "market", "sell")
    assert e2e.decisions()["MSFT"]["outcome"] == "stop_loss"


def test_a_day_stop_that_expired_with_the_session_is_placed_again_in_the_next(e2e):
    e2e.configure(universe={"stocks": ["AAPL"], "crypto": []}, risk=STOPS_ON)
    e2e.fake.set_price("AAPL", "200")
    with e2e.fake.lock:
        e2e.fake.add_position("AAPL", "2.5", "200")
    e2e.fake.llm_decide = {"AAPL": ("hold", 0.5, "wait")}
    e2e.run()
    [first] = e2e.posted_orders()
    assert (first["qty"], first["time_in_force"]) == ("2.5", "day")

    e2e.fake.set_market_open(False)
    e2e.fake.set_order_status(first["client_order_id"], "expired")  # the session closed
    e2e.run()
    assert len(e2e.posted_orders()) == 1  # no stock stop is placed while the market is closed
    e2e.fake.set_market_open(True)
    e2e.run()
    first_row, second_row = stop_rows(e2e)
    assert (first_row["status"], second_row["status"], second_row["time_in_force"]) == ("expired", "new", "day")
    assert second_row["client_order_id"] != first_row["client_order_id"]
