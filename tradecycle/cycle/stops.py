"""Sell stops held at the broker (``risk.broker_held_stops``): the cycle's
side of them. ``rules/stops.py`` says which stop should stand; this module
places it, raises it, keeps its quantity, lets it go before another sell, and
records the ones that filled while no cycle ran.

- ``maintain`` (the sync step, once positions are known): for each long
  position, place a stop (``POST``), raise or resize it (``PATCH``: a new
  order, the old one ``replaced``), or cancel one that protects nothing. In
  steady state it sends nothing: the stops came back with the fetch's
  open-orders list, and nothing about them changed. Stock stops are placed
  while the market is open; a ``day`` stop expires at the close and the next
  session gets a new one.
- ``release`` (before any other sell of the symbol): cancel the stop and see
  it canceled (Alpaca refuses to sell shares held for another order).
- ``record_fills`` (after every refresh of our orders): a stop that filled
  is a protective exit done by the broker: an ``ai_decisions`` row, outcome
  ``stop_loss``, model ``broker-stop``, so the cooldown and alerts count it.

Every stop is an order like any other: a trades row (``order_type``,
``stop_price``) written before it leaves, a client order id, at most once.
A stop the broker refuses leaves the position protected by the cycle alone
(its own exit check runs every cycle whatever happens here); ``status``
names such positions. Nothing here raises for a broker problem: it is noted.
"""

from __future__ import annotations

import time
from decimal import Decimal

from tradecycle.cycle.orders import client_order_id
from tradecycle.cycle.state import Cycle, Outcome, record_outcome, trade_row
from tradecycle.infra.errors import OrderRejected, OrderUncertain, ServiceError
from tradecycle.models import FINAL_TRADE_STATUSES, STOP_ORDER_TYPES, Decision, OrderIntent, OrderResult, Position, Quote, is_crypto
from tradecycle.rules.stops import StopSpec, next_step, wanted_stop

STOP_PREFIX = "ts"  # client order ids of the broker-held stops (placed or replaced)
BROKER_STOP_MODEL = "broker-stop"  # ai_decisions.model of a stop the broker filled
CONFIRM_ATTEMPTS = 4  # reads of a canceled stop until it shows canceled
CONFIRM_PAUSE_SECONDS = 0.25


def is_stop(trade: dict) -> bool:
    return trade.get("order_type") in STOP_ORDER_TYPES


# -- fills ------------------------------------------------------------------------


def record_fills(cycle: Cycle, before: list[dict]) -> None:
    """Record, as a protective exit, every stop of ``before`` (trades rows as
    they were) that the refresh just found filled."""
    for trade in before:
        if not is_stop(trade) or trade["status"] in FINAL_TRADE_STATUSES:
            continue
        row = cycle.store.trade(trade["client_order_id"])
        if row and row["status"] in FINAL_TRADE_STATUSES and Decimal(row["filled_qty"] or 0) > 0:
            _record_fill(cycle, row)


def _record_fill(cycle: Cycle, row: dict) -> None:
    qty, price = row["filled_qty"], row["filled_avg_price"] or row["stop_price"]
    when = row["executed_at"] or "an unknown time"
    reason = (f"stop-loss held at the broker: sold {qty} at {price} (stop {row['stop_price']}) at {when}, "
              "while no cycle ran")
    quote = Quote(row["symbol"], Decimal(price), cycle.services.clock.now(), "broker")
    decision = Decision(row["symbol"], "sell", 1.0, reason, BROKER_STOP_MODEL, exit="stop_loss")
    record_outcome(cycle, Outcome(row["symbol"], "stop_loss", decision, quote, f"stop order {row['client_order_id']} filled"))
    cycle.notes.append(f"{row['symbol']}: {reason}")
    cycle.log("stop.filled", "warning", symbol=row["symbol"], client_order_id=row["client_order_id"], qty=qty, price=price)


# -- before another sell ------------------------------------------------------------


