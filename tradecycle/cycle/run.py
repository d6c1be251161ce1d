"""One trading cycle: the seven steps of the contract, services injected.

``run_cycle`` reads like the contract's table of contents; each step is a
function below it whose docstring says what happens when it fails, and the
details live in modules of their own: ``reconcile`` (what the broker made of
our orders), ``market`` (quotes, headlines, account checks), ``context``
(daily bars, indicators), ``analysis`` and ``protect`` (who is asked what;
the protective exits), ``portfolio`` and ``risk`` (sizing and limits),
``orders`` (the gate and the send), ``winddown`` (the kill switch's clean-up).
The cycle never imports requests or sqlite: it talks to ``ports`` and ``Store``.
"""

from __future__ import annotations

import secrets
import traceback
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from tradecycle.cycle import adopt
from tradecycle.cycle import analysis
from tradecycle.cycle import context
from tradecycle.cycle import market
from tradecycle.cycle import orders
from tradecycle.cycle import pauses
from tradecycle.cycle import protect
from tradecycle.cycle import reconcile
from tradecycle.cycle import stops
from tradecycle.rules import risk
from tradecycle.cycle import winddown
from tradecycle.cycle.state import Cycle, CycleAborted, CycleReport, CycleSettings, Outcome, trade_row
from tradecycle.infra.errors import BadResponse, ServiceError, TradecycleError
from tradecycle.models import Decision, FetchResult
from tradecycle.cycle.orders import client_order_id
from tradecycle.infra.parallel import gather
from tradecycle.cycle.portfolio import current_portfolio, order_minimums
from tradecycle.ports import EventLog, Services
from tradecycle.cycle.reconcile import reconcile_unconfirmed_orders

if TYPE_CHECKING:
    from tradecycle.store import Store

ABORTS_THAT_TRIP_KILL_SWITCH = 3


def run_cycle(services: Services, store: "Store", settings: CycleSettings, log: EventLog) -> CycleReport:
    """One cycle. Returns a report; raises only ``DatabaseUnusable`` when even
    the cycle's own row cannot be written (nothing is traded then)."""
    if not services.lock.acquire():
        log("cycle.locked", "warning", message="another cycle holds the run lock")
        return CycleReport(None, "locked", settings.dry_run)
    try:
        cycle = initialize(services, store, settings, log)  # 1
        if cycle.status == "running" or cycle.switch.cleanup_due:
            try:
                if cycle.status == "running":
                    fetch_market_data(cycle)  # 2
                    decisions = analyse(cycle)  # 3
                    approved = check_risk(cycle, decisions)  # 4
                    execute(cycle, approved)  # 5
                else:  # the kill switch is on: cancel what may still fill; with --flatten, sell everything
                    reconcile_unconfirmed_orders(cycle)
                    winddown.clean_up(cycle)
                sync_state(cycle)  # 6
            except TradecycleError as exc:
                cycle.status, cycle.error, cycle.critical = "aborted", str(exc), exc.critical
            except Exception as exc:  # a bug: record it, never trade past it
                cycle.status, cycle.error, cycle.exception = "aborted", f"unexpected error: {exc!r}", exc
                cycle.critical = True
                log("cycle.crashed", "error", traceback=traceback.format_exc(limit=8))
        return complete(cycle)  # 7
    finally:
        services.lock.release()


# -- 1. initialize ------------------------------------------------------------


def initialize(services: Services, store: "Store", settings: CycleSettings, log: EventLog) -> Cycle:
    """New cycle id and ``cycles`` row; kill switch; unconfirmed orders resolved.

    Fails with DatabaseUnusable (the caller exits 1, nothing traded) when the
    row cannot be written. A kill switch that is on makes the cycle
    ``skipped`` (its clean-up, ``winddown.py``, may still be due). A broker that cannot tell what became of an earlier order
    aborts the cycle before any decision.
    """
    now = services.clock.now()
    cycle_id = f"{now:%Y-%m-%dT%H:%M}Z-{secrets.token_hex(2)}"
    log.bind(cycle_id=cycle_id)
    store.start_cycle(cycle_id, now, settings.dry_run)
    cycle = Cycle(services, store, settings, log, cycle_id, now)
    log("cycle.started", dry_run=settings.dry_run, symbols=len(settings.symbols))
    cycle.switch = switch = store.kill_switch(now)
    if switch.active:
        cycle.status, cycle.error = "skipped", f"kill switch is on ({switch.reason or 'no reason given'})"
        return cycle
    try:
        reconcile_unconfirmed_orders(cycle)
    except ServiceError as exc:
        cycle.status, cycle.error = "aborted", f"cannot tell what became of an earlier order: {exc}"
    return cycle


