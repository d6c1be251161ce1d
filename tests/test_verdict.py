"""``tradecycle score --json``: each analyst's verdict on small databases whose
figures are worked out here by hand (plain arithmetic, math.comb, enumeration
of every way random trades can fall), read as a user's script would read them."""

from __future__ import annotations

import json
import math
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from tradecycle.store import open_database

from .e2e_helpers import clean_env, describe, run_cli

START = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)


def at(hours: float) -> str:
    return (START + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


class Book:
    """A database made by the real migrations, filled with the rows a few cycles would have written."""

    def __init__(self, path: Path):
        open_database(path).close()
        self.path = path
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA synchronous = OFF")  # test rows, written one by one: no fsync each
        self.decision_id = 0

    def cycle(self, hour: float, equity: float | None) -> str:
        cycle_id = f"c{hour:g}"
        self.conn.execute("INSERT INTO cycles (cycle_id, started_at, finished_at, status, dry_run, equity)"
                          " VALUES (?, ?, ?, 'completed', 0, ?)", (cycle_id, at(hour), at(hour), None if equity is None else f"{equity:.2f}"))
        return cycle_id

    def quote(self, hour: float, symbol: str, price: float) -> None:
        self.conn.execute("INSERT INTO quotes (cycle_id, symbol, price, as_of, source, fetched_at) VALUES (?, ?, ?, ?, 'sim', ?)",
                          (f"c{hour:g}", symbol, str(price), at(hour), at(hour)))

    def decide(self, hour: float, symbol: str, action: str, price: float, role: str = "main", model: str = "m1",
               prompt_tokens: int = 0, completion_tokens: int = 0) -> None:
        self.conn.execute(
            "INSERT INTO ai_decisions (cycle_id, symbol, action, confidence, reasoning, model, outcome, created_at, price, role,"
            " analyst, prompt_tokens, completion_tokens) VALUES (?, ?, ?, 0.8, 'r', ?, ?, ?, ?, ?, ?, ?, ?)",
            (f"c{hour:g}", symbol, action, model, "ordered" if action != "hold" else "hold", at(hour), str(price), role, model,
             prompt_tokens, completion_tokens))

    def fill(self, hour: float, symbol: str, side: str, qty: float, fill_price: float, quote: float, fee: float = 0) -> None:
        self.conn.execute(
            "INSERT INTO trades (cycle_id, symbol, side, quantity, price, status, client_order_id, executed_at, created_at,"
            " updated_at, dry_run, filled_qty, filled_avg_price, fee_usd) VALUES (?, ?, ?, ?, ?, 'filled', ?, ?, ?, ?, 0, ?, ?, ?)",
            (f"c{hour:g}", symbol, side, str(qty), str(quote), f"tc-{hour:g}-{symbol}-{side}", at(hour), at(hour), at(hour),
             str(qty), str(fill_price), f"{fee:.2f}"))


def score(book: Book, tmp_path: Path, config: str = "") -> dict:
    (tmp_path / "config.toml").write_text(f'[database]\npath = "{book.path}"\n{config}', encoding="utf-8")
    result = run_cli(["score", "--json", "--config", str(tmp_path / "config.toml")], clean_env({}))
    assert result.returncode == 0, describe(result)
    return {(a["analyst"], a["role"]): a for a in json.loads(result.stdout)["analysts"]}


def upper_tail(hits: int, n: int, p: float) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(hits, n + 1))