def release(cycle: Cycle, symbol: str) -> tuple[str, str] | None:
    """Cancel every stop of ours on ``symbol`` and see it canceled, before another
    sell of it. None when no stop holds the quantity any more; else (outcome,
    detail) of why the sell must not go now: the stop filled first
    (``stop_loss``), or it could not be seen canceled (``error``: the sell
    waits for the next cycle)."""
    for trade in cycle.store.open_stops(symbol):
        if not trade["broker_order_id"]:
            return "error", f"its stop order {trade['client_order_id']} is not confirmed yet; the sell waits for the next cycle"
        order = _cancel_and_confirm(cycle, trade)
        if isinstance(order, str):
            return "error", f"its stop at the broker could not be canceled ({order}); the sell waits for the next cycle"
        cycle.store.update_trade(trade["client_order_id"], order, cycle.services.clock.now())
        if order.status not in FINAL_TRADE_STATUSES:
            return "error", f"its stop at the broker is still {order.status}; the sell waits for the next cycle"
        if order.filled_qty:
            _record_fill(cycle, cycle.store.trade(trade["client_order_id"]))
            return "stop_loss", f"the stop held at the broker filled first ({order.filled_qty} at {order.filled_avg_price})"
        cycle.log("stop.canceled", symbol=symbol, client_order_id=trade["client_order_id"], reason="another sell")
    return None


def _cancel_and_confirm(cycle: Cycle, trade: dict) -> OrderResult | str:
    """DELETE the stop, then read it until it is final (a few times, briefly).
    The order as last read, or why it could not be."""
    broker, order_id = cycle.services.broker, trade["broker_order_id"]
    try:
        broker.cancel_order(order_id)
    except OrderRejected as exc:
        if exc.status_code != 422:  # 422: final already (filled, canceled): read which
            return exc.message
    except ServiceError as exc:
        return str(exc)
    order: OrderResult | str = "no answer"
    for attempt in range(CONFIRM_ATTEMPTS):
        if attempt and cycle.services.deadline.remaining() > CONFIRM_PAUSE_SECONDS:
            time.sleep(CONFIRM_PAUSE_SECONDS)
        try:
            order = broker.get_order(order_id)
        except ServiceError as exc:
            order = str(exc)
            continue
        if order.status in FINAL_TRADE_STATUSES:
            break
    return order


# -- the sync step ---------------------------------------------------------------------


def maintain(cycle: Cycle, positions: list[Position]) -> None:
    """Make the stops at the broker match the positions (see the module's docstring)."""
    settings, store = cycle.settings, cycle.store
    if not settings.broker_held_stops or settings.dry_run or cycle.status != "running":
        return
    if cycle.services.deadline.expired or store.kill_switch().active:
        return
    held = {p.symbol: p for p in positions if p.qty > 0}
    standing: dict[str, list[dict]] = {}
    for trade in store.open_stops():
        standing.setdefault(trade["symbol"], []).append(trade)
    selling = {t["symbol"] for t in store.pending_trades() if t["side"] == "sell" and not is_stop(t)}
    marks = store.position_marks()
    for symbol in sorted(set(held) | set(standing)):
        stops = standing.get(symbol, [])
        if symbol in selling or any(not t["broker_order_id"] for t in stops):
            continue  # a sell is on its way, or a stop's fate is unknown: next cycle
        if not is_crypto(symbol) and not cycle.market.clock.is_open:
            continue  # stock stops are placed and changed in the session
        for extra in stops[:-1]:
            _cancel(cycle, extra, "a second stop for the same position")
        current = stops[-1] if stops else None
        position = held.get(symbol)
        wanted = _wanted(cycle, position, marks) if position else None
        step, spec = next_step(wanted, _spec(current) if current else None, _price(cycle, position))
        if step == "place" and spec and not _refused_before(cycle, spec):
            _send(cycle, spec, None)
        elif step == "replace" and spec and current:
            _send(cycle, spec, current)
        elif step == "cancel" and current:
            _cancel(cycle, current, "it protects no position" if position is None else "its order type changes")