# -- 2. fetch -----------------------------------------------------------------


def fetch_market_data(cycle: Cycle) -> None:
    """Account, clock, positions, quotes, due daily bars and due headlines, all at once.

    The broker failing aborts the cycle (nothing can be sized safely). A quote
    source failing falls back, per symbol, to the last stored price if it is
    younger than ``max_quote_age_seconds``. News failing leaves no news;
    daily bars failing leave the bars already stored (``context.py``).
    Orders still open from earlier cycles are refreshed by the broker's list
    of open orders, fetched in the same round trip (an order no longer in it
    is looked up once more): risk counts what they may still buy, and the
    stops held at the broker cost no call of their own (``stops.py``; one that
    filled while no cycle ran is recorded as a protective exit). The account's
    recent orders are listed in the same round trip, and orders of ours the
    database lost are adopted (``adopt.py``; a list that fails means no buy
    this cycle). A fill seen in this fetch has the positions read again
    (``reconcile.count_every_fill``). Positions that contradict themselves
    mean no buy this cycle (``market.check_positions``). After the fetch, the
    daily loss limit and the account's state may trip the kill switch.
    """
    services, settings, store = cycle.services, cycle.settings, cycle.store
    now = services.clock.now()
    news = services.news
    due_news = [s for s in settings.symbols if news and news.covers(s) and market.news_due(store, s, now, settings)]
    open_orders = store.open_orders()
    bars = context.DailyBarRefresh(cycle)  # due once a day per symbol, fetched in this same round trip
    tasks = adopt.listing(cycle) | bars.tasks() | {
        "open_orders": services.broker.open_orders,
        "account": services.broker.get_account,
        "clock": services.broker.get_clock,
        "positions": services.broker.get_positions,
        "stocks": lambda: services.stock_quotes.get_quotes(settings.stocks) if settings.stocks else {},
        "crypto": lambda: services.crypto_quotes.get_quotes(settings.crypto) if settings.crypto else {},
        "minimums": lambda: services.broker.load_order_minimums(settings.crypto),
    }
    for symbol in due_news:
        tasks[f"news:{symbol}"] = lambda s=symbol: services.news.get_news(s, now - market.NEWS_LOOKBACK)
    results = gather(tasks | bars.preload())
    for key in ("account", "clock", "positions"):
        failure = results[key]
        if isinstance(failure, BadResponse) and failure.status_code in (401, 403):
            raise CycleAborted(f"the broker refused our credentials ({key}): {failure}; check APCA_API_KEY_ID and APCA_API_SECRET_KEY")
        if isinstance(failure, Exception):
            raise CycleAborted(f"broker unreachable ({key}): {failure}")
    fetched = FetchResult(
        account=results["account"],
        clock=results["clock"],
        positions={p.symbol: p for p in results["positions"]},
        fetched_at=services.clock.now(),
    )
    cycle.market = fetched
    results |= reconcile.lookups_beyond_list(services.broker, open_orders, results["open_orders"])
    filled = reconcile.apply_order_updates(cycle, open_orders, results)
    cycle.stops_at_fetch = [t for t in open_orders if stops.is_stop(t)]
    stops.record_fills(cycle, open_orders)
    market.collect_quotes(cycle, {**market.per_symbol(results["stocks"], settings.stocks), **market.per_symbol(results["crypto"], settings.crypto)})
    filled += adopt.adopt_lost_orders(cycle, results[adopt.LISTING])  # ours at the broker, lost by the database
    # Open, and any whose fate is still unknown; a stop held at the broker is no pending sale (stops.release).
    still_open = [t for t in store.pending_trades() if not stops.is_stop(t)]
    reconcile.count_every_fill(cycle, filled, still_open)  # a fill the positions reply may predate: read them again
    adopt.check_new_database(cycle, results[adopt.LISTING])
    market.check_positions(cycle)  # positions that contradict themselves: no buy this cycle
    bars.record(results)
    for symbol in due_news:
        items = results[f"news:{symbol}"]
        if isinstance(items, Exception):
            cycle.note(f"news for {symbol} unavailable ({items}); analysing without fresh headlines", symbol=symbol)
        else:
            store.record_news(symbol, items, now)
    for symbol in settings.symbols:
        fetched.news[symbol] = tuple(store.recent_news(symbol, now - market.NEWS_LOOKBACK)) if services.news else ()
    cycle.log("market.fetched", quotes=len(fetched.quotes), failures=len(fetched.failures), news_calls=len(due_news))
    market.check_account_safety(cycle)


