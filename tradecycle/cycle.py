"""One trading cycle: the seven steps of the contract, services injected.

``run_cycle`` reads like the contract's table of contents; each step is a
function below it whose docstring says what happens when it fails. The
cycle never imports requests or sqlite: it talks to ``ports`` and ``Store``.
"""

from __future__ import annotations

import secrets
import traceback
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from . import reuse, risk
from .cycle_state import Cycle, CycleAborted, CycleReport, CycleSettings, Outcome, trade_row
from .errors import OrderRejected, OrderUncertain, ServiceError, TradecycleError
from .models import AnalysisInput, Decision, FetchResult, OrderResult, Quote, is_crypto
from .parallel import gather
from .ports import EventLog, Services

if TYPE_CHECKING:
    from .store import Store

NEWS_LOOKBACK = timedelta(hours=24)
ABORTS_THAT_TRIP_KILL_SWITCH = 3


def run_cycle(services: Services, store: "Store", settings: CycleSettings, log: EventLog) -> CycleReport:
    """One cycle. Returns a report; raises only ``DatabaseUnusable`` when even
    the cycle's own row cannot be written (nothing is traded then)."""
    if not services.lock.acquire():
        log("cycle.locked", "warning", message="another cycle holds the run lock")
        return CycleReport(None, "locked", settings.dry_run)
    try:
        cycle = initialize(services, store, settings, log)  # 1
        if cycle.status == "running":
            try:
                fetch_market_data(cycle)  # 2
                decisions = analyse(cycle)  # 3
                approved = check_risk(cycle, decisions)  # 4
                execute(cycle, approved)  # 5
                sync_state(cycle)  # 6
            except TradecycleError as exc:
                cycle.status, cycle.error = "aborted", str(exc)
            except Exception as exc:  # a bug: record it, never trade past it
                cycle.status, cycle.error, cycle.exception = "aborted", f"unexpected error: {exc!r}", exc
                log("cycle.crashed", "error", traceback=traceback.format_exc(limit=8))
        return complete(cycle)  # 7
    finally:
        services.lock.release()


# -- 1. initialize ------------------------------------------------------------


def initialize(services: Services, store: "Store", settings: CycleSettings, log: EventLog) -> Cycle:
    """New cycle id and ``cycles`` row; kill switch; dead cycles reconciled.

    Fails with DatabaseUnusable (the caller exits 1, nothing traded) when the
    row cannot be written. A kill switch that is on makes the cycle
    ``skipped``. A broker that cannot tell what became of a dead cycle's
    orders aborts the cycle before any decision.
    """
    now = services.clock.now()
    cycle_id = f"{now:%Y-%m-%dT%H:%M}Z-{secrets.token_hex(2)}"
    log.bind(cycle_id=cycle_id)
    store.start_cycle(cycle_id, now, settings.dry_run)
    cycle = Cycle(services, store, settings, log, cycle_id, now)
    log("cycle.started", dry_run=settings.dry_run, symbols=len(settings.symbols))
    switch = store.kill_switch()
    if switch.active:
        cycle.status, cycle.error = "skipped", f"kill switch is on ({switch.reason or 'no reason given'})"
        return cycle
    try:
        reconcile_dead_cycles(cycle)
    except ServiceError as exc:
        cycle.status, cycle.error = "aborted", f"cannot reconcile a dead cycle's orders: {exc}"
    return cycle


def reconcile_dead_cycles(cycle: Cycle) -> None:
    """A ``running`` row seen while we hold the lock is a cycle whose process
    died. Mark it aborted and ask the broker what became of each order it may
    have sent; its decisions are never re-sent."""
    dead = cycle.store.running_cycles(except_id=cycle.cycle_id)
    for cycle_id in dead:
        cycle.store.mark_cycle_aborted(cycle_id, f"process died; found by cycle {cycle.cycle_id}", cycle.started_at)
        cycle.note(f"cycle {cycle_id} had died; marked aborted", dead_cycle_id=cycle_id)
    for trade in cycle.store.pending_trades(dead) if dead else []:
        result = cycle.services.broker.get_order_by_client_id(trade["client_order_id"])
        if result is None:
            result = OrderResult(trade["client_order_id"], None, "not_sent", message="the broker never received it")
        cycle.store.update_trade(trade["client_order_id"], result, cycle.services.clock.now())
        cycle.log("order.reconciled", client_order_id=trade["client_order_id"], status=result.status)


