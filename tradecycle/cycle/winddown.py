"""What a cycle does while the kill switch is on: the clean-up a person who
said stop expects, done once, by the first cycles after the switch.

- Always: every open **buy** order is cancelled (``DELETE /v2/orders/{id}``),
  so that nothing is bought after a person (or the tool) said stop.
- With ``tradecycle killswitch on --flatten``: every open order is cancelled
  and every long position is sold at market (outcome ``flatten``), through
  the same order path as any order (trade row first, at most once). Stocks
  are sold while the market is open; until then the clean-up stays due.
- The sell stops held at the broker (``stops.py``) stay while the switch is
  on (they protect); ``--flatten`` cancels each, sees it canceled, and sells.

The clean-up is done when every cancel went through and, with ``--flatten``,
no long position is left; later cycles are skipped as before. Nothing is
cancelled or sold in a dry run: the cycle notes what it would do. No new
order of any other kind is ever sent while the switch is on.
"""

from __future__ import annotations

from decimal import Decimal

from tradecycle.cycle import orders
from tradecycle.cycle import stops
from tradecycle.rules import risk
from tradecycle.cycle.state import Cycle, CycleAborted, Outcome
from tradecycle.infra.errors import OrderRejected
from tradecycle.models import Decision, FetchResult, OrderIntent, Quote, is_crypto
from tradecycle.infra.parallel import gather

FLATTEN_PREFIX = "tk"  # client order ids of the kill switch's own sells: never cancelled by it
FLATTEN_MODEL = "kill-switch"


def clean_up(cycle: Cycle) -> None:
    """Cancel what may still fill and, with ``--flatten``, close every position.

    An unreachable broker aborts the cycle (an outage: the next one retries).
    A cancel or sell that fails is noted and leaves the clean-up due.
    """
    switch, broker, now = cycle.switch, cycle.services.broker, cycle.services.clock.now()
    found = gather({"account": broker.get_account, "clock": broker.get_clock, "positions": broker.get_positions,
                    "orders": broker.open_orders})
    for key, value in found.items():
        if isinstance(value, Exception):
            raise CycleAborted(f"broker unreachable ({key}): {value}")
    cycle.market = FetchResult(found["account"], found["clock"], {p.symbol: p for p in found["positions"]}, fetched_at=now)
    if cycle.settings.dry_run:
        _note_dry_run(cycle, found["orders"])
        return
    ours = {t["client_order_id"] for t in cycle.store.open_stops()}  # released below, symbol by symbol
    done = _cancel(cycle, [o for o in found["orders"] if not o.client_order_id.startswith(f"{FLATTEN_PREFIX}-")
                           and o.client_order_id not in ours and (switch.flatten or o.side == "buy")])
    if switch.flatten:
        done = _release_stops(cycle) and done
        done = _flatten(cycle, found["orders"]) and done
    if unsure := [t for t in cycle.store.unconfirmed_trades() if switch.flatten or t["side"] == "buy"]:
        # An order whose fate is unknown may still land: it cannot be cancelled yet, so the clean-up stays due.
        done = False
        cycle.note(f"{len(unsure)} order(s) of unknown fate may still land; the clean-up goes on next cycle")
    if done:
        cycle.store.finish_kill_switch_cleanup(switch, cycle.services.clock.now())
        text = "kill switch clean-up done" + (": no position left" if switch.flatten else ": no open buy order left")
        cycle.notes.append(text)
        cycle.log("killswitch.cleaned_up", message=text)


def _cancel(cycle: Cycle, open_orders) -> bool:
    """Cancel each order, all at once. True when none is left open."""
    broker = cycle.services.broker
    answers = gather({o.broker_order_id: (lambda oid=o.broker_order_id: broker.cancel_order(oid)) for o in open_orders})
    done = True
    for order in open_orders:
        answer = answers[order.broker_order_id]
        what = f"open {order.side} {order.symbol} order {order.client_order_id}"
        if isinstance(answer, OrderRejected) and answer.status_code == 422:
            cycle.note(f"{what} could not be cancelled any more ({answer.message}); it is final")
        elif isinstance(answer, Exception):
            done = False
            cycle.note(f"{what} not cancelled ({answer}); tried again next cycle")
        else:
            cycle.note(f"{what} cancelled by the kill switch")
            cycle.log("order.canceled", symbol=order.symbol, side=order.side, client_order_id=order.client_order_id)
    return done


