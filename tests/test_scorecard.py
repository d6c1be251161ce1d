"""`tradecycle score`: every figure checked against a hand computation, on a
database written the way cycles write it, read back through the real CLI.

The story (T0 = 2026-11-02T14:00Z; decision i at T0 + 2 h * i, all AAPL at 100):

main analyst ``gpt-4o-mini#aaaa1111``:
  i = 0..15  buy   (confidence 0.9 for i < 10, else 0.7)
  i = 16..19 sell  (confidence 0.8 for i = 16, else 0.6)
  i = 20..23 hold
  i = 24     ai_unavailable (failed)
  plus an ``unchanged`` row and a protective exit: never counted (no analyst was asked)
shadow ``other-model#aaaa1111``: same as main for i < 18, hold for i = 18..24.

Prices stored after each buy/sell (quotes at exactly t + 15 min, t + 1 h, t + 1 day):
  15 min: buys 0..11 -> 101 (hit), 12..15 -> 99 (miss);
          sells 16, 17 -> 99 (hit), 18 -> 101 (miss), 19 -> 100 (unchanged: a miss)
  1 h:    buys 0..9 -> 102 (hit), 10..15 -> 98 (miss); sell 16 -> 98 (hit), 17..19 -> 102 (miss)
  1 day:  only i = 0..9 have one yet (105: hits); i >= 10 have no price a day later yet
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from rich.console import Console

from tradecycle.render import score as score_view
from tradecycle.rules import scorecard
from tradecycle.models import Account, Position, Quote
from tradecycle.store import Store, open_database

from .e2e_helpers import clean_env, describe, run_cli

T0 = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)
MAIN, SHADOW = "gpt-4o-mini#aaaa1111", "other-model#aaaa1111"


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def main_action(i: int) -> tuple[str, float]:
    if i < 16:
        return "buy", 0.9 if i < 10 else 0.7
    if i < 20:
        return "sell", 0.8 if i == 16 else 0.6
    return "hold", 0.5


def later_prices(i: int) -> dict[str, str]:
    action, _ = main_action(i)
    if action == "buy":
        prices = {"15m": "101" if i < 12 else "99", "1h": "102" if i < 10 else "98"}
        if i < 10:
            prices["1d"] = "105"
        return prices
    if action == "sell":
        return {"15m": {16: "99", 17: "99", 18: "101", 19: "100"}[i], "1h": "98" if i == 16 else "102"}
    return {}


def quote(symbol: str, price: str, as_of: datetime) -> Quote:
    return Quote(symbol, Decimal(price), as_of, "finnhub")


def build_history(path) -> None:
    db = open_database(path)
    store = Store(db)
    # Cycle c0 stores the first prices (the benchmark's start): AAPL 100, MSFT 400.
    store.start_cycle("c0", T0, False)
    store.record_quotes("c0", [quote("AAPL", "100", T0), quote("MSFT", "400", T0)], T0)
    for i in range(25):
        at = T0 + timedelta(hours=2 * i)
        cycle = f"d{i:02d}"
        store.start_cycle(cycle, at, False)
        action, confidence = main_action(i)
        common = {"cycle_id": cycle, "symbol": "AAPL", "created_at": iso(at), "price": "100", "prompt_hash": "aaaa1111"}
        failed = i == 24
        store.record_decision({
            **common, "role": "main", "analyst": MAIN, "model": "gpt-4o-mini",
            "action": "hold" if failed else action, "confidence": 0.0 if failed else confidence,
            "outcome": "ai_unavailable" if failed else {"buy": "ordered", "sell": "ordered", "hold": "hold"}[action],
            "prompt_tokens": None if failed else 200, "completion_tokens": None if failed else 10,
        })
        shadow_action = action if i < 18 else "hold"
        store.record_decision({
            **common, "role": "shadow", "analyst": SHADOW, "model": "other-model", "action": shadow_action,
            "confidence": confidence, "outcome": "shadow", "prompt_tokens": 100, "completion_tokens": 20,
        })
        offsets = {"15m": timedelta(minutes=15), "1h": timedelta(hours=1), "1d": timedelta(days=1)}
        store.record_quotes(cycle, [quote("AAPL", p, at + offsets[h]) for h, p in later_prices(i).items()], at)
    # Rows that stand for no new analysis: a hold that still stands, a protective exit.
    store.record_decision({"cycle_id": "d23", "symbol": "MSFT", "created_at": iso(T0 + timedelta(hours=46)), "role": "main",
                           "model": "gpt-4o-mini", "action": "hold", "confidence": 0.5, "outcome": "unchanged", "price": "400"})
    store.record_decision({"cycle_id": "d23", "symbol": "MSFT", "created_at": iso(T0 + timedelta(hours=46)), "role": "main",
                           "model": "protective-exit", "action": "sell", "confidence": 1.0, "outcome": "stop_loss", "price": "400"})
    # The last prices (the benchmark's end), at T0 + 43 h: after every 1-day target that
    # has a price, before the first that has none (T0 + 44 h).
    store.start_cycle("c9", T0 + timedelta(hours=43), False)
    store.record_quotes("c9", [quote("AAPL", "130", T0 + timedelta(hours=43)), quote("MSFT", "390", T0 + timedelta(hours=43))],
                        T0 + timedelta(hours=43))

    # Fills. AAPL: buy 10 @ 100 (fee 1.00), buy 10 @ 110, sell 15 @ 120 (fee 0.50). MSFT: buy 2 @ 400.
    # A dry run and an order that never filled must not count.
    fills = [
        ("d00", "AAPL", "buy", "10", "100", "1.00", "filled", 0, T0 + timedelta(minutes=1)),
        ("d01", "AAPL", "buy", "10", "110", None, "filled", 0, T0 + timedelta(hours=2, minutes=1)),
        ("d02", "MSFT", "buy", "2", "400", None, "filled", 0, T0 + timedelta(hours=4, minutes=1)),
        ("d16", "AAPL", "sell", "15", "120", "0.50", "filled", 0, T0 + timedelta(hours=32, minutes=1)),
        ("d17", "AAPL", "sell", "5", "150", None, "dry_run", 1, T0 + timedelta(hours=34, minutes=1)),
        ("d18", "AAPL", "buy", "0", None, None, "canceled", 0, T0 + timedelta(hours=36, minutes=1)),
    ]
    for n, (cycle, symbol, side, qty, price, fee, status, dry, at) in enumerate(fills):
        store.insert_trade({
            "cycle_id": cycle, "symbol": symbol, "side": side, "quantity": qty, "price": price or "100", "status": status,
            "client_order_id": f"o{n}", "dry_run": dry, "filled_qty": qty if status == "filled" else None,
            "filled_avg_price": price if status == "filled" else None, "fee_usd": fee,
            "executed_at": iso(at) if status == "filled" else None, "created_at": iso(at), "updated_at": iso(at),
        })
    store.replace_positions([
        Position("AAPL", Decimal(5), Decimal(110), Decimal(650), Decimal(130), Decimal("100.00")),
        Position("MSFT", Decimal(2), Decimal(400), Decimal(780), Decimal(390), Decimal("-20.00")),
    ], T0 + timedelta(hours=43))
    # Equity per cycle, as each cycle's sync writes it.
    for cycle, equity in [("d00", "100000"), ("d01", "101000"), ("d02", "99990"), ("d03", "102000"), ("d04", "100470")]:
        store.save_account(Account(Decimal(equity), Decimal(100000), Decimal(50000), Decimal(50000)), 2, T0, cycle)
    db.close()


@pytest.fixture
def history(tmp_path):
    path = tmp_path / "tradecycle.db"
    build_history(path)
    return path


def score_json(path, *options: str) -> dict:
    result = run_cli(["score", "--json", "--db", str(path), *options], clean_env({}))
    assert result.returncode == 0, describe(result)
    return json.loads(result.stdout)


def test_every_figure_of_score_matches_the_hand_computation(history):
    card = score_json(history)
    main, shadow = card["analysts"]
    assert (main["analyst"], main["role"], shadow["analyst"], shadow["role"]) == (MAIN, "main", SHADOW, "shadow")
    assert list(main["symbols"]) == ["all", "AAPL"]  # the unchanged and exit rows on MSFT count for nobody
    stats = main["symbols"]["all"]

    # Decisions by action: 16 buys, 4 sells, 4 holds, 1 failed (the unchanged hold is not a decision).
    assert stats["decisions"] == {"buy": 16, "sell": 4, "hold": 4, "failed": 1}

    # 15 min: buys 12 hits of 16, sells 2 of 4 (18 rose, 19 unchanged: misses): 14 / 20 = 0.7.
    # 1 h: buys 10 of 16, sells 1 of 4: 11 / 20 = 0.55.
    # 1 day: only i = 0..9 have a price yet: 10 of 10, but 10 < 20: n too small (no rate).
    assert stats["hit_rate"] == {
        "15m": {"n": 20, "hits": 14, "rate": 0.7},
        "1h": {"n": 20, "hits": 11, "rate": 0.55},
        "1d": {"n": 10, "hits": 10, "rate": None},
    }

    # Brier at 1 h: 10 hits at 0.9 -> 10 * 0.1^2 = 0.10; 6 misses at 0.7 -> 6 * 0.49 = 2.94;
    # 1 hit at 0.8 -> 0.04; 3 misses at 0.6 -> 3 * 0.36 = 1.08. (0.10 + 2.94 + 0.04 + 1.08) / 20 = 0.208.
    assert stats["brier"] == {"n": 20, "score": 0.208}
    # Bands at 1 h: 0.6-0.7: 3 sells, 0 hits; 0.7-0.8: 6 buys, 0 hits; 0.8-0.9: 1 sell, 1 hit;
    # 0.9-1.0: 10 buys, 10 hits. Each under 20: no rate.
    assert [(b["band"], b["n"], b["hits"], b["rate"]) for b in stats["bands"]] == [
        ("0.0-0.6", 0, 0, None), ("0.6-0.7", 3, 0, None), ("0.7-0.8", 6, 0, None), ("0.8-0.9", 1, 1, None),
        ("0.9-1.0", 10, 10, None),
    ]

    # The shadow: buys 0..15 and sells 16, 17 only. 15 min: 12 + 2 = 14 of 18: n too small.
    assert shadow["symbols"]["all"]["decisions"] == {"buy": 16, "sell": 2, "hold": 7, "failed": 0}
    assert shadow["symbols"]["all"]["hit_rate"]["15m"] == {"n": 18, "hits": 14, "rate": None}

    # Agreement: pairs where neither failed: i = 0..23 (24); same action for i < 18 and
    # 20..23 (holds): 22 / 24 = 0.9167.
    assert card["agreement"] == [{"analyst": SHADOW, "role": "shadow", "n": 24, "hits": 22, "rate": 0.9167}]

    # Tokens per day: decisions at 14:00 + 2 h * i fall on 11-02 (i = 0..4), 11-03 (5..16), 11-04 (17..24).
    # Main: 200 / 10 each, none for the failed i = 24; shadow: 100 / 20 each.
    assert card["tokens_per_day"] == [
        {"day": "2026-11-02", "analyst": MAIN, "role": "main", "requests": 5, "prompt_tokens": 1000, "completion_tokens": 50},
        {"day": "2026-11-02", "analyst": SHADOW, "role": "shadow", "requests": 5, "prompt_tokens": 500, "completion_tokens": 100},
        {"day": "2026-11-03", "analyst": MAIN, "role": "main", "requests": 12, "prompt_tokens": 2400, "completion_tokens": 120},
        {"day": "2026-11-03", "analyst": SHADOW, "role": "shadow", "requests": 12, "prompt_tokens": 1200, "completion_tokens": 240},
        {"day": "2026-11-04", "analyst": MAIN, "role": "main", "requests": 8, "prompt_tokens": 1400, "completion_tokens": 70},
        {"day": "2026-11-04", "analyst": SHADOW, "role": "shadow", "requests": 8, "prompt_tokens": 800, "completion_tokens": 160},
    ]

    # FIFO: the sell of 15 @ 120 takes 10 from the 100 lot (+200) and 5 from the 110 lot (+50):
    # 250 gross, less fees 1.00 + 0.50 = 248.50. Unrealized: AAPL +100, MSFT -20 = 80.
    pnl = card["pnl"]
    assert (pnl["realized_usd"], pnl["fees_usd"], pnl["unrealized_usd"]) == ("248.50", "1.50", "80.00")
    assert pnl["by_symbol"] == [
        {"symbol": "AAPL", "realized_usd": "248.50", "fees_usd": "1.50", "unrealized_usd": "100.00", "unmatched_sell_qty": "0"},
        {"symbol": "MSFT", "realized_usd": "0.00", "fees_usd": "0.00", "unrealized_usd": "-20.00", "unmatched_sell_qty": "0"},
    ]

    # Equity 100000 -> 100470: +0.47 %. Buy and hold from c0: AAPL 100 -> 130 (+30 %), MSFT
    # 400 -> 390 (-2.5 %): equal weights +13.75 %; 0.47 - 13.75 = -13.28. Drawdown: peak 101000
    # -> 99990 is 1.00 %; peak 102000 -> 100470 is 1530 / 102000 = 1.50 %.
    assert card["performance"] == {
        "cycles": 5, "start_equity": "100000.00", "end_equity": "100470.00", "strategy_return_percent": "0.47",
        "benchmark_return_percent": "13.75", "vs_benchmark_percent": "-13.28", "max_drawdown_percent": "1.50",
        "benchmark_symbols": ["AAPL", "MSFT"],
    }


def test_score_filters_by_model_symbol_and_time(history):
    only_shadow = score_json(history, "--model", "other-model")
    assert [a["analyst"] for a in only_shadow["analysts"]] == [SHADOW] and only_shadow["agreement"] == []

    msft = score_json(history, "--symbol", "msft")
    assert msft["analysts"] == [] and [p["symbol"] for p in msft["pnl"]["by_symbol"]] == ["MSFT"]

    # From 11-03 on: decisions i >= 5 (at or after 2026-11-03T00:00Z). Buys 5..15 and sells 16..19 at
    # 15 min: hits 7 (5..11) + 2 = 9 of 15. The AAPL lots bought before still price the sell
    # (250 gross), but only the fee inside the window is charged: 250 - 0.50 = 249.50.
    later = score_json(history, "--since", "2026-11-03")
    stats = later["analysts"][0]["symbols"]["all"]
    assert stats["decisions"] == {"buy": 11, "sell": 4, "hold": 4, "failed": 1}
    assert stats["hit_rate"]["15m"] == {"n": 15, "hits": 9, "rate": None}
    assert later["pnl"]["realized_usd"] == "249.50" and later["pnl"]["fees_usd"] == "0.50"


def test_score_table_fits_80_columns_and_says_n_too_small(history):
    from tradecycle.commands import score as score_cmd

    card = score_cmd.score(None, str(history))
    console = Console(width=80, record=True, color_system=None)
    score_view.score(card, console)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert f"{MAIN} (main)" in text and f"{SHADOW} (shadow)" in text
    assert "70% of 20" in text and "55% of 20" in text and "n too small" in text
    assert "Brier 0.2080" in text and "248.50" in text and "-13.28%" in text and "1.50%" in text


def test_score_before_the_first_run_is_empty_not_an_error(tmp_path):
    card = score_json(tmp_path / "none.db")
    assert card["analysts"] == [] and card["performance"]["cycles"] == 0
    assert not (tmp_path / "none.db").exists()


@pytest.mark.parametrize(
    ("fills", "since", "realized", "unmatched"),
    [
        # Two lots, a sell spanning both: (12 - 10) * 3 + (12 - 11) * 1 = 7.
        ([("buy", "3", "10", "2026-01-01"), ("buy", "2", "11", "2026-01-02"), ("sell", "4", "12", "2026-01-03")], None, "7", "0"),
        # The same, but the window starts after the buys: the lots still price the sell.
        ([("buy", "3", "10", "2026-01-01"), ("buy", "2", "11", "2026-01-02"), ("sell", "4", "12", "2026-01-03")], "2026-01-03", "7", "0"),
        # A sell before the window realizes nothing in it, but uses up its lot.
        ([("buy", "3", "10", "2026-01-01"), ("sell", "3", "20", "2026-01-02"), ("buy", "1", "30", "2026-01-03"),
          ("sell", "1", "25", "2026-01-04")], "2026-01-03", "-5", "0"),
        # Selling more than was ever bought here: the excess has no cost, realizes nothing.
        ([("buy", "1", "10", "2026-01-01"), ("sell", "3", "12", "2026-01-02")], None, "2", "2"),
    ],
)
def test_fifo_lots(fills, since, realized, unmatched):
    rows = [{"symbol": "X", "side": s, "filled_qty": q, "filled_avg_price": p, "fee_usd": None, "filled_at": t}
            for s, q, p, t in fills]
    result = scorecard.fifo_pnl(rows, since)["X"]
    assert (result["realized_usd"], result["unmatched_qty"]) == (Decimal(realized), Decimal(unmatched))


def test_the_benchmark_counts_a_symbol_whose_quote_stood_from_an_earlier_cycle(tmp_path):
    """A closed market or an unchanged price extends the earlier quote row instead of
    writing one (store/spans.py): the symbol is still in the benchmark of a later window."""
    from tradecycle.store import scores

    db = open_database(tmp_path / "t.db")
    store = Store(db)
    t1 = T0 + timedelta(minutes=1)
    store.start_cycle("a", T0, False)
    store.record_quotes("a", [quote("AAPL", "100", T0), quote("MSFT", "400", T0)], T0)
    store.start_cycle("b", t1, False)
    store.record_quotes("b", [quote("AAPL", "100", T0), quote("MSFT", "410", t1)], t1)  # AAPL unchanged: extended
    assert db.one("SELECT COUNT(*) AS n FROM quotes WHERE symbol = 'AAPL'")["n"] == 1
    start, end = scores.benchmark_prices(db, iso(t1), None)
    assert start == {"AAPL": "100", "MSFT": "410"} and end == {"AAPL": "100", "MSFT": "410"}
