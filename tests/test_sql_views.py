"""For SQL users: the numeric views sort money as numbers, foreign keys to
`cycles` are declared where cheap, and every canned query of the shipped
Datasette `metadata.json` runs on a real database made by real cycles."""

from __future__ import annotations

import json
import re
from collections import Counter
import sqlite3
from pathlib import Path

import pytest

from tradecycle.store import LATEST_VERSION, Database, migrate, open_database, schema_version

from .test_cli_commands import as_json, invoke, run_cycles, sim_config

METADATA = Path(__file__).resolve().parents[1] / "metadata.json"
MONEY = {
    "trades_v": ["quantity", "notional_usd", "price", "filled_qty", "filled_avg_price", "filled_value_usd"],
    "decisions_v": ["price"],
    "quotes_v": ["price", "previous_close", "change_percent"],
    "cycles_v": ["orders_notional_usd"],
    "positions_v": ["qty", "avg_entry_price", "current_price", "market_value", "unrealized_pl"],
}


@pytest.fixture(scope="module")
def made_by_cycles(tmp_path_factory):
    """Three simulator cycles (the first buys AAPL): the database and its cycle ids, newest first."""
    config = sim_config(tmp_path_factory.mktemp("sql"))
    run_cycles(config, 3)
    ids = [c["cycle_id"] for c in as_json(invoke("cycles", "--json", "--config", config))]
    return config.parent / "tradecycle.db", ids


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    return conn


def test_views_sort_prices_as_numbers_where_the_table_sorts_text(made_by_cycles):
    path, _ = made_by_cycles
    with connect(path) as conn:
        as_text = [r[0] for r in conn.execute("SELECT price FROM ai_decisions ORDER BY price")]
        as_real = [r[0] for r in conn.execute("SELECT price FROM decisions_v ORDER BY price")]
    assert as_text == sorted(as_text) and all(isinstance(p, str) for p in as_text)
    assert as_real == sorted(float(p) for p in as_text)  # 126.38 < 408.68 < 3490.5 < 66771.91
    assert as_real != [float(p) for p in as_text]  # the text order was wrong ("3490.50" < "408.68")


@pytest.mark.parametrize("view, columns", MONEY.items())
def test_every_amount_in_the_views_is_real(made_by_cycles, view, columns):
    path, _ = made_by_cycles
    with connect(path) as conn:
        for column in columns:
            kinds = {r[0] for r in conn.execute(f"SELECT DISTINCT typeof({column}) FROM {view}")}
            assert kinds <= {"real", "null"} and "real" in kinds, (view, column, kinds)


def test_foreign_keys_to_cycles_are_declared_where_cheap(made_by_cycles):
    path, ids = made_by_cycles
    with connect(path) as conn:
        declared = {t: [(r["from"], r["table"], r["to"]) for r in conn.execute(f"PRAGMA foreign_key_list({t})")]
                    for t in ("trades", "agent_status", "ai_decisions", "quotes")}
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("SELECT last_cycle_id FROM agent_status").fetchone()[0] == ids[0]
    assert declared == {"trades": [("cycle_id", "cycles", "cycle_id")], "agent_status": [("last_cycle_id", "cycles", "cycle_id")],
                        "ai_decisions": [], "quotes": []}  # the big tables: no copy of millions of rows


def test_an_older_database_gains_the_views_keeping_its_rows_and_unique_order_ids(tmp_path):
    path = tmp_path / "old.db"
    old = Database(path)
    migrate(old, up_to=LATEST_VERSION - 1)
    old.execute("INSERT INTO cycles (cycle_id, started_at, status, dry_run) VALUES ('c1', '2026-01-01T00:00:00Z', 'completed', 0)")
    for notional, order_id in (("9500.00", "tc-1"), ("10000.00", "tc-2")):
        old.execute("INSERT INTO trades (cycle_id, symbol, side, quantity, notional_usd, status, client_order_id) "
                    "VALUES ('c1', 'AAPL', 'buy', '1', ?, 'filled', ?)", (notional, order_id))
    old.close()

    db = open_database(path)
    assert schema_version(db) == LATEST_VERSION
    assert db.query("SELECT notional_usd FROM trades_v ORDER BY notional_usd DESC") == [{"notional_usd": 10000.0}, {"notional_usd": 9500.0}]
    with pytest.raises(Exception, match="UNIQUE"):
        db.execute("INSERT INTO trades (cycle_id, client_order_id) VALUES ('c1', 'tc-1')")


def metadata_queries() -> dict[str, dict]:
    return json.loads(METADATA.read_text())["databases"]["tradecycle"]["queries"]


def test_metadata_describes_every_table_it_names_and_every_view(made_by_cycles):
    path, _ = made_by_cycles
    tables = json.loads(METADATA.read_text())["databases"]["tradecycle"]["tables"]
    with connect(path) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
    assert set(tables) <= names and set(MONEY) <= set(tables)
    assert all(t.get("description") for t in tables.values())