# -- 3. analyse ----------------------------------------------------------------


def analyse(cycle: Cycle) -> dict[str, Decision]:
    """One decision per symbol that can trade now: the universe, and every held
    symbol outside it (sell or hold only), so that removing a symbol from the
    config winds it down.

    Symbols that cannot trade now are settled without an AI call
    (``analysis.prepare``). A held position whose price hit a protective exit
    is sold whatever the analyst would say, and the analyst is not asked
    (``protect``). A symbol whose buy must wait after protective exits (the
    re-entry cooldown, the stop-loss guard) is settled without an AI call when
    nothing is held, and may only be sold or held when something is
    (``pauses``). A standing decision whose inputs did not change stands
    (``analysis.settle_if_unchanged``). The rest go to the analyst in one
    call; a failing analyst holds them all (``analysis.ask``).
    """
    now = cycle.services.clock.now()
    guard, exits, asked = protect.Guard(cycle), {}, []
    cycle.pauses = pauses.BuyPauses(cycle, now)
    for symbol in analysis.analysed_symbols(cycle):
        item = analysis.prepare(cycle, symbol, now)
        if item is None:
            continue
        if exit_sell := guard.exit_for(symbol, item.quote):
            exits[symbol] = exit_sell
        elif (item := cycle.pauses.apply(item)) and not analysis.settle_if_unchanged(cycle, item, now):
            asked.append(item)
    guard.save()
    return exits | analysis.ask(cycle, asked)


# -- 4. risk ---------------------------------------------------------------------


def check_risk(cycle: Cycle, decisions: dict[str, Decision]) -> list[Outcome]:
    """Size and check every decision against the limits; settle the refusals.

    The portfolio counts what open buy orders from earlier cycles may still
    buy. Approved orders are returned sells first (they free cash and
    exposure), each checked against the portfolio as it will be after the
    ones before it (``execute`` checks again against what really happened).
    Never raises for a risk reason; a minimum the broker cannot tell us
    falls back to $1. The holds and refusals, known all at once, are
    written in one transaction (a hundred symbols: one commit, not two each).
    """
    portfolio = current_portfolio(cycle)
    ordered = sorted(decisions.values(), key=lambda d: (d.action != "sell", d.symbol))
    minimums = order_minimums(cycle, [d for d in ordered if d.action == "buy" and not d.failure])
    approved = []
    with cycle.store.writing():
        for decision in ordered:
            item = cycle.inputs[decision.symbol]
            if decision.failure:
                cycle.settle(Outcome(decision.symbol, decision.failure, decision, item.quote, decision.reasoning))
                continue
            if decision.action == "buy" and item.sell_only and decision.confidence >= cycle.settings.limits.min_confidence:
                cycle.settle(Outcome(decision.symbol, item.sell_only[0], decision, item.quote, f"buy refused: {item.sell_only[1]}"))
                continue
            verdict = risk.plan_order(
                decision, item.quote.price, portfolio, cycle.settings.limits,
                client_order_id=orders.client_order_id(cycle.cycle_id, decision.symbol),
                min_notional_usd=minimums.get(decision.symbol, Decimal(0)), atr=analysis.daily_atr(item),
            )
            outcome = Outcome(decision.symbol, verdict.reason, decision, item.quote, verdict.detail, verdict)
            if verdict.allowed:
                approved.append(outcome)
                portfolio = portfolio.after(verdict.intent)
            else:
                cycle.settle(outcome)
    return approved


