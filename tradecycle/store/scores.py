"""The statements behind ``score`` and ``replay``: the analysts' decisions with
the prices that followed them, fills, equity per cycle, and the exact requests
the analysts were sent (stored once, compressed, keyed by their hash).

The arithmetic lives in ``tradecycle/scorecard.py``; this module only reads
and writes rows.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

from tradecycle.store import chain
from tradecycle.store.db import MAX_PARAMETERS, Database
from tradecycle.store.flags import iso

# Horizon columns: name -> seconds after the decision (see scorecard.HORIZONS).
_LATER_PRICE = """(SELECT q.price FROM quotes q WHERE q.symbol = d.symbol AND q.source != 'cache'
    AND q.as_of >= strftime('%Y-%m-%dT%H:%M:%SZ', d.created_at, '+{seconds} seconds') ORDER BY q.as_of LIMIT 1)"""


def request_key(messages: Sequence[dict]) -> tuple[str, str]:
    """(request id, canonical JSON text) of a list of chat messages. The id is the
    first 16 hex digits of the SHA-256 of the text: the same messages, the same id."""
    text = json.dumps(list(messages), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16], text


class RequestLog:
    """Mixed into ``Store``: the messages each analysed request carried."""

    db: Database

    def save_request(self, messages: Sequence[dict], now: datetime) -> str:
        """Store ``messages`` once (zlib-compressed JSON) and return their id."""
        request_id, text = request_key(messages)
        self.db.execute(
            "INSERT OR IGNORE INTO ai_requests (request_id, messages, created_at) VALUES (?, ?, ?)",
            (request_id, zlib.compress(text.encode("utf-8"), 9), iso(now)),
        )
        return request_id


def request_messages(db: Database, request_id: str) -> list[dict] | None:
    """The messages of a stored request, exactly as they were sent; None if unknown."""
    row = db.one("SELECT messages FROM ai_requests WHERE request_id = ?", (request_id,))
    return None if row is None else json.loads(zlib.decompress(row["messages"]).decode("utf-8"))


def replayable(db: Database, cycle_id: str | None = None, since: str | None = None) -> list[dict[str, Any]]:
    """The main analyst's asked decisions (with a stored request) of one cycle
    (``last``: the newest cycle that has any) or since a time, oldest first."""
    columns = ("id, cycle_id, symbol, created_at, price, quote_age_seconds, quote_source, action, confidence, reasoning,"
               " model, prompt_hash, analyst, outcome, request_id")
    asked = "role = 'main' AND request_id IS NOT NULL"
    if cycle_id == "last":
        row = db.one(f"SELECT cycle_id FROM ai_decisions WHERE {asked} ORDER BY id DESC LIMIT 1")
        if row is None:
            return []
        cycle_id = row["cycle_id"]
    if cycle_id is not None:
        return db.query(f"SELECT {columns} FROM ai_decisions WHERE {asked} AND cycle_id = ? ORDER BY id", (cycle_id,))
    return db.query(f"SELECT {columns} FROM ai_decisions WHERE {asked} AND created_at >= ? ORDER BY id", (since or "",))


def cycle_exists(db: Database, cycle_id: str) -> bool:
    return db.one("SELECT 1 AS found FROM cycles WHERE cycle_id = ?", (cycle_id,)) is not None


def record_replay(db: Database, original: dict[str, Any], row: dict[str, Any]) -> int:
    """Write a replayed decision (role ``replay``) in place of an earlier replay of the
    same decision by the same model: asked again, it is answered again."""
    with db.transaction():  # the rows and their links (store/chain.py): a deletion link for each earlier replay
        earlier = [r["id"] for r in db.query("SELECT id FROM ai_decisions WHERE role = 'replay' AND replay_of = ? AND model = ?",
                                             (original["id"], row["model"]))]
        db.execute(f"DELETE FROM ai_decisions WHERE id IN ({', '.join('?' for _ in earlier)})", tuple(earlier))
        chain.append_deletions(db.conn, "ai_decisions", earlier)
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        decision_id = db.execute(f"INSERT INTO ai_decisions ({columns}) VALUES ({marks})", tuple(row.values())).lastrowid
        chain.append_rows(db.conn, "ai_decisions", [decision_id])
        return decision_id


def scored_decisions(db: Database, horizons: dict[str, int], since: str | None, model: str | None,
                     symbol: str | None, include_contaminated: bool = False,
                     every_action: str | None = None) -> list[dict[str, Any]]:
    """Every decision an analyst was asked for (``analyst`` set: never a hold that
    merely stood, a protective exit or a symbol settled without asking), oldest
    first, with the first stored price at or after each horizon (None: not yet).
    A row standing for several cycles is one row, so it counts once. Decisions
    marked ``contaminated`` (about a moment the model may have been trained on)
    are left out unless ``include_contaminated``. Only buys and sells have a hit
    rate, so a hold's later prices are looked up only at ``every_action`` (the
    verdict's base rates count every decision point; None: at every horizon)."""

    def later_price(name: str, seconds: int) -> str:
        lookup = _LATER_PRICE.format(seconds=int(seconds))
        if every_action is not None and name != every_action:
            lookup = f"CASE WHEN d.action IN ('buy', 'sell') THEN {lookup} END"
        return f"{lookup} AS price_{name}"

    later = ", ".join(later_price(name, seconds) for name, seconds in horizons.items())
    clauses, params = ["d.analyst IS NOT NULL"], []
    if not include_contaminated:
        clauses.append("d.contaminated = 0")
    for clause, value in (("d.created_at >= ?", since), ("d.model = ?", model), ("d.symbol = ?", symbol)):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    return db.query_in_one_step(  # one step, outside the GIL, while scipy and arch load (commands/score.py)
        "SELECT d.id, d.cycle_id, d.created_at, d.symbol, d.role, d.analyst, d.model, d.prompt_hash, d.action,"
        " d.confidence, d.outcome, d.price, d.prompt_tokens, d.completion_tokens,"
        f" {later} FROM ai_decisions d WHERE {' AND '.join(clauses)} ORDER BY d.created_at, d.id",
        tuple(params), key=itemgetter("created_at", "id"),
    )


