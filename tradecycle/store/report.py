"""The statements behind ``tradecycle report`` that ``score`` and ``status`` do
not already make: the benchmark's prices along the equity curve, and the last
trades with the decision that led to each.

The HTML is built in ``tradecycle/report.py``; this module only reads rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tradecycle.store.db import MAX_PARAMETERS, Database


def prices_at(db: Database, symbols: Sequence[str], moments: Sequence[str]) -> list[dict[str, str]]:
    """For each moment (an ISO UTC time), each symbol's last stored price quoted at
    or before it (a symbol not quoted yet is left out). One indexed lookup per
    symbol and moment (``quotes (symbol, as_of)``), so the work is bounded by the
    number of chart points, not by the size of the table; the lookups of many
    moments make one statement, run in one step (``Database.query_in_one_step``)."""
    result: list[dict[str, str]] = [{} for _ in moments]
    if not symbols:
        return result
    names = ", ".join("(?)" for _ in symbols)
    place = {symbol: n for n, symbol in enumerate(symbols)}
    size = max(100, MAX_PARAMETERS - len(symbols))  # moments a statement
    for start in range(0, len(moments), size):
        chunk = moments[start:start + size]
        rows = db.query_in_one_step(
            f"WITH s(symbol) AS (VALUES {names}), m(i, at) AS (VALUES {', '.join(f'({i}, ?)' for i in range(len(chunk)))})"
            " SELECT m.i AS i, s.symbol AS symbol, (SELECT price FROM quotes WHERE symbol = s.symbol AND as_of <= m.at"
            " AND source != 'cache' ORDER BY as_of DESC, id DESC LIMIT 1) AS price FROM m, s",
            (*symbols, *chunk), key=lambda r: (r["i"], place[r["symbol"]]),
        )
        for row in rows:
            if row["price"] is not None:
                result[start + row["i"]][row["symbol"]] = row["price"]
    return result


_DECISION = "(SELECT x.id FROM ai_decisions x WHERE x.cycle_id = trades.cycle_id AND x.symbol = trades.symbol AND x.role = 'main'"


def last_trades(db: Database, limit: int, since: str | None = None) -> list[dict[str, Any]]:
    """The newest trades (dry runs included, marked), newest first, each with the
    main analyst's decision on that symbol in that cycle (the one of the trade's
    side when there are several; None for an order no decision led to, such as
    a kill switch's flatten)."""
    return db.query(
        """SELECT t.*, d.action AS decision_action, d.confidence AS decision_confidence, d.outcome AS decision_outcome,
                  d.model AS decision_model, d.reasoning AS decision_reasoning
           FROM (SELECT id, cycle_id, symbol, side, quantity, notional_usd, price, status, dry_run, filled_qty,
                        filled_avg_price, fee_usd, created_at, executed_at, notes,
                        COALESCE({decision} AND x.action = trades.side ORDER BY x.id DESC LIMIT 1),
                                 {decision} ORDER BY x.id DESC LIMIT 1)) AS decision_id
                 FROM trades WHERE created_at >= ? ORDER BY created_at DESC, id DESC LIMIT ?) t
           LEFT JOIN ai_decisions d ON d.id = t.decision_id
           ORDER BY t.created_at DESC, t.id DESC""".format(decision=_DECISION),
        (since or "", limit),
    )
