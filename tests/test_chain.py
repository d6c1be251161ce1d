"""The record no one can edit unnoticed: every write to ai_decisions and trades
is a link of a hash chain; ``verify`` names the first row that differs.

The property tests keep their own model of the writes (which row each write
touched, in order), never reading the chain, to know which row must be named."""

from __future__ import annotations

import itertools
import json
import shutil
import sqlite3
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradecycle.models import OrderResult
from tradecycle.store import Store, chain, open_database, retention
from tradecycle.store.verify import verify_chain
from tradecycle.infra.times import iso

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
SYMBOLS = ("AAPL", "MSFT", "BTC/USD")
OUTCOMES = ("hold", "market_closed", "market_closed", "ordered")


class Writer:
    """Drives the store as the cycle does and remembers, per row, when it was last written."""

    def __init__(self, store: Store):
        self.store = store
        self.writes = itertools.count()
        self.last_write: dict[tuple[str, int], int] = {}
        self.cycle = 0
        self.orders: list[str] = []

    def now(self) -> datetime:
        return T0 + timedelta(minutes=self.cycle)

    def new_cycle(self) -> str:
        self.cycle += 1
        cycle_id = f"c{self.cycle}"
        self.store.start_cycle(cycle_id, self.now(), False)
        return cycle_id

    def touched(self, table: str, row_id: int) -> None:
        self.last_write[(table, row_id)] = next(self.writes)

    def decide(self, cycle_id: str, symbol: str, outcome: str, confidence: float) -> None:
        row_id = self.store.record_decision({
            "cycle_id": cycle_id, "symbol": symbol, "action": "buy" if outcome == "ordered" else "hold",
            "confidence": confidence, "reasoning": f"{symbol} {outcome} at {confidence}", "model": "gpt-4o-mini",
            "outcome": outcome, "created_at": iso(self.now()), "price": "101.5",
        })
        self.touched("ai_decisions", row_id)

    def order(self, cycle_id: str, symbol: str) -> None:
        client_order_id = f"tc-{uuid.uuid4().hex[:8]}"
        row_id = self.store.insert_trade({
            "cycle_id": cycle_id, "symbol": symbol, "side": "buy", "quantity": "2", "notional_usd": "200",
            "status": "submitting", "client_order_id": client_order_id, "created_at": iso(self.now()),
            "updated_at": iso(self.now()), "dry_run": 0,
        })
        self.touched("trades", row_id)
        self.orders.append(client_order_id)

    def fill(self, index: int) -> None:
        client_order_id = self.orders[index % len(self.orders)]
        self.store.update_trade(client_order_id, OrderResult(client_order_id, "b-1", "filled", filled_qty=Decimal("2"),
                                                             filled_avg_price=Decimal("100.25")), self.now())
        row_id = self.store.db.one("SELECT id FROM trades WHERE client_order_id = ?", (client_order_id,))["id"]
        self.touched("trades", row_id)


# One cycle: a decision per chosen symbol (repeating outcomes extend the row of the
# cycle before), perhaps an order, perhaps a fill of an earlier one.
cycle_plans = st.lists(
    st.tuples(
        st.lists(st.tuples(st.sampled_from(SYMBOLS), st.sampled_from(OUTCOMES), st.sampled_from((0.5, 0.7, 0.9))),
                 min_size=1, max_size=3, unique_by=lambda d: d[0]),
        st.booleans(),
        st.one_of(st.none(), st.integers(0, 20)),
    ),
    min_size=2, max_size=10,
)


def play(store: Store, plan) -> Writer:
    writer = Writer(store)
    for decisions, orders, fill in plan:
        cycle_id = writer.new_cycle()
        for symbol, outcome, confidence in decisions:
            writer.decide(cycle_id, symbol, outcome, confidence)
        if orders:
            writer.order(cycle_id, "AAPL")
        if fill is not None and writer.orders:
            writer.fill(fill)
    return writer


_TEMPLATE: dict[str, Path] = {}


def fresh_store(tmp_path) -> Store:
    """A new database: a copy of one migrated once per test process (migrating costs more than an example)."""
    if "path" not in _TEMPLATE:
        template = Path(tempfile.mkdtemp()) / "template.db"
        open_database(template).close()
        _TEMPLATE["path"] = template
    path = tmp_path / f"{uuid.uuid4().hex}.db"
    shutil.copyfile(_TEMPLATE["path"], path)
    return Store(open_database(path))


def rows_of(db, table: str) -> list[dict]:
    return db.query(f"SELECT * FROM {table} ORDER BY id")