def contaminated_count(db: Database, since: str | None) -> int:
    """How many asked decisions since ``since`` are marked contaminated (left out of ``score``)."""
    return db.one("SELECT COUNT(*) AS n FROM ai_decisions WHERE contaminated = 1 AND analyst IS NOT NULL AND created_at >= ?",
                  (since or "",))["n"]


def fills(db: Database, symbol: str | None = None) -> list[dict[str, Any]]:
    """Every order that filled at least in part (dry runs excluded), in the order it filled."""
    where = " AND symbol = ?" if symbol else ""
    return db.query(
        "SELECT id, symbol, side, filled_qty, filled_avg_price, fee_usd, COALESCE(executed_at, updated_at, created_at) AS filled_at"
        " FROM trades WHERE COALESCE(dry_run, 0) = 0 AND CAST(COALESCE(filled_qty, '0') AS REAL) > 0"
        f" AND filled_avg_price IS NOT NULL{where} ORDER BY COALESCE(executed_at, updated_at, created_at), id",
        (symbol,) if symbol else (),
    )


def equity_by_cycle(db: Database, since: str | None) -> list[dict[str, Any]]:
    """(started_at, finished_at, equity) of every cycle that recorded its equity, oldest first."""
    return db.query_in_one_step(
        f"SELECT cycle_id, started_at, finished_at, equity {_EQUITY_CYCLES} ORDER BY started_at, rowid",
        (since or "",), key=itemgetter("started_at"),
    )


_EQUITY_CYCLES = "FROM cycles WHERE equity IS NOT NULL AND started_at >= ?"


def equity_summary(db: Database, since: str | None) -> dict[str, Any]:
    """The equity curve of the cycles at or after ``since`` in a few figures,
    worked out in SQL (a cycle a minute is 130,000 rows a quarter, which ``score``
    need not carry; each statement runs in one step, outside the GIL):
    ``cycles`` (how many recorded their equity), ``first`` and ``last`` (their
    equity), and the deepest fall from a peak, ``peak`` and ``trough`` (the
    highest equity so far and the equity furthest below it in percent of it;
    None without cycles). The peak is the shortest text of its REAL, which is
    the number it was read from (equity is stored with two decimals)."""
    params = (since or "",)
    row = db.one(
        f"SELECT COUNT(*) AS cycles, (SELECT equity {_EQUITY_CYCLES} ORDER BY started_at, rowid LIMIT 1) AS first,"
        f" (SELECT equity {_EQUITY_CYCLES} ORDER BY started_at DESC, rowid DESC LIMIT 1) AS last {_EQUITY_CYCLES}",
        params * 3,
    )
    fall = db.one(
        "SELECT peak, equity FROM (SELECT equity, CAST(equity AS REAL) AS value,"
        f" MAX(CAST(equity AS REAL)) OVER (ORDER BY started_at, rowid) AS peak {_EQUITY_CYCLES})"
        " ORDER BY CASE WHEN peak > 0 THEN (peak - value) / peak ELSE 0 END DESC LIMIT 1",
        params,
    )
    return {**row, "peak": repr(float(fall["peak"])) if fall else None, "trough": fall["equity"] if fall else None}