def test_three_cycles_exposure_matched_benchmark_and_random_entry_percentile(tmp_path):
    # A: 100, 120, 90; B: 50, 50, 55. The analyst buys 50 A at 100 (half of 10,000) and sells them at 120.
    book = Book(tmp_path / "t.db")
    for hour, equity, a, b in [(0, 10000, 100, 50), (1, 11000, 120, 50), (2, 11000, 90, 55)]:
        book.cycle(hour, equity)
        book.quote(hour, "A", a)
        book.quote(hour, "B", b)
    book.decide(0, "A", "buy", 100)
    book.decide(1, "A", "sell", 120)
    book.fill(0, "A", "buy", 50, 100, 100)
    book.fill(1, "A", "sell", 50, 120, 120)

    main = score(book, tmp_path)[("m1", "main")]

    assert main["basis"] == "equity" and main["return_percent"] == "10.00"
    base = main["baselines"]
    assert base["cash"]["return_percent"] == "0.00" and base["cash"]["excess_percent"] == "10.00"
    # Buy and hold: half in A, half in B: (0.9 + 1.1) / 2 = 1.0 at the end.
    assert base["buy_and_hold"]["return_percent"] == "0.00"
    # At its own exposure: half invested over the first hour (the universe rose 10 %), nothing after.
    assert base["exposure_matched_buy_and_hold"]["return_percent"] == f"{0.5 * 10:.2f}"
    assert base["exposure_matched_buy_and_hold"]["mean_exposure_percent"] == f"{(50 + 0 + 0) / 3:.2f}"
    # Random entry: one buy of half the equity and one sell of all of it, at two of the three
    # cycles, the buy in A or B. The twelve equally likely cases, by hand:
    #   buy 0 sell 1: A +10, B 0; buy 0 sell 2: A -5, B +5; buy 1 sell 2: A -12.5, B +5;
    #   sell 0 (nothing held) buy 1, held: A -12.5, B +5; buy at 2 (either sell first): 0 four times.
    cases = [10, 0, -5, 5, -12.5, 5, -12.5, 5, 0, 0, 0, 0]
    exact = (sum(c < 10 for c in cases) + 0.5 * cases.count(10)) / len(cases) * 100
    random = base["random_entry"]
    assert (random["buys"], random["sells"], random["runs"]) == (1, 1, 1000)
    assert random["percentile"] == pytest.approx(exact, abs=3)
    assert main["verdict"]["random_entry_percentile"] == random["percentile"]
    assert sum(random["histogram"]["counts"]) == 1000
    # Both decisions were right an hour later; A rose once and fell once: a base rate of 1/2.
    assert main["verdict"]["hit_rate_p_value"] == pytest.approx(0.25)
    assert main["verdict"]["text"].startswith("not distinguishable from random entry after 2 decisions")


def test_hit_rate_p_values_against_half_and_the_base_rate(tmp_path):
    # One symbol that rises in 3 of 4 hours; the main analyst buys 24 times and is right 19 times,
    # a shadow sells at the same 24 points.
    book = Book(tmp_path / "t.db")
    rng = np.random.default_rng(11)
    price, moves = 100.0, []
    for hour in range(25):
        book.quote(hour, "A", round(price, 2))
        if hour < 24:
            up = rng.random() < 0.75
            moves.append(up)
            book.decide(hour, "A", "buy", round(price, 2))
            book.decide(hour, "A", "sell", round(price, 2), role="shadow", model="s1")
            price *= 1.01 if up else 0.99
    ups = sum(moves)
    main, shadow = (lambda s: (s[("m1", "main")], s[("s1", "shadow")]))(score(book, tmp_path))
    for entry, hits, base_rate in [(main, ups, ups / 24), (shadow, 24 - ups, (24 - ups) / 24)]:
        verdict = entry["verdict"]
        assert entry["basis"] == "decisions"
        assert (verdict["decisions"], verdict["hits"]) == (24, hits)
        assert verdict["base_rate"] == pytest.approx(base_rate, abs=1e-4)
        assert verdict["hit_rate_p_value"] == pytest.approx(upper_tail(hits, 24, base_rate), abs=1e-4)
        assert verdict["hit_rate_p_value_vs_half"] == pytest.approx(upper_tail(hits, 24, 0.5), abs=1e-4)
    # Right exactly as often as the symbol rose: nothing to tell from chance; the decisions a
    # one-sided 5 % test needs at 80 % power to see the base rate + 5 points, by the normal formula.
    null, target = ups / 24, ups / 24 + 0.05
    need = ((1.6448536 * math.sqrt(null * (1 - null)) + 0.8416212 * math.sqrt(target * (1 - target))) / 0.05) ** 2
    assert main["verdict"]["decisions_needed"] == math.ceil(need)
    assert f"about {math.ceil(need)} decisions to detect a {target:.0%} hit rate" in main["verdict"]["text"]
    assert main["verdict"]["hit_rate_p_value"] > 0.3 and "not distinguishable" in main["verdict"]["text"]


