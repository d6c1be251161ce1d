"""The chain's compact links for span extensions (store/chain.py, kind 3): a hold that
repeats extends its row each minute, and the link of that write records only the
span's new end, packed with the other extensions of the cycle in one chain_links row.
Whatever the packing, ``verify`` must name a changed, deleted or reordered row, pass
after a prune, and pass on a database whose extensions were linked in full before."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from tradecycle.store import chain, retention
from tradecycle.store.verify import verify_chain
from tradecycle.infra.times import iso

from .test_chain import PROPERTY, T0, Writer, first_problem, fresh_store, raw, tamper_change

MANY = [f"S{i:02d}" for i in range(40)]


def holds(writer: Writer, symbols, cycles: int) -> None:
    """``cycles`` cycles in which every symbol holds for the same reason: the first inserts, the rest extend."""
    for _ in range(cycles):
        cycle_id = writer.new_cycle()
        for symbol in symbols:
            writer.decide(cycle_id, symbol, "market_closed", 0.5)


def test_a_cycle_of_extensions_is_one_row_of_the_chain_and_verifies(tmp_path):
    writer = Writer(fresh_store(tmp_path))
    db = writer.store.db
    holds(writer, ["AAPL", "MSFT", "NVDA"], 4)

    rows = db.query("SELECT kind, row_id, detail, length(content) AS size FROM chain_links ORDER BY seq")
    assert [(r["kind"], r["row_id"], r["detail"], r["size"]) for r in rows] == [
        (1, 1, None, 16), (1, 2, None, 16), (1, 3, None, 16), (3, 1, "1,1", 8), (3, 1, "1,1", 8), (3, 1, "1,1", 8)]
    result = verify_chain(db)
    assert result["ok"] and result["links"] == 12 and result["head"]["seq"] == 12
    assert chain.chain_head(db)["hash"] == result["head"]["hash"]
    assert db.query("SELECT repeats FROM ai_decisions ORDER BY id") == [{"repeats": 3}] * 3


def test_each_span_column_of_an_extended_row_is_vouched_for(tmp_path):
    for column in ("repeats", "last_seen_at", "last_cycle_id", "reasoning", "created_at"):
        writer = Writer(fresh_store(tmp_path))
        db = writer.store.db
        holds(writer, ["AAPL", "MSFT"], 3)
        row = db.one("SELECT * FROM ai_decisions WHERE symbol = 'MSFT'")
        tamper_change(db, "ai_decisions", row, column)
        assert first_problem(db) == ("ai_decisions", row["id"]), column


def test_runs_longer_than_a_row_and_across_a_stored_hash_verify_and_name_an_edited_run(tmp_path):
    writer = Writer(fresh_store(tmp_path))
    db = writer.store.db
    holds(writer, MANY, 3)  # 40 inserts, then 2 cycles of 40 extensions: runs of 32 and 8

    runs = db.query("SELECT seq, detail, hash IS NOT NULL AS stored FROM chain_links WHERE kind = 3 ORDER BY seq")
    assert [len(chain.run_ids(0, r["detail"])) for r in runs] == [32, 8, 32, 8]
    # Links 41-72, 73-80, 81-112, 113-120: a run that holds a 32nd link keeps its last link's hash.
    assert [r["stored"] for r in runs] == [1, 0, 1, 0]
    result = verify_chain(db)
    assert result["ok"] and result["links"] == 120
    assert chain.chain_head(db)["hash"] == result["head"]["hash"]

    with raw(db) as conn:  # one extension moved to another row, inside a run
        conn.execute("UPDATE chain_links SET detail = replace(detail, '1,1,1', '1,2,0') WHERE seq = ?", (runs[2]["seq"],))
    result = verify_chain(db)
    edited = [p for p in result["problems"] if "the chain was edited here" in p["message"]]
    assert not result["ok"] and [p["message"].split(":")[0] for p in edited] == ["links 73 to 112"]


def test_a_database_whose_extensions_were_linked_in_full_still_verifies_and_goes_on(tmp_path):
    """Before the compact links, an extension was linked like any write: the row's whole content.
    Such a span, extended further, keeps full links (its insert is no longer what verify could
    rebuild); a new span gets compact ones."""
    store = fresh_store(tmp_path)
    db = store.db
    writer = Writer(store)
    writer.decide(writer.new_cycle(), "AAPL", "market_closed", 0.5)
    cycle_id = writer.new_cycle()
    with db.transaction():  # what the code before this format did for an extension
        row_id = store.spans.extend_decision({"cycle_id": cycle_id, "symbol": "AAPL", "action": "hold", "outcome": "market_closed",
                                              "created_at": iso(writer.now()), "role": "main"})
        chain.append_rows(db.conn, "ai_decisions", [row_id], iso(writer.now()))
    assert verify_chain(db)["ok"]

    holds(writer, ["AAPL", "MSFT"], 2)  # AAPL extended twice more; MSFT inserted, then extended once
    kinds = [(r["kind"], r["row_id"]) for r in db.query("SELECT kind, row_id FROM chain_links ORDER BY seq")]
    assert kinds == [(1, 1), (1, 1), (1, 1), (1, 2), (1, 1), (3, 2)]
    assert verify_chain(db)["ok"]
    assert db.one("SELECT repeats FROM ai_decisions WHERE id = 1")["repeats"] == 3
    tamper_change(db, "ai_decisions", db.one("SELECT * FROM ai_decisions WHERE id = 1"), "repeats")
    assert first_problem(db) == ("ai_decisions", 1)


@PROPERTY
@given(symbols=st.integers(1, 40), cycles=st.integers(2, 5), keep_minutes=st.integers(0, 6), batch=st.integers(1, 50),
       data=st.data())
def test_many_extensions_pruned_at_any_point_verify_and_still_name_a_changed_row(tmp_path, symbols, cycles, keep_minutes,
                                                                                 batch, data):
    writer = Writer(fresh_store(tmp_path))
    db = writer.store.db
    names = MANY[:symbols]
    holds(writer, names, cycles)
    closing = writer.new_cycle()  # some spans end: a new outcome starts a new row
    for symbol in names[::2]:
        writer.decide(closing, symbol, "hold", 0.9)
    report = retention.prune(db, iso(T0 + timedelta(minutes=keep_minutes)), budget_seconds=60, batch_rows=7,
                             chain_batch=batch, sleep=lambda s: None)
    assert report.done

    result = verify_chain(db)
    assert result["ok"], result["problems"]
    assert chain.chain_head(db)["hash"] == result["head"]["hash"]
    survivors = [r["id"] for r in db.query("SELECT id FROM ai_decisions ORDER BY id")]
    if not survivors:
        return
    row_id = data.draw(st.sampled_from(survivors))
    row = db.one("SELECT * FROM ai_decisions WHERE id = ?", (row_id,))
    tamper_change(db, "ai_decisions", row, data.draw(st.sampled_from(sorted(c for c in row if c != "id"))))
    assert first_problem(db) == ("ai_decisions", row_id)


def test_an_extended_row_deleted_or_swapped_is_named(tmp_path):
    writer = Writer(fresh_store(tmp_path))
    db = writer.store.db
    holds(writer, ["AAPL", "MSFT", "NVDA"], 3)
    with raw(db) as conn:
        conn.execute("DELETE FROM ai_decisions WHERE id = 2")
    [problem] = verify_chain(db)["problems"]
    assert (problem["row_id"], "deleted without a trace" in problem["message"]) == (2, True)

    writer = Writer(fresh_store(tmp_path))
    db = writer.store.db
    holds(writer, ["AAPL", "MSFT"], 3)
    with raw(db) as conn:  # the two spans exchange their ids
        conn.execute("UPDATE ai_decisions SET id = -1 WHERE id = 1")
        conn.execute("UPDATE ai_decisions SET id = 1 WHERE id = 2")
        conn.execute("UPDATE ai_decisions SET id = 2 WHERE id = -1")
    assert first_problem(db) == ("ai_decisions", 1)


def test_a_run_edited_into_nonsense_is_named_not_a_crash(tmp_path):
    for column, value in (("detail", "x,1"), ("detail", 7), ("row_id", None), ("row_id", "AAPL")):
        writer = Writer(fresh_store(tmp_path))
        db = writer.store.db
        holds(writer, ["AAPL", "MSFT", "NVDA"], 3)
        with raw(db) as conn:
            conn.execute(f"UPDATE chain_links SET {column} = ? WHERE kind = 3 AND seq = (SELECT MIN(seq) FROM chain_links WHERE kind = 3)",
                         (value,))
        result = verify_chain(db)
        assert not result["ok"] and result["problems"], (column, value)