def raw(db) -> sqlite3.Connection:
    """Another connection, as someone editing the file with the sqlite3 shell would have."""
    conn = sqlite3.connect(db.path, isolation_level=None)
    return conn


def tamper_change(db, table: str, row: dict, column: str) -> bool:
    """Set ``column`` of ``row`` to a value it does not have; False if there is none to set."""
    value = row[column]
    new = {int: lambda v: v + 1, float: lambda v: v + 0.125, str: lambda v: v + "!"}.get(type(value), lambda v: "edited")(value)
    with raw(db) as conn:
        conn.execute(f"UPDATE {table} SET {column} = ? WHERE id = ?", (new, row["id"]))
    return True


def first_problem(db) -> tuple[str, int] | None:
    result = verify_chain(db)
    if not result["problems"]:
        return None
    first = result["problems"][0]
    return first["table"], first["row_id"]


PROPERTY = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@PROPERTY
@given(plan=cycle_plans, data=st.data())
def test_changing_any_column_of_any_chained_row_fails_verify_at_that_row(tmp_path, plan, data):
    writer = play(fresh_store(tmp_path), plan)
    db = writer.store.db
    assert verify_chain(db)["ok"]
    table, row_id = data.draw(st.sampled_from(sorted(writer.last_write)))
    row = db.one(f"SELECT * FROM {table} WHERE id = ?", (row_id,))
    column = data.draw(st.sampled_from(sorted(c for c in row if c != "id")))
    tamper_change(db, table, row, column)

    assert first_problem(db) == (table, row_id)


@PROPERTY
@given(plan=cycle_plans, data=st.data())
def test_deleting_any_chained_row_fails_verify_at_that_row(tmp_path, plan, data):
    writer = play(fresh_store(tmp_path), plan)
    db = writer.store.db
    table, row_id = data.draw(st.sampled_from(sorted(writer.last_write)))
    with raw(db) as conn:
        conn.execute(f"DELETE FROM {table} WHERE id = ?", (row_id,))

    result = verify_chain(db)
    assert not result["ok"]
    assert (result["problems"][0]["table"], result["problems"][0]["row_id"]) == (table, row_id)
    assert "deleted without a trace" in result["problems"][0]["message"]


@PROPERTY
@given(plan=cycle_plans, data=st.data())
def test_swapping_two_rows_fails_verify_at_the_one_written_first(tmp_path, plan, data):
    writer = play(fresh_store(tmp_path), plan)
    db = writer.store.db
    table = data.draw(st.sampled_from(sorted({t for t, _ in writer.last_write})))
    ids = sorted(i for t, i in writer.last_write if t == table)
    if len(ids) < 2:
        return
    a, b = data.draw(st.lists(st.sampled_from(ids), min_size=2, max_size=2, unique=True))
    rows = {r["id"]: r for r in rows_of(db, table)}
    columns = [c for c in rows[a] if c != "id"]
    if all(rows[a][c] == rows[b][c] for c in columns):
        return  # two identical rows: swapping them changes nothing
    # Reorder: the two rows exchange their places (their ids).
    with raw(db) as conn:
        conn.execute(f"UPDATE {table} SET id = -1 WHERE id = ?", (a,))
        conn.execute(f"UPDATE {table} SET id = ? WHERE id = ?", (a, b))
        conn.execute(f"UPDATE {table} SET id = ? WHERE id = -1", (b,))

    written_first = min((a, b), key=lambda i: writer.last_write[(table, i)])
    assert first_problem(db) == (table, written_first)


@PROPERTY
@given(plan=cycle_plans, keep_minutes=st.integers(0, 12), batch=st.integers(1, 7), data=st.data())
def test_verify_passes_after_a_prune_and_still_names_a_changed_row(tmp_path, plan, keep_minutes, batch, data):
    writer = play(fresh_store(tmp_path), plan)
    db = writer.store.db
    before = iso(T0 + timedelta(minutes=keep_minutes))
    report = retention.prune(db, before, budget_seconds=60, batch_rows=3, chain_batch=batch, sleep=lambda s: None)
    assert report.done

    result = verify_chain(db)
    assert result["ok"], result["problems"]
    survivors = [(t, r["id"]) for t in chain.CHAINED for r in rows_of(db, t)]
    assert sorted(survivors) == sorted(k for k in writer.last_write if db.one(f"SELECT 1 AS x FROM {k[0]} WHERE id = ?", (k[1],)))
    if not survivors:
        return
    table, row_id = data.draw(st.sampled_from(sorted(survivors)))
    row = db.one(f"SELECT * FROM {table} WHERE id = ?", (row_id,))
    tamper_change(db, table, row, data.draw(st.sampled_from(sorted(c for c in row if c != "id"))))
    assert first_problem(db) == (table, row_id)