def test_the_excess_interval_is_the_normal_interval_of_independent_returns(tmp_path):
    # 300 hourly cycles of independent returns; the universe is flat, so buy and hold earns 0.
    book = Book(tmp_path / "t.db")
    returns = np.random.default_rng(5).normal(0.0005, 0.004, 299)
    equity = 10000 * np.concatenate([[1], np.cumprod(1 + returns)])
    for hour, value in enumerate(equity):
        book.cycle(hour, float(value))
        book.quote(hour, "A", 100)
    assert score(book, tmp_path) == {}  # no analyst was asked yet: no verdict
    book.decide(0, "A", "hold", 100)
    main = score(book, tmp_path)[("m1", "main")]
    recorded = np.asarray([float(f"{v:.2f}") for v in equity])
    excess = (recorded[1:] / recorded[:-1] - 1) * 100  # one period a cycle: 299 <= 400
    low, high = main["baselines"]["buy_and_hold"]["excess_ci95"]
    half_width = 1.959964 * excess.std(ddof=1) * math.sqrt(len(excess))
    assert (low + high) / 2 == pytest.approx(excess.sum(), abs=0.15 * half_width)
    assert (high - low) / 2 == pytest.approx(half_width, rel=0.2)
    assert main["verdict"]["excess_return_ci95"]["cash"] == [low, high]  # the universe earned nothing


def test_costs_tokens_slippage_fees_and_the_net_pnl(tmp_path):
    book = Book(tmp_path / "t.db")
    for hour, equity in [(0, 10000), (1, 10040)]:
        book.cycle(hour, equity)
        book.quote(hour, "A", 100 + 10 * hour)
    book.decide(0, "A", "buy", 100, prompt_tokens=120_000, completion_tokens=30_000)
    book.decide(0, "A", "buy", 100, role="shadow", model="s1", prompt_tokens=200_000, completion_tokens=10_000)
    book.fill(0, "A", "buy", 10, 100.5, 100, fee=1.25)  # 0.50 above the quote on 10
    book.fill(1, "A", "sell", 4, 109.0, 110, fee=0.75)  # 1.00 below the quote on 4
    config = ('[ai]\nprice_input_per_million_usd = 2.5\nprice_output_per_million_usd = 10\nmodel = "m1"\n'
              '[[ai.shadow]]\nprovider = "openai"\nmodel = "s1"\nbase_url = "http://127.0.0.1:9/v1"\n'
              'price_input_per_million_usd = 1\nprice_output_per_million_usd = 4\n')
    scores = score(book, tmp_path, config)
    main, shadow = scores[("m1", "main")], scores[("s1", "shadow")]
    tokens = 120_000 * 2.5 / 1e6 + 30_000 * 10 / 1e6  # 0.30 + 0.30
    assert main["costs"] == {"tokens_usd": f"{tokens:.2f}", "slippage_usd": f"{10 * 0.5 + 4 * 1.0:.2f}", "fees_usd": "2.00"}
    assert main["net_pnl_usd"] == f"{40 - tokens:.2f}"
    assert main["gross_pnl_usd"] == f"{40 - tokens + tokens + 9 + 2:.2f}"
    assert shadow["costs"] == {"tokens_usd": f"{0.2 + 0.04:.2f}", "slippage_usd": "0.00", "fees_usd": "0.00"}
    assert shadow["net_pnl_usd"] is None
    # The verdict is on the net return: 40 USD earned less the tokens, of 10,000.
    assert main["return_percent"] == f"{(40 - tokens) / 10000 * 100:.2f}"


def test_a_negative_token_price_is_refused_naming_the_key(tmp_path):
    (tmp_path / "config.toml").write_text("[ai]\nprice_input_per_million_usd = -1\n", encoding="utf-8")
    result = run_cli(["score", "--config", str(tmp_path / "config.toml")], clean_env({}))
    assert result.returncode == 2
    assert "ai.price_input_per_million_usd" in result.stderr and "Traceback" not in result.stderr


