"""What the broker made of our orders: the fate of orders never confirmed
(resolved before anything is decided) and the state of open ones (refreshed
in the fetch and the sync round trips)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from tradecycle.cycle.state import Cycle
from tradecycle.infra.errors import ServiceError, Unreconcilable
from tradecycle.models import OrderResult
from tradecycle.infra.parallel import gather
from tradecycle.infra.times import parse_iso

# An order the broker does not show this long after it was sent never arrived;
# younger, it may still land, so it stays `unknown` (and counts as bought).
ARRIVAL_GRACE = timedelta(minutes=2)


def reconcile_unconfirmed_orders(cycle: Cycle) -> None:
    """Before anything is decided, learn the fate of every order whose outcome
    was never confirmed: ``submitting`` (a cycle died around the send) and
    ``unknown`` (a send that timed out), whichever cycle sent it.

    A ``running`` row seen while we hold the lock is a cycle whose process
    died; it is marked ``aborted`` only once its orders are resolved. If the
    broker cannot answer for one of them, this raises ``ServiceError`` and the
    cycle aborts before any decision; the next cycle tries again. A dead
    cycle's decisions are never re-sent.
    """
    store, broker = cycle.store, cycle.services.broker
    dead = store.running_cycles(except_id=cycle.cycle_id)
    unconfirmed = store.unconfirmed_trades()
    found = gather({t["client_order_id"]: (lambda cid=t["client_order_id"]: broker.get_order_by_client_id(cid)) for t in unconfirmed})
    now = cycle.services.clock.now()
    for trade in unconfirmed:
        client_order_id = trade["client_order_id"]
        result = found[client_order_id]
        if isinstance(result, Exception):
            raise result if isinstance(result, ServiceError) else Unreconcilable(f"looking up order {client_order_id} failed: {result!r}")
        if result is None:
            if not _never_arrived(trade, now):
                cycle.note(f"{trade['symbol']}: order {client_order_id} not at the broker yet; counted as bought until it is")
                continue
            result = OrderResult(client_order_id, None, "not_sent", message="the broker never received it")
        store.update_trade(client_order_id, result, now)
        cycle.log("order.reconciled", client_order_id=client_order_id, status=result.status)
    for cycle_id in dead:
        store.mark_cycle_aborted(cycle_id, f"process died; found by cycle {cycle.cycle_id}", cycle.started_at)
        cycle.note(f"cycle {cycle_id} had died; marked aborted", dead_cycle_id=cycle_id)


def order_lookups(broker, trades: list[dict]) -> dict:
    """One task per trade: the broker's current view of that order."""
    return {
        f"order:{t['client_order_id']}": (
            (lambda oid=t["broker_order_id"]: broker.get_order(oid))
            if t["broker_order_id"]
            else (lambda cid=t["client_order_id"]: broker.get_order_by_client_id(cid))
        )
        for t in trades
    }


def lookups_beyond_list(broker, trades: list[dict], listed) -> dict:
    """The broker's view of each trade, from ``listed`` (its open orders, fetched in
    the same round trip as the account) where the order is there, else one lookup
    each, all at once: only orders that stopped being open since cost a call.
    ``listed`` an exception (the list failed): one lookup per trade, as before."""
    open_ids = {} if isinstance(listed, Exception) else {o.broker_order_id: o for o in listed}
    open_cids = {} if isinstance(listed, Exception) else {o.client_order_id: o for o in listed}
    found, missing = {}, []
    for trade in trades:
        hit = open_ids.get(trade["broker_order_id"]) if trade["broker_order_id"] else open_cids.get(trade["client_order_id"])
        if hit is not None:
            found[f"order:{trade['client_order_id']}"] = hit
        else:
            missing.append(trade)
    return found | gather(order_lookups(broker, missing))


def apply_order_updates(cycle: Cycle, trades: list[dict], results: dict) -> None:
    """Write what the broker said of each order; a failed lookup is noted and retried later."""
    now = cycle.services.clock.now()
    for trade in trades:
        result = results[f"order:{trade['client_order_id']}"]
        if getattr(result, "status_code", None) == 404 and trade["cycle_id"] != cycle.cycle_id:
            # The broker no longer knows an order it once accepted (a reset paper account,
            # another broker on this database): it will never fill, so it stops counting.
            gone = OrderResult(trade["client_order_id"], None, "missing", message=f"the broker no longer has this order ({result})")
            cycle.store.update_trade(trade["client_order_id"], gone, now)
        elif isinstance(result, Exception):
            cycle.note(f"{trade['symbol']}: order {trade['client_order_id']} not refreshed ({result})")
        elif result is None and _never_arrived(trade, now):
            missing = OrderResult(trade["client_order_id"], None, "not_sent", message="the broker has no such order")
            cycle.store.update_trade(trade["client_order_id"], missing, now)
        elif result is not None and (result.status, _text(result.filled_qty)) != (trade["status"], trade["filled_qty"]):
            cycle.store.update_trade(trade["client_order_id"], result, now)


def _never_arrived(trade: dict, now: datetime) -> bool:
    """The broker still has no such order, long enough after it was sent to be sure."""
    sent = trade.get("created_at")
    return sent is None or now - parse_iso(sent) >= ARRIVAL_GRACE


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)