# -- 2. fetch -----------------------------------------------------------------


def fetch_market_data(cycle: Cycle) -> None:
    """Account, clock, positions, quotes and due headlines, all at once.

    The broker failing aborts the cycle (nothing can be sized safely). A quote
    source failing falls back, per symbol, to the last stored price if it is
    younger than ``max_quote_age_seconds``. News failing leaves no news.
    After the fetch, the daily loss limit and the account's state may trip
    the kill switch.
    """
    services, settings, store = cycle.services, cycle.settings, cycle.store
    now = services.clock.now()
    news = services.news
    due_news = [s for s in settings.symbols if news and news.covers(s) and _news_due(store, s, now, settings)]
    tasks = {
        "account": services.broker.get_account,
        "clock": services.broker.get_clock,
        "positions": services.broker.get_positions,
        "stocks": lambda: services.stock_quotes.get_quotes(settings.stocks) if settings.stocks else {},
        "crypto": lambda: services.crypto_quotes.get_quotes(settings.crypto) if settings.crypto else {},
    }
    for symbol in due_news:
        tasks[f"news:{symbol}"] = lambda s=symbol: services.news.get_news(s, now - NEWS_LOOKBACK)
    results = gather(tasks)
    for key in ("account", "clock", "positions"):
        if isinstance(results[key], Exception):
            raise CycleAborted(f"broker unreachable ({key}): {results[key]}")
    market = FetchResult(
        account=results["account"],
        clock=results["clock"],
        positions={p.symbol: p for p in results["positions"]},
    )
    cycle.market = market
    _collect_quotes(cycle, {**_per_symbol(results["stocks"], settings.stocks), **_per_symbol(results["crypto"], settings.crypto)})
    for symbol in due_news:
        items = results[f"news:{symbol}"]
        if isinstance(items, Exception):
            cycle.note(f"news for {symbol} unavailable ({items}); analysing without fresh headlines", symbol=symbol)
        else:
            store.record_news(symbol, items, now)
    for symbol in settings.symbols:
        market.news[symbol] = tuple(store.recent_news(symbol, now - NEWS_LOOKBACK)) if services.news else ()
    cycle.log("market.fetched", quotes=len(market.quotes), failures=len(market.failures), news_calls=len(due_news))
    check_account_safety(cycle)


def _per_symbol(result, symbols) -> dict:
    if isinstance(result, Exception):
        return {symbol: result for symbol in symbols}
    return {symbol: result.get(symbol, ServiceError("quotes", "no quote returned")) for symbol in symbols}


def _news_due(store: "Store", symbol: str, now: datetime, settings: CycleSettings) -> bool:
    last = store.news_fetched_at(symbol)
    return last is None or now - last >= timedelta(minutes=settings.news_refresh_minutes)


def _collect_quotes(cycle: Cycle, fetched: dict[str, Quote | Exception]) -> None:
    market, store = cycle.market, cycle.store
    now = cycle.services.clock.now()
    fresh = []
    for symbol, quote in fetched.items():
        if isinstance(quote, Quote):
            market.quotes[symbol] = quote
            fresh.append(quote)
            continue
        market.failures[symbol] = str(quote)
        cached = store.last_quote(symbol)
        if cached and cached.age_seconds(now) <= cycle.settings.max_quote_age_seconds:
            market.quotes[symbol] = cached
            cycle.note(f"{symbol}: quote unavailable ({quote}); using the stored price from {cached.as_of:%H:%M:%S}Z", symbol=symbol)
        else:
            cycle.note(f"{symbol}: no quote ({quote})", symbol=symbol)
    store.record_quotes(cycle.cycle_id, fresh, now)


def check_account_safety(cycle: Cycle) -> None:
    """Trip the kill switch on a daily loss past the limit or an account that
    cannot trade. The cycle then decides nothing and sends nothing."""
    account = cycle.market.account
    reason = risk.account_problem(account) or risk.daily_loss_breach(account, cycle.settings.limits)
    if reason:
        trip_kill_switch(cycle, reason)