def test_run_and_killswitch_never_import_the_statistics_libraries(tmp_path):
    """scipy and arch (and pandas under arch) are for score and report: a cycle and the kill switch never load them."""
    shipped = Path(__file__).resolve().parents[1] / "config.toml"
    (tmp_path / "config.toml").write_text(shipped.read_text(encoding="utf-8"), encoding="utf-8")
    code = ("import sys; from tradecycle.cli import cli\n"
            f"cli(['run', '--config', {str(tmp_path / 'config.toml')!r}], standalone_mode=False)\n"
            f"cli(['killswitch', '--config', {str(tmp_path / 'config.toml')!r}], standalone_mode=False)\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'scipy', 'arch', 'pandas', 'statsmodels'}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=clean_env({}),
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sqlite3.connect(tmp_path / "tradecycle.db").execute("SELECT COUNT(*) FROM cycles").fetchone()[0] == 1
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_decisions_random_entry_deals_the_same_actions_among_the_analysts_points(tmp_path):
    # A shadow's four decision points, an hour apart, in four symbols that move +2 %, -1 %, +1 %, 0 %
    # by the next hour; it bought the first and held the rest. Dealt at random, its one buy lands
    # on each point once in four: returns +2, -1, +1, 0; its own +2 is above three and ties one.
    book = Book(tmp_path / "t.db")
    for n, (symbol, move) in enumerate([("A", 0.02), ("B", -0.01), ("C", 0.01), ("D", 0.0)]):
        book.quote(n, symbol, 100)
        book.quote(n + 1, symbol, 100 * (1 + move))
        book.decide(n, symbol, "buy" if n == 0 else "hold", 100, role="shadow", model="s1")
    shadow = score(book, tmp_path)[("s1", "shadow")]
    assert shadow["basis"] == "decisions" and shadow["return_percent"] == "2.00"
    random = shadow["baselines"]["random_entry"]
    assert (random["buys"], random["sells"]) == (1, 0)
    assert random["percentile"] == pytest.approx((3 + 0.5) / 4 * 100, abs=3)
    # Buying at every point would have made +2 -1 +1 +0: buy and hold of the decision points.
    assert shadow["baselines"]["buy_and_hold"]["return_percent"] == "2.00"
    assert shadow["baselines"]["exposure_matched_buy_and_hold"] is None


def test_when_the_main_model_changed_the_account_is_nobodys_alone(tmp_path):
    book = Book(tmp_path / "t.db")
    for hour, equity in [(0, 10000), (1, 10100), (2, 10200)]:
        book.cycle(hour, equity)
        book.quote(hour, "A", 100 + hour)
    book.decide(0, "A", "buy", 100, model="m1")
    book.decide(1, "A", "buy", 101, model="m2")
    book.fill(0, "A", "buy", 10, 100, 100)
    scores = score(book, tmp_path)
    assert {(k, v["basis"], v["net_pnl_usd"]) for k, v in scores.items()} == {
        (("m1", "main"), "decisions", None), (("m2", "main"), "decisions", None)}


def test_score_reads_only_the_token_prices_of_a_config_invalid_elsewhere(tmp_path):
    book = Book(tmp_path / "t.db")
    book.decide(0, "A", "hold", 100, model="m1", prompt_tokens=1_000_000)
    config = '[risk]\nmax_positions_count = 0\n[ai]\nmodel = "m1"\nprice_input_per_million_usd = 3\n'
    assert score(book, tmp_path, config)[("m1", "main")]["costs"]["tokens_usd"] == "3.00"
    (tmp_path / "bad.toml").write_text(f'[database]\npath = "{book.path}"\n[[ai.shadow]]\nprice_output_per_million_usd = "x"\n')
    result = run_cli(["score", "--config", str(tmp_path / "bad.toml")], clean_env({}))
    assert result.returncode == 2 and "ai.shadow.0.price_output_per_million_usd" in result.stderr