# -- 5. execute --------------------------------------------------------------------


def execute(cycle: Cycle, approved: list[Outcome]) -> None:
    """Send approved orders one by one (or record them, in a dry run).

    Before each order, ``orders.gate``: the cycle's time budget, the kill
    switch (re-read from the database), the age of the price it was sized at
    and, for a stock, the market clock; and for a buy, the limits once more against the portfolio as the orders
    before it really left it (a refused sell frees nothing). The trade row is
    written (``submitting``) before the order leaves; if that write fails,
    DatabaseUnusable aborts the cycle and the order is never sent. A
    rejection is recorded and the next symbol goes on; an order that may or
    may not have arrived is recorded ``unknown`` and resolved by the next cycle.
    Once the sells (the stop-outs among them) went out, a stop-loss guard they
    tripped refuses every buy after them (``pauses``).
    A sell first cancels the symbol's stop held at the broker and sees it
    canceled (``stops.release``): the broker refuses to sell what a stop holds.
    """
    book = cycle.portfolio
    for item in approved:
        intent = item.verdict.intent
        if intent.side == "buy":
            _stop_guard(cycle, approved)
        blocked = (intent.side == "buy" and cycle.stop_guard and ("stop_guard", cycle.stop_guard.detail)) \
            or orders.gate(cycle, item) or _recheck(cycle, intent, book)
        if blocked:
            item.outcome, item.detail = blocked
        elif cycle.settings.dry_run:
            cycle.store.insert_trade(trade_row(cycle, intent, "dry_run"))
            item.outcome = "dry_run"
            cycle.orders_sent += 1
            book = book.after(intent)
        elif intent.side == "sell" and (held := stops.release(cycle, intent.symbol)):
            item.outcome, item.detail = held  # its stop at the broker filled first, or is not seen canceled yet
        else:
            accepted = orders.send(cycle, item)
            # What really left: a buy whose fate is unknown counts as bought, a sell as not sold.
            if accepted or (intent.side == "buy" and cycle.store.trade_status(intent.client_order_id) == "unknown"):
                book = book.after(intent)
        cycle.settle(item)
    _stop_guard(cycle, approved)


def _stop_guard(cycle: Cycle, approved: list[Outcome]) -> None:
    if cycle.pauses is not None:
        sent = any(o.decision is not None and o.decision.exit for o in approved)
        cycle.stop_guard = cycle.pauses.tripped(exits_sent=sent)


def _recheck(cycle: Cycle, intent, book: risk.Portfolio) -> tuple[str, str] | None:
    problem = risk.check_order(intent, book, cycle.settings.limits)
    return (problem[0], f"{problem[1]} (after the orders before it)") if problem else None


# -- 6. sync ----------------------------------------------------------------------


def sync_state(cycle: Cycle) -> None:
    """Write back positions and account as the broker now has them, and move
    earlier orders forward (new -> filled, unknown -> what the broker says).
    A broker failure here is noted; the orders already sent stand. Then the
    stops held at the broker are made to match the positions (``stops.maintain``),
    and a stop read filled by any step of this cycle is recorded as a protective exit."""
    _sync(cycle)
    stops.record_fills(cycle, cycle.stops_at_fetch)


def _sync(cycle: Cycle) -> None:
    services, store = cycle.services, cycle.store
    now = services.clock.now()
    pending = store.pending_trades()
    if cycle.status == "running":
        pending = [t for t in pending if not stops.is_stop(t)]  # the fetch refreshed them moments ago
    if not pending and not cycle.submitted:
        # Nothing changed at the broker since the fetch, seconds ago: write that back, no round trip.
        positions = list(cycle.market.positions.values())
        store.replace_positions(positions, now)
        store.save_account(cycle.market.account, len(cycle.market.positions), now, cycle.cycle_id)
        stops.maintain(cycle, positions)
        return
    tasks = {"positions": services.broker.get_positions, "account": services.broker.get_account}
    results = gather(tasks | reconcile.order_lookups(services.broker, pending))  # one round trip for all of it
    try:
        reconcile.apply_order_updates(cycle, pending, results)
        stops.record_fills(cycle, pending)
        for key in ("positions", "account"):
            if isinstance(results[key], Exception):
                raise results[key]
        store.replace_positions(results["positions"], now)
        store.save_account(results["account"], len(results["positions"]), now, cycle.cycle_id)
    except ServiceError as exc:
        cycle.note(f"sync with the broker failed ({exc}); it is retried next cycle")
        return
    stops.maintain(cycle, results["positions"])