def trip_kill_switch(cycle: Cycle, reason: str) -> None:
    cycle.store.set_kill_switch(True, reason, cycle.services.clock.now())
    cycle.halt_reason = reason
    cycle.note(f"kill switch turned on: {reason}")


# -- 3. analyse ----------------------------------------------------------------


def analyse(cycle: Cycle) -> dict[str, Decision]:
    """Ask the analyst about every symbol that can trade now.

    Symbols without a fresh quote, stocks while the market is closed, and
    everything once the kill switch tripped are settled here without an AI
    call. The analyst never raises for a service problem; if it raises
    anyway, every symbol holds as ``ai_unavailable``.
    """
    market, settings, services = cycle.market, cycle.settings, cycle.services
    now = services.clock.now()
    inputs = []
    for symbol in settings.symbols:
        quote = market.quotes.get(symbol)
        if cycle.halt_reason:
            cycle.settle(Outcome(symbol, "kill_switch", quote=quote, detail=cycle.halt_reason))
        elif quote is None:
            cycle.settle(Outcome(symbol, "no_quote", detail=market.failures.get(symbol, "no price")))
        elif quote.age_seconds(now) > settings.max_quote_age_seconds:
            age = quote.age_seconds(now)
            cycle.settle(Outcome(symbol, "stale_quote", quote=quote, detail=f"price is {age:.0f}s old (limit {settings.max_quote_age_seconds:.0f}s)"))
        elif not is_crypto(symbol) and not market.clock.is_open:
            cycle.settle(Outcome(symbol, "market_closed", quote=quote, detail=f"market closed; next open {market.clock.next_open}"))
        else:
            item = _analysis_input(cycle, symbol, quote, now)
            cycle.inputs[symbol] = item
            if not settle_if_unchanged(cycle, item, now):
                inputs.append(item)
    if not inputs:
        return {}
    timeout = min(settings.analysis_timeout_seconds, services.deadline.remaining())
    analyst = services.analyst
    try:
        decisions = {d.symbol: d for d in analyst.analyse(inputs, timeout)}
    except Exception as exc:  # the Protocol says it never raises; a bug must still not trade
        cycle.note(f"analyst failed: {exc!r}")
        decisions = {}
    wanted = {item.symbol for item in inputs}
    for symbol in sorted(set(decisions) - wanted):
        cycle.log("analysis.dropped", "warning", symbol=symbol, message="decision for a symbol that was not asked about")
    return {
        s: decisions.get(s) or Decision.held(s, "ai_unavailable", "the analyst returned no decision", analyst.model)
        for s in (item.symbol for item in inputs)
    }


def settle_if_unchanged(cycle: Cycle, item: AnalysisInput, now: datetime) -> bool:
    """Settle ``item`` as ``unchanged`` (no LLM call) if its standing hold still stands."""
    settings = cycle.settings
    if not settings.reuse_holds:
        return False
    standing = cycle.store.standing_hold(item.symbol)
    if standing is None:
        return False
    stands, why = reuse.still_stands(
        standing,
        price=item.quote.price,
        headline_ids=[h.news_id for h in item.headlines],
        position_qty=item.position.qty if item.position else Decimal(0),
        now=now,
        reanalyze_move_percent=settings.reanalyze_move_percent,
        max_decision_age_minutes=settings.max_decision_age_minutes,
    )
    if not stands:
        cycle.log("analysis.needed", symbol=item.symbol, reason=why)
        return False
    decision = Decision(item.symbol, "hold", standing.confidence, standing.reasoning, standing.model)
    cycle.settle(Outcome(item.symbol, "unchanged", decision, item.quote, why, reused_decision_id=standing.decision_id))
    return True


def _analysis_input(cycle: Cycle, symbol: str, quote: Quote, now: datetime) -> AnalysisInput:
    return AnalysisInput(
        symbol=symbol,
        quote=quote,
        quote_age_seconds=quote.age_seconds(now),
        position=cycle.market.positions.get(symbol),
        headlines=cycle.market.news.get(symbol, ()),
        recent_prices=tuple(cycle.store.recent_prices(symbol)),
        limits=cycle.settings.limits,
    )


# -- 4. risk ---------------------------------------------------------------------