def _wanted(cycle: Cycle, position: Position, marks: dict) -> StopSpec | None:
    entry = position.avg_entry_price
    _, high = marks.get(position.symbol, (entry, None))
    return wanted_stop(position.symbol, position.qty, entry, high, cycle.settings.exits)


def _price(cycle: Cycle, position: Position | None) -> Decimal | None:
    if position is None:
        return None
    quote = cycle.market.quotes.get(position.symbol)
    return quote.price if quote else position.current_price


def _spec(trade: dict) -> StopSpec:
    filled = Decimal(trade["filled_qty"] or 0)
    return StopSpec(
        trade["symbol"], Decimal(trade["quantity"]) - filled, Decimal(trade["stop_price"]), trade["order_type"],
        trade["time_in_force"] or "gtc", Decimal(trade["limit_price"]) if trade["limit_price"] else None,
    )


def _refused_before(cycle: Cycle, spec: StopSpec) -> bool:
    """The broker refused this very stop (same quantity) today: not asked again until
    the quantity changes or a new day starts (``status`` shows the refusal)."""
    last = cycle.store.last_stop(spec.symbol)
    today = cycle.started_at.strftime("%Y-%m-%d")
    return bool(last and last["status"] == "rejected" and Decimal(last["quantity"]) == spec.qty
                and (last["created_at"] or "").startswith(today))


def _send(cycle: Cycle, spec: StopSpec, replacing: dict | None) -> None:
    """Place (``replacing`` None) or replace a stop: the trades row first, one attempt."""
    intent = OrderIntent(
        spec.symbol, "sell", client_order_id(cycle.cycle_id, spec.symbol, STOP_PREFIX), spec.stop_price, qty=spec.qty,
        order_type=spec.order_type, stop_price=spec.stop_price, limit_price=spec.limit_price, time_in_force=spec.time_in_force,
    )
    store, broker, now = cycle.store, cycle.services.broker, cycle.services.clock.now
    store.insert_trade(trade_row(cycle, intent, "submitting"))

    def mark(status: str, notes: str) -> None:
        store.update_trade(intent.client_order_id, OrderResult(intent.client_order_id, None, status), now(), notes=notes)

    what = f"stop at {spec.stop_price} for {spec.qty}"
    try:
        result = broker.replace_order(replacing["broker_order_id"], intent) if replacing else broker.submit_order(intent)
    except OrderRejected as exc:
        mark("rejected", exc.message)
        cycle.note(f"{spec.symbol}: the broker refused a {what} ({exc.message}); the cycle keeps protecting it itself",
                   symbol=spec.symbol)
        return
    except OrderUncertain as exc:
        mark("unknown", str(exc))
        cycle.note(f"{spec.symbol}: {what} may or may not stand ({exc}); the next cycle looks it up", symbol=spec.symbol)
        return
    except ServiceError as exc:
        mark("not_sent", str(exc))
        cycle.note(f"{spec.symbol}: {what} not sent ({exc}); tried again next cycle", symbol=spec.symbol)
        return
    store.update_trade(intent.client_order_id, result, now())
    cycle.orders_sent += 1
    if replacing:
        old = replacing["client_order_id"]
        store.update_trade(old, OrderResult(old, replacing["broker_order_id"], "replaced"), now(),
                           notes=f"replaced by {intent.client_order_id}")
    cycle.log("stop.replaced" if replacing else "stop.placed", symbol=spec.symbol, client_order_id=intent.client_order_id,
              stop_price=str(spec.stop_price), qty=str(spec.qty), time_in_force=spec.time_in_force, status=result.status)


def _cancel(cycle: Cycle, trade: dict, why: str) -> None:
    """Cancel a stop that protects nothing; the next refresh reads its end."""
    try:
        cycle.services.broker.cancel_order(trade["broker_order_id"])
    except ServiceError as exc:
        cycle.note(f"{trade['symbol']}: stop {trade['client_order_id']} not canceled ({exc}); tried again next cycle")
        return
    cycle.log("stop.canceled", symbol=trade["symbol"], client_order_id=trade["client_order_id"], reason=why)