# -- cases --------------------------------------------------------------------------------


def test_an_upgraded_database_links_the_rows_it_had_and_a_later_column_changes_no_old_row(tmp_path):
    from tradecycle.store import Database, migrate

    path = tmp_path / "old.db"
    old = Database(path)
    migrate(old, up_to=9)  # before the chain
    old.execute("INSERT INTO ai_decisions (cycle_id, symbol, action, confidence, reasoning, model, outcome, created_at)"
                " VALUES ('c1', 'AAPL', 'buy', 0.8, 'why', 'm', 'ordered', '2026-01-01T00:00:00Z')")
    old.execute("INSERT INTO trades (cycle_id, symbol, side, quantity, status, client_order_id) VALUES ('c1', 'AAPL', 'buy', '1', 'new', 'tc-1')")
    old.close()

    db = open_database(path)
    result = verify_chain(db)
    assert result["ok"] and result["links"] == 2 and result["rows"] == {"ai_decisions": 1, "trades": 1}
    # A column added later, NULL or with a default, leaves every old row's content as it was.
    db.execute("ALTER TABLE ai_decisions ADD COLUMN some_later_note TEXT")
    db.execute("ALTER TABLE trades ADD COLUMN some_later_flag INTEGER NOT NULL DEFAULT 0")
    assert verify_chain(db)["ok"]


def test_every_write_is_one_link_in_its_own_transaction(tmp_path):
    writer = Writer(fresh_store(tmp_path))
    db = writer.store.db
    cycle = writer.new_cycle()
    writer.decide(cycle, "AAPL", "market_closed", 0.5)
    writer.decide(writer.new_cycle(), "AAPL", "market_closed", 0.5)  # the same outcome: the row of the cycle before grows
    writer.order(cycle, "AAPL")
    writer.fill(0)

    links = db.query("SELECT seq, kind, row_id, content IS NULL AS deleted, length(content) AS size FROM chain_links ORDER BY seq")
    # The insert, the extension (kind 3: only the span's new end, 8 bytes), the order, its fill.
    assert [(l["kind"], l["row_id"], l["deleted"], l["size"]) for l in links] == [
        (1, 1, 0, 16), (3, 1, 0, 8), (2, 1, 0, 16), (2, 1, 0, 16)]
    assert db.one("SELECT repeats FROM ai_decisions")["repeats"] == 1
    head = chain.chain_head(db)
    assert head["seq"] == 4 and head["hash"] == verify_chain(db)["head"]["hash"]


def test_a_replay_asked_again_deletes_the_earlier_one_with_a_link(tmp_path):
    from tradecycle.store import scores

    writer = Writer(fresh_store(tmp_path))
    db = writer.store.db
    writer.decide(writer.new_cycle(), "AAPL", "hold", 0.5)
    original = db.one("SELECT * FROM ai_decisions")
    replay = {"cycle_id": "c1", "symbol": "AAPL", "action": "buy", "confidence": 0.6, "reasoning": "r", "model": "other",
              "outcome": "replay", "role": "replay", "replay_of": original["id"], "created_at": original["created_at"]}
    first = scores.record_replay(db, original, replay)
    second = scores.record_replay(db, original, {**replay, "confidence": 0.7})
    assert db.one("SELECT COUNT(*) AS n FROM ai_decisions WHERE role = 'replay'")["n"] == 1
    deleted = db.query("SELECT row_id FROM chain_links WHERE content IS NULL")
    assert [d["row_id"] for d in deleted] == [first]
    assert verify_chain(db)["ok"] and second != original["id"]


def test_a_checkpoint_vouches_for_an_old_open_order_so_deleting_it_later_is_seen(tmp_path):
    writer = Writer(fresh_store(tmp_path))
    db = writer.store.db
    cycle = writer.new_cycle()
    writer.order(cycle, "AAPL")  # stays open: pruning never deletes it
    for symbol in ("MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA"):  # six rows (one symbol's holds would be one span)
        writer.decide(writer.new_cycle(), symbol, "hold", 0.5)
    report = retention.prune(db, iso(T0 + timedelta(minutes=5)), budget_seconds=60, chain_batch=2, sleep=lambda s: None)
    assert report.done and report.deleted == {"ai_decisions": 3, "chain_links": 4}
    checkpoint = verify_chain(db)["checkpoint"]
    assert checkpoint is not None and verify_chain(db)["ok"]
    assert db.one("SELECT MIN(seq) AS seq FROM chain_links")["seq"] > 1  # the order's own link is gone

    with raw(db) as conn:
        conn.execute("DELETE FROM trades")
    [problem] = verify_chain(db)["problems"]
    assert (problem["table"], problem["row_id"], problem["seq"]) == ("trades", 1, 1)
    assert "deleted without a trace" in problem["message"]


