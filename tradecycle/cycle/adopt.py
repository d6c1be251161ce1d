"""What the broker holds that the database does not know: orders of this tool
the database lost, and a new database meeting an account that traded before.

A database can lose rows (restored from a backup, its WAL file removed, a
disk swapped) while the broker keeps the orders this tool sent. Every fetch
also asks for the account's recent orders (``GET /v2/orders?status=all&after=``,
one request in the same round trip, so it costs no waiting): those whose
``client_order_id`` has this tool's form (``tc-<cycle>-<symbol>``, ``tk-``
for the kill switch's own sells, ``ts-`` for the stops held at the broker)
and that have no ``trades`` row are
*adopted*: written to ``trades`` with the broker's state and a note saying
so, so that they count against the limits like any order of ours (an open
one as open, a filled one through the positions), with a log event, a cycle
note and an alert. Their client order id stays theirs, so no second order
can ever go out for that cycle and symbol.

"Recent" starts shortly before the newest ``trades`` row (rows are lost
newest first), never more than ``LOOKBACK`` ago and never before what
``database.keep_days`` prunes: the list stays short.
A listing that fails leaves the cycle unsure what is open: it buys nothing
(outcome ``unverified``); sells and protective exits go on.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal

from tradecycle.cycle.state import Cycle
from tradecycle.cycle.stops import STOP_PREFIX
from tradecycle.cycle.winddown import FLATTEN_PREFIX
from tradecycle.infra.times import iso
from tradecycle.models import OrderResult, to_qty

LISTING = "recent_orders"
LOOKBACK = timedelta(hours=24)
CLOCK_MARGIN = timedelta(minutes=10)  # our clock against the broker's submission times
# What orders.client_order_id makes of a cycle id "2026-11-25T15:00Z-ab12": "tc-20261125T1500Zab12-AAPL".
OURS = re.compile(rf"^(?:tc|{FLATTEN_PREFIX}|{STOP_PREFIX})-(\d{{4}})(\d{{2}})(\d{{2}})T(\d{{2}})(\d{{2}})Z([0-9a-f]{{4}})-")


def listing(cycle: Cycle) -> dict:
    """The fetch's task that lists the account's recent orders."""
    since = recent_since(cycle.store.newest_trade_at(), cycle.services.clock.now(), cycle.settings.keep_days)
    return {LISTING: lambda: cycle.services.broker.recent_orders(since)}


def recent_since(newest_trade_at: datetime | None, now: datetime, keep_days: int = 0) -> datetime:
    """Where the listing starts: a little before the newest trades row, at most
    ``LOOKBACK`` ago, and never before what ``database.keep_days`` prunes (a
    pruned row is not a lost one)."""
    floor = now - LOOKBACK
    if keep_days:
        floor = max(floor, now - timedelta(days=keep_days) + CLOCK_MARGIN)
    return floor if newest_trade_at is None else max(newest_trade_at - CLOCK_MARGIN, floor)


def sent_by_cycle(client_order_id: str) -> str | None:
    """The id of the cycle that sent an order of this tool; None for anyone else's order."""
    found = OURS.match(client_order_id or "")
    if not found:
        return None
    year, month, day, hour, minute, tag = found.groups()
    return f"{year}-{month}-{day}T{hour}:{minute}Z-{tag}"


def adopt_lost_orders(cycle: Cycle, listed: list[OrderResult] | Exception) -> list[dict]:
    """Write a trades row for every order of ours the broker has and the
    database lacks. Returns those with a fill, as rows standing before it
    (``reconcile.count_every_fill`` reads the positions again for them)."""
    if isinstance(listed, Exception):
        cycle.block_buys("unverified", f"the broker's recent orders could not be listed ({listed}), so an order "
                                       "the database lost could go uncounted")
        return []
    ours = [o for o in listed if sent_by_cycle(o.client_order_id)]
    known = cycle.store.known_client_order_ids([o.client_order_id for o in ours])
    before_fill = []
    for order in (o for o in ours if o.client_order_id not in known):
        row = _adopted_row(cycle, order)
        cycle.store.insert_trade(row)
        cycle.adopted.append(f"{order.side} {order.symbol} ({order.client_order_id}, {order.status})")
        cycle.log("order.adopted", "warning", symbol=order.symbol, side=order.side, client_order_id=order.client_order_id,
                  status=order.status, sent_by=row["cycle_id"])
        if order.filled_qty:
            before_fill.append(row | {"status": "accepted", "filled_qty": None, "filled_avg_price": None})
    if cycle.adopted:
        cycle.note(f"{len(cycle.adopted)} order(s) of this tool were at the broker but not in the database "
                   f"(restored from a backup? WAL lost?): adopted into trades and counted against the limits: "
                   + "; ".join(cycle.adopted))
    return before_fill


def check_new_database(cycle: Cycle, listed: list[OrderResult] | Exception) -> None:
    """On the first fetch of a database, say whether the broker account already
    holds positions or orders of this tool: their history is not in it (a
    deleted or replaced database). Recorded in ``agent_status`` for ``status``;
    a log event, a note and an alert. Waits for a cycle whose listing worked."""
    store = cycle.store
    if isinstance(listed, Exception) or store.broker_first_checked():
        return
    positions = sorted(cycle.market.positions)
    ours = [o for o in listed if sent_by_cycle(o.client_order_id)]
    found = None
    if positions or ours:
        parts = []
        if positions:
            parts.append(f"{len(positions)} position(s) ({', '.join(positions)})")
        if ours:
            parts.append(f"{len(ours)} order(s) of this tool from the last {LOOKBACK.total_seconds() / 3600:.0f} hours")
        found = (f"this database is new, but the broker account already holds {' and '.join(parts)}: "
                 "their history is not in this database")
        cycle.inherited = found
        cycle.note(found)
        cycle.log("database.new_with_broker_state", "warning", positions=len(positions), orders=len(ours), message=found)
    store.mark_broker_checked(cycle.services.clock.now(), found)


def _adopted_row(cycle: Cycle, order: OrderResult) -> dict:
    now = iso(cycle.services.clock.now())
    price = order.filled_avg_price or _known_price(cycle, order.symbol)
    if order.qty is not None:
        quantity = order.qty
    elif order.filled_qty:
        quantity = order.filled_qty
    else:
        quantity = to_qty(order.notional / price) if order.notional and price else None
    return {
        "cycle_id": sent_by_cycle(order.client_order_id),
        "symbol": order.symbol,
        "side": order.side,
        "quantity": str(quantity) if quantity is not None else None,
        "notional_usd": str(order.notional) if order.notional is not None else None,
        "price": str(price) if price else None,
        "status": order.status,
        "client_order_id": order.client_order_id,
        "broker_order_id": order.broker_order_id,
        "filled_qty": str(order.filled_qty) if order.filled_qty is not None else None,
        "filled_avg_price": str(order.filled_avg_price) if order.filled_avg_price is not None else None,
        "executed_at": order.filled_at,
        "order_type": order.order_type or "market",
        "stop_price": str(order.stop_price) if order.stop_price is not None else None,
        "limit_price": str(order.limit_price) if order.limit_price is not None else None,
        "time_in_force": order.time_in_force or None,
        "notes": f"adopted by cycle {cycle.cycle_id}: at the broker (submitted {order.submitted_at or 'at an unknown time'}) "
                 "but missing from the database",
        "dry_run": 0,
        "created_at": now,
        "updated_at": now,
    }


def _known_price(cycle: Cycle, symbol: str) -> Decimal | None:
    quote, held = cycle.market.quotes.get(symbol), cycle.market.positions.get(symbol)
    return quote.price if quote else held.current_price if held else None
