"""Sending one order: the last gate before it leaves, the trade row written
first, the answer recorded, and at most one resend of an order the broker
confirms it never got.

Used by the cycle's execute step and by the kill switch's clean-up
(``winddown.py``), so that every order, whoever decides it, goes out the same
way: recorded before it is sent, sent at most once.
"""

from __future__ import annotations

from datetime import datetime

from tradecycle.cycle.state import Cycle, Outcome, trade_row
from tradecycle.infra.errors import OrderNotReceived, OrderRejected, OrderUncertain, ServiceError
from tradecycle.models import OrderResult, is_crypto
from tradecycle.infra.times import parse_iso


def client_order_id(cycle_id: str, symbol: str, prefix: str = "tc") -> str:
    """Deterministic per cycle and symbol (<= 48 chars), so a retry cannot duplicate."""
    compact = cycle_id.replace("-", "").replace(":", "")
    return f"{prefix}-{compact}-{symbol.replace('/', '')}"[:48]


def gate(cycle: Cycle, item: Outcome, *, closing: bool = False) -> tuple[str, str] | None:
    """Why no order may leave now, as (outcome, detail); None when it may.

    The cycle's time budget; the kill switch, re-read from the database; the
    age of the price the order was sized at; for a stock, the market clock.
    A ``closing`` order (the kill switch's own ``--flatten`` sells) skips the
    kill switch and the price age: it sells a whole quantity whatever the price.
    """
    if cycle.services.deadline.expired:
        return "time_budget", "cycle.max_cycle_seconds passed: no new orders"
    if not closing and (switch := cycle.store.kill_switch()).active:
        return "kill_switch", switch.reason or "kill switch turned on"
    now = cycle.services.clock.now()
    age = item.quote.age_seconds(now)
    if not closing and age > cycle.settings.max_quote_age_seconds:
        return "stale_quote", f"price is {age:.0f}s old by now (limit {cycle.settings.max_quote_age_seconds:.0f}s)"
    if not is_crypto(item.symbol) and not market_still_open(cycle, now):
        return "market_closed", "the market closed before this order could be sent"
    return None


def market_still_open(cycle: Cycle, now: datetime) -> bool:
    """The clock again, just before a stock order: the close the broker announced
    at fetch time, or, when it named none, the broker's clock asked once more.
    A broker that cannot answer counts as closed (no order goes out unsure)."""
    clock = cycle.market.clock
    try:
        if clock.next_close:
            return clock.is_open and now < parse_iso(clock.next_close)
    except ValueError:
        pass  # a close time we cannot read: ask again
    try:
        return cycle.services.broker.get_clock().is_open
    except ServiceError:
        return False


def send(cycle: Cycle, item: Outcome, *, closing: bool = False) -> bool:
    """Write the trade row (``submitting``), send the order, record the answer.

    Sets ``item.outcome`` and ``item.detail``; returns True when the broker
    accepted the order. The outcome of an accepted order is ``ordered``, or the
    exit's own word for an order the tool decided (``stop_loss``, ``flatten``, ...).
    If the trade row cannot be written, DatabaseUnusable propagates and the
    order is never sent. A broker that confirms it never got the order is sent
    it once more, with the same client order id, only if ``gate`` still allows.
    """
    intent, store, now = item.verdict.intent, cycle.store, cycle.services.clock.now
    store.insert_trade(trade_row(cycle, intent, "submitting"))
    cycle.submitted += 1

    def mark(status: str, notes: str) -> None:
        store.update_trade(intent.client_order_id, OrderResult(intent.client_order_id, None, status), now(), notes=notes)

    lost: OrderNotReceived | None = None  # the first attempt, which may still land
    for attempt in (1, 2):
        try:
            result = cycle.services.broker.submit_order(intent)
            break
        except OrderNotReceived as exc:
            blocked = gate(cycle, item, closing=closing) if attempt == 1 else ("error", f"order lost twice: {exc}")
            if blocked:
                # The lost attempt may still land: leave it for the next cycle to look up.
                mark("unknown", f"{exc}; not sent again: {blocked[1]}")
                item.outcome, item.detail = blocked
                return False
            lost = exc
            cycle.log("order.resend", "warning", symbol=intent.symbol, client_order_id=intent.client_order_id, reason=str(exc))
        except ServiceError as exc:
            if lost is not None:
                # Whatever the resend met (a refusal, a 429, a closed port), the first one may land.
                mark("unknown", f"{lost}; resend failed: {exc}")
                cycle.note(f"{intent.symbol}: order outcome unknown ({exc}); the next cycle looks it up first", symbol=intent.symbol)
                item.outcome, item.detail = "error", f"order outcome unknown: resend failed: {exc}"
                return False
            item.outcome, item.detail = _failed(cycle, intent, exc, mark)
            return False
    store.update_trade(intent.client_order_id, result, now())
    cycle.orders_sent += 1
    exit_word = item.decision.exit if item.decision else None
    cycle.log("order.sent", symbol=intent.symbol, side=intent.side, client_order_id=intent.client_order_id,
              order_id=result.broker_order_id, status=result.status, exit=exit_word)
    item.outcome = exit_word or "ordered"
    item.detail = f"{intent.side} sent: {result.status}" + (f" ({item.detail})" if exit_word and item.detail else "")
    if item.verdict is not None and item.verdict.sizing:  # how it was sized stays in the audit trail
        item.detail += f" ({item.verdict.sizing})"
    return True


def _failed(cycle: Cycle, intent, exc: ServiceError, mark) -> tuple[str, str]:
    """Record a first attempt that did not become an order; (outcome, detail)."""
    if isinstance(exc, OrderRejected):
        mark("rejected", exc.message)
        cycle.log("order.rejected", "warning", symbol=intent.symbol, client_order_id=intent.client_order_id, message=exc.message)
        return "rejected", exc.message
    if isinstance(exc, OrderUncertain):
        mark("unknown", str(exc))
        cycle.note(f"{intent.symbol}: order outcome unknown ({exc}); the next cycle looks it up first", symbol=intent.symbol)
        return "error", f"order outcome unknown: {exc}"
    mark("not_sent", str(exc))
    cycle.note(f"{intent.symbol}: order not sent ({exc})", symbol=intent.symbol)
    return "error", f"order not sent: {exc}"