def equity_at(db: Database, since: str | None, indices: Sequence[int]) -> list[dict[str, Any]]:
    """The cycles at ``indices`` (0: the first) among those ``equity_summary`` counts,
    oldest first: ``cycle_id``, ``started_at``, ``finished_at``, ``equity``."""
    rows: list[dict[str, Any]] = []
    for start in range(0, len(indices), MAX_PARAMETERS - 1):
        chunk = indices[start:start + MAX_PARAMETERS - 1]
        rows += db.query(
            "SELECT cycle_id, started_at, finished_at, equity FROM (SELECT cycle_id, started_at, finished_at, equity,"
            f" row_number() OVER (ORDER BY started_at, rowid) - 1 AS i {_EQUITY_CYCLES})"
            f" WHERE i IN ({', '.join('?' for _ in chunk)}) ORDER BY i",
            (since or "", *chunk),
        )
    return rows


def benchmark_prices(db: Database, since: str | None, symbol: str | None) -> tuple[dict[str, str], dict[str, str]]:
    """The buy-and-hold benchmark's prices: each symbol's price as of the first
    cycle that stored a quote at or after ``since``, and its latest stored price.

    "As of" covers a quote stored earlier and still standing then (a row a
    later cycle extended, store/spans.py: a closed market, an unchanged
    price), and a price fetched on a later cycle for a symbol that had none
    yet (a crypto price reused between CoinGecko fetches is stored as
    ``cache``: the fetched one is used). Reused ``cache`` rows never count."""
    first = db.one("SELECT MIN(fetched_at) AS t0 FROM quotes WHERE fetched_at >= ? AND source != 'cache'", (since or "",))
    if first is None or first["t0"] is None:
        return {}, {}
    t0 = first["t0"]
    names = [symbol] if symbol else [r["symbol"] for r in db.query("SELECT DISTINCT symbol FROM quotes ORDER BY symbol")]
    start, end = {}, {}
    for name in names:
        # as_of <= t0 (a quote is quoted before it is fetched) lets the (symbol, as_of) index find
        # the row at once instead of reading every quote of the symbol.
        standing = db.one(
            "SELECT price FROM quotes WHERE symbol = ? AND source != 'cache' AND fetched_at <= ? AND as_of <= ?"
            " AND COALESCE(last_seen_at, fetched_at) >= ? ORDER BY as_of DESC, id DESC LIMIT 1",
            (name, t0, t0, since or t0),
        ) or db.one(
            "SELECT price FROM quotes WHERE symbol = ? AND source != 'cache' AND fetched_at >= ? ORDER BY fetched_at, id LIMIT 1",
            (name, t0),
        )
        if standing is None:
            continue
        start[name] = standing["price"]
        end[name] = db.one("SELECT price FROM quotes WHERE symbol = ? AND source != 'cache' ORDER BY id DESC LIMIT 1",
                           (name,))["price"]
    return start, end


def position_rows(db: Database, symbol: str | None = None) -> list[dict[str, Any]]:
    if symbol:
        return db.query("SELECT symbol, unrealized_pl FROM positions WHERE symbol = ?", (symbol,))
    return db.query("SELECT symbol, unrealized_pl FROM positions ORDER BY symbol")


def verdict_fills(db: Database) -> list[dict[str, Any]]:
    """Every fill of the account (dry runs excluded), oldest first, with the quote the
    order was sized at (``quote_price``: the price its decision saw) and its fee."""
    return db.query(
        "SELECT symbol, side, filled_qty, filled_avg_price, fee_usd, price AS quote_price,"
        " COALESCE(executed_at, updated_at, created_at) AS filled_at"
        " FROM trades WHERE COALESCE(dry_run, 0) = 0 AND CAST(COALESCE(filled_qty, '0') AS REAL) > 0"
        " AND filled_avg_price IS NOT NULL ORDER BY COALESCE(executed_at, updated_at, created_at), id"
    )


def prices_at(db: Database, times: Sequence[str]) -> dict[str, list[float | None]]:
    """Each quoted symbol's last price quoted at or before each of ``times`` (None before
    its first): ``store.report.prices_at``, one indexed look-up per symbol and time."""
    from tradecycle.store.report import prices_at as rows_at

    symbols = [r["symbol"] for r in db.query("SELECT DISTINCT symbol FROM quotes ORDER BY symbol")]
    rows = rows_at(db, symbols, times)
    return {s: [float(r[s]) if s in r else None for r in rows] for s in symbols}