# -- 7. complete ------------------------------------------------------------------


def complete(cycle: Cycle) -> CycleReport:
    """Record the cycle's end and metrics; log one event. Always runs.

    Three critical aborts in a row (a bug, an unusable database, state that
    cannot be reconciled) trip the kill switch. Aborts because a service was
    unreachable do not: the next cycle retries, and ``status`` shows how long
    the outage has lasted."""
    if cycle.status == "running":
        cycle.status = "completed"
    now = cycle.services.clock.now()
    duration_ms = int((now - cycle.started_at).total_seconds() * 1000)
    errors = sum(1 for o in cycle.outcomes.values() if o.outcome in ("error", "ai_unavailable", "ai_invalid"))
    errors += 1 if cycle.status == "aborted" else 0
    summary = {
        "symbols": len(cycle.settings.symbols),
        "orders": cycle.orders_sent,
        "errors": errors,
        "outcomes": {s: o.outcome for s, o in cycle.outcomes.items()},
        "notes": cycle.notes,
    }
    abort_kind = ("critical" if cycle.critical else "outage") if cycle.status == "aborted" else None
    # Stored without the outcomes: each symbol's is in its ai_decisions row (a minute's row costs 40 % less).
    stored = {k: v for k, v in summary.items() if k != "outcomes"}
    cycle.store.finish_cycle(
        cycle.cycle_id, status=cycle.status, finished_at=now, duration_ms=duration_ms, error=cycle.error, summary=stored,
        abort_kind=abort_kind,
    )
    if abort_kind == "critical":
        recent = cycle.store.last_statuses(ABORTS_THAT_TRIP_KILL_SWITCH)
        if len(recent) == ABORTS_THAT_TRIP_KILL_SWITCH and all(s == "critical" for s in recent):
            cycle.halt_reason = f"{ABORTS_THAT_TRIP_KILL_SWITCH} critical errors in a row; last: {cycle.error}"
            cycle.store.set_kill_switch(True, cycle.halt_reason, now)
    if cycle.settings.keep_days:
        pruned = cycle.store.prune(now - timedelta(days=cycle.settings.keep_days), cycle.services.deadline.remaining())
        if pruned.rows or pruned.pages_freed or pruned.switched:
            cycle.log("history.pruned", keep_days=cycle.settings.keep_days, rows=pruned.deleted, done=pruned.done,
                      pages_freed=pruned.pages_freed, switched_to_incremental_vacuum=pruned.switched)
    level = {"aborted": "error", "skipped": "warning"}.get(cycle.status, "info")
    cycle.log(f"cycle.{cycle.status}", level, duration_ms=duration_ms, orders=cycle.orders_sent, errors=errors, error=cycle.error)
    return CycleReport(
        cycle.cycle_id, cycle.status, cycle.settings.dry_run, cycle.error, len(cycle.settings.symbols),
        cycle.orders_sent, errors, duration_ms, summary["outcomes"], tuple(cycle.notes), cycle.exception,
        tuple(
            {"symbol": o.symbol, "action": o.decision.action if o.decision else "hold",
             "confidence": o.decision.confidence if o.decision else None, "outcome": o.outcome,
             "detail": o.decision.reasoning if o.outcome == "hold" and o.decision else o.detail}
            for o in cycle.outcomes.values()
        ),
        cycle.halt_reason,
        cycle.stop_guard,
        tuple(cycle.adopted),
        cycle.inherited,
    )


__all__ = ["CycleReport", "CycleSettings", "client_order_id", "run_cycle"]