def check_risk(cycle: Cycle, decisions: dict[str, Decision]) -> list[Outcome]:
    """Size and check every decision against the limits; settle the refusals.

    Approved orders are returned sells first (they free cash and exposure),
    each checked against the portfolio as it will be after the ones before
    it. Never raises for a risk reason; a minimum the broker cannot tell us
    falls back to the connector's default.
    """
    market = cycle.market
    portfolio = risk.Portfolio(
        equity=market.account.equity,
        cash=min(market.account.cash, market.account.buying_power),
        holdings={s: risk.Holding(p.qty, p.market_value) for s, p in market.positions.items()},
    )
    ordered = sorted(decisions.values(), key=lambda d: (d.action != "sell", d.symbol))
    minimums = _order_minimums(cycle, [d for d in ordered if d.action == "buy" and not d.failure])
    approved = []
    for decision in ordered:
        quote = market.quotes[decision.symbol]
        if decision.failure:
            cycle.settle(Outcome(decision.symbol, decision.failure, decision, quote, decision.reasoning))
            continue
        verdict = risk.plan_order(
            decision, quote.price, portfolio, cycle.settings.limits,
            client_order_id=client_order_id(cycle.cycle_id, decision.symbol),
            min_notional_usd=minimums.get(decision.symbol, Decimal(0)),
        )
        outcome = Outcome(decision.symbol, verdict.reason, decision, quote, verdict.detail, verdict)
        if verdict.allowed:
            approved.append(outcome)
            portfolio = portfolio.after(verdict.intent)
        else:
            cycle.settle(outcome)
    return approved


def _order_minimums(cycle: Cycle, buys: list[Decision]) -> dict[str, Decimal]:
    """The broker's minimum order value per symbol, asked for all buys at once.
    A broker that cannot say falls back to $1 (the broker refuses what is
    too small anyway, and the refusal is recorded)."""
    broker, quotes = cycle.services.broker, cycle.market.quotes
    found = gather({d.symbol: (lambda s=d.symbol: broker.min_order_notional(s, quotes[s].price)) for d in buys})
    return {s: (Decimal(1) if isinstance(v, Exception) else v) for s, v in found.items()}


def client_order_id(cycle_id: str, symbol: str) -> str:
    """Deterministic per cycle and symbol (<= 48 chars), so a retry cannot duplicate."""
    compact = cycle_id.replace("-", "").replace(":", "")
    return f"tc-{compact}-{symbol.replace('/', '')}"[:48]


# -- 5. execute --------------------------------------------------------------------


def execute(cycle: Cycle, approved: list[Outcome]) -> None:
    """Send approved orders one by one (or record them, in a dry run).

    Before each order: the cycle's time budget, then the kill switch, re-read
    from the database. The trade row is written (``submitting``) before the
    order leaves; if that write fails, DatabaseUnusable aborts the cycle and
    the order is never sent. A rejection is recorded and the next symbol goes
    on; an order that may or may not have arrived is recorded ``unknown`` and
    looked up by the next sync.
    """
    services, store = cycle.services, cycle.store
    for item in approved:
        intent = item.verdict.intent
        if services.deadline.expired:
            item.outcome, item.detail = "time_budget", "cycle.max_cycle_seconds passed: no new orders"
        elif (switch := store.kill_switch()).active:
            item.outcome, item.detail = "kill_switch", switch.reason or "kill switch turned on"
        elif cycle.settings.dry_run:
            store.insert_trade(trade_row(cycle, intent, "dry_run"))
            item.outcome = "dry_run"
            cycle.orders_sent += 1
        else:
            store.insert_trade(trade_row(cycle, intent, "submitting"))
            item.outcome, item.detail = _submit(cycle, intent)
        cycle.settle(item)


