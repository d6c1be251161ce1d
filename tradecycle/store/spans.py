"""Store what changed, not every minute.

A symbol that holds for the same reason as in the cycle before (the market
is closed, an earlier decision still stands, the quote is stale or missing)
would write the same row every minute: two thirds of a year's rows. Instead
the row of the cycle before is extended: ``repeats`` counts the further
cycles it stands for, ``last_seen_at`` and ``last_cycle_id`` say when it was
last true. A quote whose price and time did not change is extended the same
way. A row is extended only when it belongs to the cycle just before (a gap,
such as a skipped cycle, starts a new row), so a row always stands for an
unbroken run of cycles: ``explain`` of any of them finds it (``covering``).

A fresh decision that repeats the row before it is extended too, for every
analyst (the offline rules analyst decides afresh every minute): the same
analyst (model and prompt), the same action, the same outcome and the same
reason, where the reason is compared with its numbers left out ("No clear
signal (price 190.12 vs SMA20 188.10 ...)" says the same thing a minute
later at 190.31), and without the latest headline the rules analyst quotes
for colour (it never changes its action). The row keeps the first decision's numbers and inputs;
``repeats`` and ``last_seen_at`` say how long it stood. A decision that cost
a model call (a reply, tokens, a stored request) always keeps its own row:
its audit and its cost are not thrown away. Orders never repeat: only the
outcomes that sent nothing (``QUIET_OUTCOMES``) are extended.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from tradecycle.infra.times import iso, parse_iso
from tradecycle.store.db import Database

# Outcomes that cost no analysis and say the same thing cycle after cycle.
REPEATING_OUTCOMES = ("market_closed", "unchanged", "stale_quote", "no_quote", "cooldown", "stop_guard")
# Outcomes of a fresh decision that sent nothing: extended when the decision repeats the one before.
QUIET_OUTCOMES = ("hold", "low_confidence", "no_position", "max_positions_reached", "position_too_large",
                  "exposure_limit_exceeded", "below_minimum", "not_in_universe")
_NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)*%?")
# The offline rules analyst quotes the latest headline for colour; it never changes its action (ai/rules.py).
_HEADLINE_NOTE = re.compile(r"; latest headline: .*$", re.S)
# A row that carries one of these cost a model call: it is never folded into another.
_CALL_COLUMNS = ("raw_reply", "prompt_tokens", "completion_tokens", "request_id")


def reason_key(reasoning: str | None) -> str:
    """A decision's reason with its numbers and a quoted headline left out: what must match for a repeat."""
    return _NUMBER.sub("#", " ".join(_HEADLINE_NOTE.sub("", reasoning or "").split()))


class Spans:
    def __init__(self, db: Database):
        self.db = db
        self._previous: dict[str, str | None] = {}

    def previous_cycle(self, cycle_id: str) -> str | None:
        """The cycle that started just before ``cycle_id`` (whatever its status)."""
        if cycle_id not in self._previous:
            row = self.db.one(
                """SELECT c.cycle_id FROM cycles c, cycles me WHERE me.cycle_id = ?
                   AND (c.started_at < me.started_at OR (c.started_at = me.started_at AND c.rowid < me.rowid))
                   ORDER BY c.started_at DESC, c.rowid DESC LIMIT 1""",
                (cycle_id,),
            )
            self._previous[cycle_id] = row["cycle_id"] if row else None
        return self._previous[cycle_id]

    def extend_decision(self, row: dict[str, Any]) -> int | None:
        """Extend the symbol's row of the cycle before if ``row`` repeats it; its id, or None."""
        quiet = row.get("outcome") in REPEATING_OUTCOMES or row.get("reused_decision_id") is not None
        fresh = row.get("outcome") in QUIET_OUTCOMES and not any(row.get(k) is not None for k in _CALL_COLUMNS)
        if not (quiet or fresh) or row.get("role", "main") != "main":
            return None
        latest = self.db.one(
            f"""SELECT id, COALESCE(last_cycle_id, cycle_id) AS seen_in, outcome, action, reused_decision_id,
               model, prompt_hash, reasoning, {", ".join(_CALL_COLUMNS)}
               FROM ai_decisions WHERE symbol = ? AND role = 'main' ORDER BY id DESC LIMIT 1""",
            (row["symbol"],),
        )
        same = latest is not None and all(latest[k] == row.get(k) for k in ("outcome", "action", "reused_decision_id"))
        if same and fresh and not quiet:
            same = (all(latest[k] is None for k in _CALL_COLUMNS)
                    and (latest["model"], latest["prompt_hash"]) == (row.get("model"), row.get("prompt_hash"))
                    and reason_key(latest["reasoning"]) == reason_key(row.get("reasoning")))
        return self._extend("ai_decisions", latest, row["cycle_id"], row["created_at"]) if same else None

    def extend_quote(self, cycle_id: str, symbol: str, price: str, as_of: str, source: str, seen_at: str) -> bool:
        """Extend the symbol's quote of the cycle before if it is the same quote (price and time)."""
        latest = self.db.one(
            """SELECT id, COALESCE(last_cycle_id, cycle_id) AS seen_in, price, as_of, source
               FROM quotes WHERE symbol = ? ORDER BY id DESC LIMIT 1""",
            (symbol,),
        )
        same = latest is not None and (latest["price"], latest["as_of"], latest["source"]) == (price, as_of, source)
        return same and self._extend("quotes", latest, cycle_id, seen_at) is not None

    def _extend(self, table: str, latest: dict[str, Any], cycle_id: str, seen_at: str) -> int | None:
        if latest["seen_in"] != self.previous_cycle(cycle_id) or latest["seen_in"] is None:
            return None
        self.db.execute(
            f"UPDATE {table} SET repeats = repeats + 1, last_seen_at = ?, last_cycle_id = ? WHERE id = ?",
            (seen_at, cycle_id, latest["id"]),
        )
        return latest["id"]


def covering(db: Database, table: str, time_column: str, cycle: dict[str, Any], order: str,
             by_time: bool = False) -> list[dict[str, Any]]:
    """The rows a cycle wrote, and the rows of earlier cycles it extended (times are to the
    second: a row begun in the same second as this cycle started, by another cycle, is an earlier one).
    ``by_time``: the rows it wrote are found on the index of ``time_column`` (quotes have no index
    on their cycle id: it cost more than a tenth of the shipped config's day), within
    ``BY_TIME_MARGIN`` of the cycle's start and finish, which leaves room for a clock stepped meanwhile."""
    written = f"{table} WHERE cycle_id = :cycle_id"
    if by_time:
        written = f"{table} WHERE {time_column} BETWEEN :since AND :until AND cycle_id = :cycle_id"
    started = parse_iso(cycle["started_at"])
    return db.query(
        f"""SELECT * FROM {written}
            UNION ALL
            SELECT * FROM {table} WHERE last_seen_at >= :started_at AND {time_column} <= :started_at AND cycle_id != :cycle_id
            ORDER BY {order}""",
        {"cycle_id": cycle["cycle_id"], "started_at": cycle["started_at"], "since": iso(started - BY_TIME_MARGIN),
         "until": iso(max(started, parse_iso(cycle.get("finished_at") or cycle["started_at"])) + BY_TIME_MARGIN)},
    )


BY_TIME_MARGIN = timedelta(hours=1)
