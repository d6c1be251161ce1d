"""The reads behind `score` that stay in SQL or arrive in one step: each gives what
a plain row-by-row reading of the same rows gives (worked out here by hand)."""

from __future__ import annotations

from decimal import Decimal

from tradecycle.store import open_database
from tradecycle.store import report as report_rows
from tradecycle.store import scores


def cycles_with_equity(db, rows):
    """Cycles as ``(cycle_id, started_at, equity)``, inserted in the order given."""
    for cycle_id, started_at, equity in rows:
        db.execute("INSERT INTO cycles (cycle_id, started_at, finished_at, status, equity) VALUES (?, ?, ?, 'completed', ?)",
                   (cycle_id, started_at, started_at, equity))


def test_one_step_gives_the_rows_a_plain_query_gives(tmp_path):
    db = open_database(tmp_path / "t.db")
    db.execute("CREATE TABLE mixed (id INTEGER PRIMARY KEY, word TEXT, amount TEXT, n INTEGER, x REAL, empty TEXT)")
    values = [(3, "Zürich \"quoted\" \\ back", "187.21", -4, 0.65, None), (1, "", "0.10", 0, 1.0, None),
              (2, "日本", "1e3", 2**53, 123.456789012345, "x")]
    for row in values:
        db.execute("INSERT INTO mixed VALUES (?, ?, ?, ?, ?, ?)", row)
    sql = "SELECT id, word, amount, n, x, empty FROM mixed WHERE id >= ? ORDER BY id"
    plain = db.query(sql, (1,))
    assert [r["id"] for r in plain] == [1, 2, 3]
    assert db.query_in_one_step(sql, (1,), key=lambda r: r["id"]) == plain
    assert db.query_in_one_step(sql, (2,)) == plain[1:]
    assert list(db.query_in_one_step(sql, (3,))[0]) == ["id", "word", "amount", "n", "x", "empty"]
    assert db.query_in_one_step("SELECT id FROM mixed WHERE id > 9") == []


def test_equity_summary_is_the_curve_in_a_few_figures(tmp_path):
    db = open_database(tmp_path / "t.db")
    # Peak 101000 -> 99990 is a 1.00 % fall; peak 102000 -> 100470 is 1530 / 102000 = 1.50 %, the deepest.
    # c0 ran before --since; c9 recorded no equity (a cycle that stopped early).
    cycles_with_equity(db, [("c0", "2026-11-01T10:00:00Z", "90000.00"), ("c1", "2026-11-02T10:00:00Z", "100000.00"),
                            ("c3", "2026-11-02T10:02:00Z", "99990.00"), ("c2", "2026-11-02T10:01:00Z", "101000.00"),
                            ("c9", "2026-11-02T10:03:00Z", None), ("c4", "2026-11-02T10:04:00Z", "102000.00"),
                            ("c5", "2026-11-02T10:05:00Z", "100470.00")])
    summary = scores.equity_summary(db, "2026-11-02T00:00:00Z")
    assert summary == {"cycles": 5, "first": "100000.00", "last": "100470.00", "peak": "102000.0", "trough": "100470.00"}
    assert scores.equity_summary(db, "2026-12-01T00:00:00Z") == {"cycles": 0, "first": None, "last": None,
                                                                 "peak": None, "trough": None}
    rising = open_database(tmp_path / "rising.db")
    cycles_with_equity(rising, [("a", "2026-11-02T10:00:00Z", "100"), ("b", "2026-11-02T10:01:00Z", "100.5")])
    summary = scores.equity_summary(rising, None)
    assert (summary["cycles"], summary["first"], summary["last"]) == (2, "100", "100.5")
    assert Decimal(summary["peak"]) == Decimal(summary["trough"])  # it never fell: a fall of 0


def test_equity_at_takes_the_cycles_at_those_places_oldest_first(tmp_path):
    db = open_database(tmp_path / "t.db")
    # Two cycles share a start time: the one written first comes first.
    cycles_with_equity(db, [(f"c{i}", f"2026-11-02T10:{i:02d}:00Z", f"{100 + i}.00") for i in (0, 1, 2, 3)])
    cycles_with_equity(db, [("c3b", "2026-11-02T10:03:00Z", "103.50"), ("c4", "2026-11-02T10:04:00Z", "104.00")])
    picked = scores.equity_at(db, "2026-11-02T10:01:00Z", [0, 2, 3, 4])
    assert [(r["cycle_id"], r["equity"]) for r in picked] == [("c1", "101.00"), ("c3", "103.00"), ("c3b", "103.50"),
                                                              ("c4", "104.00")]


def test_prices_at_is_each_symbols_last_price_quoted_by_then(tmp_path):
    db = open_database(tmp_path / "t.db")
    quotes = [("AAPL", "100", "2026-11-02T10:00:00Z", "finnhub"), ("AAPL", "101", "2026-11-02T10:05:00Z", "finnhub"),
              ("AAPL", "150", "2026-11-02T10:06:00Z", "cache"),  # a reused price never counts
              ("BTC/USD", "67000", "2026-11-02T10:04:00Z", "coingecko")]
    for symbol, price, as_of, source in quotes:
        db.execute("INSERT INTO quotes (symbol, price, as_of, source, fetched_at) VALUES (?, ?, ?, ?, ?)",
                   (symbol, price, as_of, source, as_of))
    moments = ["2026-11-02T09:59:00Z", "2026-11-02T10:04:00Z", "2026-11-02T10:07:00Z"]
    assert report_rows.prices_at(db, ["AAPL", "BTC/USD"], moments) == [
        {}, {"AAPL": "100", "BTC/USD": "67000"}, {"AAPL": "101", "BTC/USD": "67000"}]
    assert report_rows.prices_at(db, [], moments) == [{}, {}, {}]
    assert scores.prices_at(db, moments) == {"AAPL": [None, 100.0, 101.0], "BTC/USD": [None, 67000.0, 67000.0]}


def test_a_holds_later_price_is_looked_up_only_where_a_figure_uses_it(tmp_path):
    """Hit rates count buys and sells at every horizon; the verdict's base rates count
    holds too, at the calibration horizon only."""
    db = open_database(tmp_path / "t.db")
    for action in ("buy", "hold"):
        db.execute("INSERT INTO ai_decisions (cycle_id, symbol, created_at, action, confidence, outcome, price, analyst, role)"
                   " VALUES ('c1', 'AAPL', '2026-11-02T10:00:00Z', ?, 0.7, ?, '100', 'm#1', 'main')", (action, action))
    for minutes, price in ((15, "101"), (60, "102"), (1440, "105")):
        moment = f"2026-11-0{2 if minutes < 1440 else 3}T{10 + minutes // 60 if minutes < 1440 else 10}:{minutes % 60:02d}:00Z"
        db.execute("INSERT INTO quotes (symbol, price, as_of, source, fetched_at) VALUES ('AAPL', ?, ?, 'finnhub', ?)",
                   (price, moment, moment))
    horizons = {"15m": 900, "1h": 3600, "1d": 86400}
    rows = scores.scored_decisions(db, horizons, None, None, None, every_action="1h")
    assert [(r["action"], r["price_15m"], r["price_1h"], r["price_1d"]) for r in rows] == [
        ("buy", "101", "102", "105"), ("hold", None, "102", None)]
    every = scores.scored_decisions(db, horizons, None, None, None)
    assert [(r["price_15m"], r["price_1h"], r["price_1d"]) for r in every] == [("101", "102", "105")] * 2