@pytest.mark.parametrize("name", sorted(metadata_queries()))
def test_each_canned_query_runs_on_a_database_made_by_cycles(made_by_cycles, name):
    """Each query's answer agrees with what the CLI's own --json says of the same database."""
    path, ids = made_by_cycles
    sql = metadata_queries()[name]["sql"]
    params = {p: {"cycle_id": ids[-1]}[p] for p in re.findall(r":([A-Za-z_]\w*)", sql)}
    with connect(path) as conn:
        rows = [dict(r) for r in conn.execute(sql, params)]
    config = path.parent / "config.toml"
    trades = as_json(invoke("trades", "--json", "-n", "100", "--config", config))
    decisions = as_json(invoke("decisions", "--json", "-n", "100", "--config", config))
    bought = sum(float(t["filled_qty"]) * float(t["filled_avg_price"]) for t in trades if t["side"] == "buy")
    expected = {
        "orders_today": lambda: [(r["cycle_id"], r["symbol"], r["side"]) for r in rows]
                                == [(t["cycle_id"], t["symbol"], t["side"]) for t in trades] and rows[-1]["notional_usd"] == 10000.0,
        "decisions_by_outcome": lambda: {r["outcome"]: r["decisions"] for r in rows} == Counter(d["outcome"] for d in decisions),
        "pnl_by_symbol": lambda: rows[0]["symbol"] == "AAPL" and rows[0]["bought_usd"] == round(bought, 2)
                                 and abs(rows[0]["pnl_usd"] - (rows[0]["sold_usd"] + rows[0]["held_value_usd"] - bought)) < 0.01,
        "aborted_cycles": lambda: rows == [],
        "cycle_story": lambda: len(rows) == 5 and {r["symbol"]: (r["outcome"], r["order_status"]) for r in rows}["AAPL"] == ("ordered", "filled"),
    }
    assert len(trades) >= 1 and expected[name](), rows


# Each table's view; tables with amounts but no view say why.
VIEW_OF = {"trades": "trades_v", "ai_decisions": "decisions_v", "quotes": "quotes_v", "cycles": "cycles_v", "positions": "positions_v"}
NO_VIEW = {
    "agent_status": "one row: status --json shows it",
    "daily_bars": "a cache of the market context",
    "position_marks": "the trailing stop's bookkeeping",
    "sim_market": "the simulator's books", "sim_account": "the simulator's books",
    "sim_positions": "the simulator's books", "sim_orders": "the simulator's books",
    "backtest_bars": "history fetched for backtests, kept to be reused",
}
AMOUNT_NAME = re.compile(r"_usd$|price|qty|quantity|equity|cash|buying_power|_pl$|pnl|market_value|_percent$|previous_close|"
                         r"^(open|high|low|close|volume|notional)$")
NUMBER = re.compile(r"-?\d+(\.\d+)?")


def amount_columns(conn: sqlite3.Connection, table: str) -> list[str]:
    """The text columns of ``table`` that hold amounts: named with a unit of money or
    quantity, or holding nothing but numbers in a database real cycles wrote."""
    found = []
    for column in conn.execute(f"PRAGMA table_info({table})"):
        name = column["name"]
        if column["type"] != "TEXT" or name == "id" or name.endswith(("_id", "_hash")):
            continue
        values = [r[0] for r in conn.execute(f"SELECT DISTINCT \"{name}\" FROM {table} WHERE \"{name}\" IS NOT NULL LIMIT 200")]
        if AMOUNT_NAME.search(name) or (values and all(NUMBER.fullmatch(str(v)) for v in values)):
            found.append(name)
    return found


def test_every_amount_of_every_table_is_real_in_its_view(made_by_cycles, tmp_path):
    """Columns added by later migrations included: each table's amounts are enumerated from the
    schema (and from what real cycles wrote), then a row with every amount set is read back from the view."""
    path, _ = made_by_cycles
    with connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        amounts = {t: amount_columns(conn, t) for t in tables}
    amounts = {t: columns for t, columns in amounts.items() if columns}
    assert {"equity", "fee_usd"} <= set(amounts["cycles"]) | set(amounts["trades"])  # the enumeration sees later columns
    assert set(amounts) <= set(VIEW_OF) | set(NO_VIEW), "a table with amounts and no view"

    fresh = open_database(tmp_path / "fresh.db")
    for table, view in VIEW_OF.items():
        columns = amounts[table]
        keys = {"cycles": "cycle_id", "positions": "symbol"}.get(table, "id")
        fresh.execute(f"INSERT INTO {table} ({keys}, {', '.join(columns)}) VALUES ({', '.join('?' * (len(columns) + 1))})",
                      ("1", *["9500.5"] * len(columns)))
        row = fresh.one(f"SELECT {', '.join(f'typeof({c}) AS {c}' for c in columns)} FROM {view}")
        assert row == {c: "real" for c in columns}, (view, row)
    fresh.close()