def test_an_edited_or_missing_link_is_named(tmp_path):
    writer = play(fresh_store(tmp_path), [([("AAPL", "hold", 0.5), ("MSFT", "hold", 0.7)], True, 0)] * 12)
    db = writer.store.db
    # 48 links: each cycle after the first extends both holds (one run, one row), sends an order and fills one.
    assert verify_chain(db)["links"] == 48 and db.one("SELECT COUNT(*) AS n FROM chain_links")["n"] == 4 + 11 * 3
    assert [r["seq"] for r in db.query("SELECT seq FROM chain_links WHERE hash IS NOT NULL")] == [32]  # every 32nd
    with raw(db) as conn:
        conn.execute("UPDATE chain_links SET linked_at = linked_at + 1 WHERE seq = 3")
    first = verify_chain(db)["problems"][0]
    assert first["seq"] == 1 and "links 1 to 32: the chain was edited here" in first["message"]
    assert retention.prune(db, iso(T0 + timedelta(days=1)), budget_seconds=60, chain_batch=40,
                           sleep=lambda s: None).deleted.get("chain_links") is None  # the evidence is never pruned

    writer = play(fresh_store(tmp_path), [([("AAPL", "hold", 0.5), ("MSFT", "hold", 0.7)], True, 0)] * 2)
    db = writer.store.db
    with raw(db) as conn:
        conn.execute("DELETE FROM chain_links WHERE seq = 2")
    problems = verify_chain(db)["problems"]
    assert problems[0]["seq"] == 2 and "links 2 to 2 are missing" in problems[0]["message"]


def test_a_row_written_around_the_chain_is_named(tmp_path):
    writer = play(fresh_store(tmp_path), [([("AAPL", "hold", 0.5)], False, None)])
    db = writer.store.db
    with raw(db) as conn:
        conn.execute("INSERT INTO trades (cycle_id, symbol, side, quantity, status, client_order_id)"
                     " VALUES ('c1', 'AAPL', 'buy', '1', 'filled', 'tc-invented')")
    [problem] = verify_chain(db)["problems"]
    assert (problem["table"], problem["seq"]) == ("trades", None) and "in no link" in problem["message"]


def test_verify_on_the_command_line(tmp_path):
    from typer.testing import CliRunner

    from tradecycle.cli import cli

    writer = play(fresh_store(tmp_path), [([("AAPL", "hold", 0.5)], True, 0)] * 3)
    path = str(writer.store.db.path)
    runner = CliRunner()
    intact = runner.invoke(cli, ["verify", "--db", path, "--json"])
    assert intact.exit_code == 0
    head = json.loads(intact.stdout)["head"]["hash"]
    assert runner.invoke(cli, ["verify", "--db", path, "--head", head[:12]]).exit_code == 0
    unknown = runner.invoke(cli, ["verify", "--db", path, "--head", "0" * 64])
    assert unknown.exit_code == 1 and "is not a link of this chain: the record was rewritten after it" in unknown.stderr
    short = runner.invoke(cli, ["verify", "--db", path, "--head", head[:6]])
    assert short.exit_code == 1 and "give at least 12 hex digits" in short.stderr
    missing = runner.invoke(cli, ["verify", "--db", str(tmp_path / "none.db")])
    assert missing.exit_code == 1 and "there is no database at" in missing.stderr
    assert not (tmp_path / "none.db").exists()


def test_killswitch_loads_neither_verify_nor_the_chain(tmp_path):
    """``killswitch`` must start fast: ``verify`` and the chain load only with the commands that write or check it."""
    import subprocess
    import sys

    open_database(tmp_path / "x.db").close()  # made by the cycles already (a new one runs the migrations once)
    code = ("import sys; from tradecycle.cli import cli\n"
            f"cli(['killswitch', 'on', '--db', {str(tmp_path / 'x.db')!r}], standalone_mode=False)\n"
            "print(sorted(m for m in sys.modules if m.endswith(('.verify', '.chain', 'store.audit'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