def _submit(cycle: Cycle, intent) -> tuple[str, str]:
    now = cycle.services.clock.now
    cycle.submitted += 1
    try:
        result = cycle.services.broker.submit_order(intent)
    except OrderRejected as exc:
        cycle.store.update_trade(intent.client_order_id, OrderResult(intent.client_order_id, None, "rejected"), now(), notes=exc.message)
        cycle.log("order.rejected", "warning", symbol=intent.symbol, client_order_id=intent.client_order_id, message=exc.message)
        return "rejected", exc.message
    except OrderUncertain as exc:
        cycle.store.update_trade(intent.client_order_id, OrderResult(intent.client_order_id, None, "unknown"), now(), notes=str(exc))
        cycle.note(f"{intent.symbol}: order outcome unknown ({exc}); the next sync looks it up", symbol=intent.symbol)
        return "error", f"order outcome unknown: {exc}"
    except ServiceError as exc:
        cycle.store.update_trade(intent.client_order_id, OrderResult(intent.client_order_id, None, "not_sent"), now(), notes=str(exc))
        cycle.note(f"{intent.symbol}: order not sent ({exc})", symbol=intent.symbol)
        return "error", f"order not sent: {exc}"
    cycle.store.update_trade(intent.client_order_id, result, now())
    cycle.orders_sent += 1
    cycle.log("order.sent", symbol=intent.symbol, side=intent.side, client_order_id=intent.client_order_id,
              order_id=result.broker_order_id, status=result.status)
    return "ordered", f"{intent.side} sent: {result.status}"


# -- 6. sync ----------------------------------------------------------------------


def sync_state(cycle: Cycle) -> None:
    """Write back positions and account as the broker now has them, and move
    earlier orders forward (new -> filled, unknown -> what the broker says).
    A broker failure here is noted; the orders already sent stand."""
    services, store = cycle.services, cycle.store
    now = services.clock.now()
    pending = store.pending_trades()
    if not pending and not cycle.submitted:
        # Nothing changed at the broker since the fetch, seconds ago: write that back, no round trip.
        store.replace_positions(list(cycle.market.positions.values()), now)
        store.save_account(cycle.market.account, len(cycle.market.positions), now)
        return
    tasks = {"positions": services.broker.get_positions, "account": services.broker.get_account}
    for trade in pending:
        tasks[f"order:{trade['client_order_id']}"] = (
            (lambda oid=trade["broker_order_id"]: services.broker.get_order(oid))
            if trade["broker_order_id"]
            else (lambda cid=trade["client_order_id"]: services.broker.get_order_by_client_id(cid))
        )
    results = gather(tasks)  # one round trip: the account, positions and every open order at once
    try:
        for trade in pending:
            result = results[f"order:{trade['client_order_id']}"]
            if isinstance(result, Exception):
                cycle.note(f"{trade['symbol']}: order {trade['client_order_id']} not refreshed ({result})")
            elif result is None and trade["cycle_id"] != cycle.cycle_id:
                # Looked up a cycle later and still unknown to the broker: it never arrived.
                missing = OrderResult(trade["client_order_id"], None, "not_sent", message="the broker has no such order")
                store.update_trade(trade["client_order_id"], missing, now)
            elif result is not None and result.status != trade["status"]:
                store.update_trade(trade["client_order_id"], result, now)
        for key in ("positions", "account"):
            if isinstance(results[key], Exception):
                raise results[key]
        store.replace_positions(results["positions"], now)
        store.save_account(results["account"], len(results["positions"]), now)
    except ServiceError as exc:
        cycle.note(f"sync with the broker failed ({exc}); it is retried next cycle")


# -- 7. complete ------------------------------------------------------------------


def complete(cycle: Cycle) -> CycleReport:
    """Record the cycle's end and metrics; log one event. Always runs.

    Three aborted cycles in a row trip the kill switch."""
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
    cycle.store.finish_cycle(
        cycle.cycle_id, status=cycle.status, finished_at=now, duration_ms=duration_ms, error=cycle.error, summary=summary
    )
    if cycle.status == "aborted":
        recent = cycle.store.last_statuses(ABORTS_THAT_TRIP_KILL_SWITCH)
        if len(recent) == ABORTS_THAT_TRIP_KILL_SWITCH and all(s == "aborted" for s in recent):
            cycle.halt_reason = f"{ABORTS_THAT_TRIP_KILL_SWITCH} aborted cycles in a row; last: {cycle.error}"
            cycle.store.set_kill_switch(True, cycle.halt_reason, now)
    if cycle.settings.keep_days:
        pruned = cycle.store.prune(now - timedelta(days=cycle.settings.keep_days))
        if pruned:
            cycle.log("history.pruned", cycles=pruned, keep_days=cycle.settings.keep_days)
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
    )


__all__ = ["CycleReport", "CycleSettings", "client_order_id", "run_cycle"]