def _release_stops(cycle: Cycle) -> bool:
    """With ``--flatten``: cancel our stops held at the broker, and see them canceled,
    for every position that can be sold now (crypto; stocks while the market is
    open: until then the stop keeps protecting it). A stop that filled first sold
    the position already. True when none is left standing."""
    done = True
    for symbol in sorted({t["symbol"] for t in cycle.store.open_stops()}):
        if not is_crypto(symbol) and not cycle.market.clock.is_open:
            done = False
            continue
        held = stops.release(cycle, symbol)
        if held and held[0] == "stop_loss":
            cycle.market.positions.pop(symbol, None)  # the broker's stop sold it
        elif held:
            done = False
            cycle.note(f"{symbol}: {held[1]}")
        else:
            cycle.note(f"{symbol}: its stop at the broker canceled by the kill switch (--flatten)")
    return done


def _flatten(cycle: Cycle, open_orders) -> bool:
    """Sell every long position not already covered by one of our flatten sells.
    True when there was no long position left to close.

    A symbol with any other sell of ours not yet final (one being cancelled
    just now, or one whose fate is unknown) is left for the next cycle: it may
    still fill, and a second full sell could then sell more than is held."""
    covered: dict[str, Decimal] = {}
    listed = set()
    for order in open_orders:
        if order.side == "sell" and order.client_order_id.startswith(f"{FLATTEN_PREFIX}-"):
            covered[order.symbol] = covered.get(order.symbol, Decimal(0)) + (order.qty or 0) - (order.filled_qty or 0)
            listed.add(order.client_order_id)
    waiting = {t["symbol"]: t["client_order_id"] for t in cycle.store.pending_trades()
               if t["side"] == "sell" and t["client_order_id"] not in listed}
    longs = [p for p in cycle.market.positions.values() if p.qty > 0]
    for p in cycle.market.positions.values():
        if p.qty < 0:
            cycle.note(f"{p.symbol}: short position of {-p.qty} left alone (the tool never opens shorts): close it by hand")
    for position in longs:
        qty = position.qty - covered.get(position.symbol, Decimal(0))
        if qty <= 0:
            continue  # the sell sent by an earlier cycle is still open
        if position.symbol in waiting:
            cycle.note(f"{position.symbol}: sell {waiting[position.symbol]} is not final yet; flattened next cycle")
            continue
        item = _closing_sell(cycle, position, qty)
        blocked = orders.gate(cycle, item, closing=True)
        if blocked:
            item.outcome, item.detail = blocked
        else:
            orders.send(cycle, item, closing=True)
        cycle.settle(item)
    return not longs


def _closing_sell(cycle: Cycle, position, qty: Decimal) -> Outcome:
    quote = Quote(position.symbol, position.current_price, cycle.market.fetched_at, "position")
    intent = OrderIntent(position.symbol, "sell", orders.client_order_id(cycle.cycle_id, position.symbol, FLATTEN_PREFIX),
                         position.current_price, qty=qty)
    reason = f"kill switch on with --flatten ({cycle.switch.reason or 'no reason given'}): closing the position"
    decision = Decision(position.symbol, "sell", 1.0, reason, FLATTEN_MODEL, exit="flatten")
    detail = f"sell {qty} at ~{position.current_price}"
    return Outcome(position.symbol, "flatten", decision, quote, detail, risk.Verdict(True, "approved", detail, intent))


def _note_dry_run(cycle: Cycle, open_orders) -> None:
    flatten = cycle.switch.flatten
    cancels = [o for o in open_orders if flatten or o.side == "buy"]
    sells = [p.symbol for p in cycle.market.positions.values() if flatten and p.qty > 0]
    stocks_closed = not cycle.market.clock.is_open and any(not is_crypto(s) for s in sells)
    cycle.note(f"dry run: the kill switch would cancel {len(cancels)} open order(s)"
               + (f" and sell {', '.join(sells) or 'no position'}" if flatten else "")
               + (" (stocks once the market opens)" if stocks_closed else ""))


__all__ = ["FLATTEN_PREFIX", "clean_up"]
