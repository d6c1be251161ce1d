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
from .errors import BadResponse, OrderNotReceived, OrderRejected, OrderUncertain, ServiceError, TradecycleError
from .models import AnalysisInput, Decision, FetchResult, OrderResult, Quote, is_crypto
from .parallel import gather
from .ports import EventLog, Services
from .times import parse_iso

if TYPE_CHECKING:
    from .store import Store

NEWS_LOOKBACK = timedelta(hours=24)
MAX_CLOCK_SKEW = timedelta(seconds=60)  # a quote dated further ahead than this is not trusted
# An order the broker does not show this long after it was sent never arrived;
# younger, it may still land, so it stays `unknown` (and counts as bought).
ARRIVAL_GRACE = timedelta(minutes=2)
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
    """New cycle id and ``cycles`` row; kill switch; unconfirmed orders resolved.

    Fails with DatabaseUnusable (the caller exits 1, nothing traded) when the
    row cannot be written. A kill switch that is on makes the cycle
    ``skipped``. A broker that cannot tell what became of an earlier order
    aborts the cycle before any decision.
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
        reconcile_unconfirmed_orders(cycle)
    except ServiceError as exc:
        cycle.status, cycle.error = "aborted", f"cannot tell what became of an earlier order: {exc}"
    return cycle


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
            raise result if isinstance(result, ServiceError) else ServiceError("broker", repr(result))
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


# -- 2. fetch -----------------------------------------------------------------


def fetch_market_data(cycle: Cycle) -> None:
    """Account, clock, positions, quotes and due headlines, all at once.

    The broker failing aborts the cycle (nothing can be sized safely). A quote
    source failing falls back, per symbol, to the last stored price if it is
    younger than ``max_quote_age_seconds``. News failing leaves no news.
    Orders still open from earlier cycles are refreshed in the same round
    trip, so that risk counts what they may still buy. After the fetch, the
    daily loss limit and the account's state may trip the kill switch.
    """
    services, settings, store = cycle.services, cycle.settings, cycle.store
    now = services.clock.now()
    news = services.news
    due_news = [s for s in settings.symbols if news and news.covers(s) and _news_due(store, s, now, settings)]
    open_orders = store.open_orders()
    tasks = _order_lookups(services.broker, open_orders) | {
        "account": services.broker.get_account,
        "clock": services.broker.get_clock,
        "positions": services.broker.get_positions,
        "stocks": lambda: services.stock_quotes.get_quotes(settings.stocks) if settings.stocks else {},
        "crypto": lambda: services.crypto_quotes.get_quotes(settings.crypto) if settings.crypto else {},
        "minimums": lambda: services.broker.load_order_minimums(settings.crypto),
    }
    for symbol in due_news:
        tasks[f"news:{symbol}"] = lambda s=symbol: services.news.get_news(s, now - NEWS_LOOKBACK)
    results = gather(tasks)
    for key in ("account", "clock", "positions"):
        failure = results[key]
        if isinstance(failure, BadResponse) and failure.status_code in (401, 403):
            raise CycleAborted(f"the broker refused our credentials ({key}): {failure}; check APCA_API_KEY_ID and APCA_API_SECRET_KEY")
        if isinstance(failure, Exception):
            raise CycleAborted(f"broker unreachable ({key}): {failure}")
    market = FetchResult(
        account=results["account"],
        clock=results["clock"],
        positions={p.symbol: p for p in results["positions"]},
    )
    cycle.market = market
    _apply_order_updates(cycle, open_orders, results)
    cycle.open_orders = store.pending_trades()  # open, and any whose fate is still unknown
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


def _order_lookups(broker, trades: list[dict]) -> dict:
    """One task per trade: the broker's current view of that order."""
    return {
        f"order:{t['client_order_id']}": (
            (lambda oid=t["broker_order_id"]: broker.get_order(oid))
            if t["broker_order_id"]
            else (lambda cid=t["client_order_id"]: broker.get_order_by_client_id(cid))
        )
        for t in trades
    }


def _apply_order_updates(cycle: Cycle, trades: list[dict], results: dict) -> None:
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
        elif not is_crypto(symbol) and not market.clock.is_open:
            # Before the age check: outside market hours a stock's last trade is hours old.
            cycle.settle(Outcome(symbol, "market_closed", quote=quote, detail=f"market closed; next open {market.clock.next_open}"))
        elif quote is None:
            cycle.settle(Outcome(symbol, "no_quote", detail=market.failures.get(symbol, "no price")))
        elif quote.as_of > now + MAX_CLOCK_SKEW:
            ahead = (quote.as_of - now).total_seconds()
            cycle.settle(Outcome(symbol, "stale_quote", quote=quote, detail=f"price dated {ahead:.0f}s in the future: its age cannot be trusted"))
        elif quote.age_seconds(now) > settings.max_quote_age_seconds:
            age = quote.age_seconds(now)
            cycle.settle(Outcome(symbol, "stale_quote", quote=quote, detail=f"price is {age:.0f}s old (limit {settings.max_quote_age_seconds:.0f}s)"))
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
    """Settle ``item`` without an LLM call if its standing decision still stands
    (reuse.py): a hold as ``unchanged``; an order refused by a limit, refused again."""
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
    decision = Decision(item.symbol, standing.action, standing.confidence, standing.reasoning, standing.model)
    verdict = None
    if stands and standing.is_refusal:
        verdict = risk.plan_order(decision, item.quote.price, current_portfolio(cycle), settings.limits,
                                  client_order_id=client_order_id(cycle.cycle_id, item.symbol), min_notional_usd=standing.min_notional_usd)
        stands, why = reuse.refusal_still_stands(standing, verdict.reason, verdict.detail)
    if not stands:
        cycle.log("analysis.needed", symbol=item.symbol, reason=why)
        return False
    outcome = standing.outcome if standing.is_refusal else "unchanged"
    cycle.settle(Outcome(item.symbol, outcome, decision, item.quote, why, verdict, reused_decision_id=standing.decision_id))
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

    The portfolio counts what open buy orders from earlier cycles may still
    buy. Approved orders are returned sells first (they free cash and
    exposure), each checked against the portfolio as it will be after the
    ones before it (``execute`` checks again against what really happened).
    Never raises for a risk reason; a minimum the broker cannot tell us
    falls back to $1.
    """
    market = cycle.market
    portfolio = current_portfolio(cycle)
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


def current_portfolio(cycle: Cycle) -> risk.Portfolio:
    """The portfolio risk checks against (kept on the cycle): account and
    positions as fetched, plus what open buy orders may still buy."""
    if cycle.portfolio is None:
        market = cycle.market
        portfolio = risk.Portfolio(
            equity=market.account.equity,
            cash=min(market.account.cash, market.account.buying_power),
            holdings={s: risk.Holding(p.qty, p.market_value) for s, p in market.positions.items()},
        )
        cycle.portfolio = risk.with_open_buys(portfolio, [_unfilled_buy(t) for t in cycle.open_orders if t["side"] == "buy"])
    return cycle.portfolio


def _unfilled_buy(trade: dict) -> tuple[str, Decimal, Decimal]:
    """(symbol, USD an open buy may still spend, its price) from its trades row."""
    price = Decimal(trade["price"] or 0)
    ordered = Decimal(trade["notional_usd"]) if trade["notional_usd"] else Decimal(trade["quantity"] or 0) * price
    filled = Decimal(trade["filled_qty"] or 0) * Decimal(trade["filled_avg_price"] or trade["price"] or 0)
    return trade["symbol"], max(ordered - filled, Decimal(0)), price


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

    Before each order, ``_gate``: the cycle's time budget, the kill switch
    (re-read from the database) and the age of the price it was sized at;
    and for a buy, the limits once more against the portfolio as the orders
    before it really left it (a refused sell frees nothing). The trade row is
    written (``submitting``) before the order leaves; if that write fails,
    DatabaseUnusable aborts the cycle and the order is never sent. A
    rejection is recorded and the next symbol goes on; an order that may or
    may not have arrived is recorded ``unknown`` and resolved by the next cycle.
    """
    book = cycle.portfolio
    for item in approved:
        intent = item.verdict.intent
        blocked = _gate(cycle, item) or _recheck(cycle, intent, book)
        if blocked:
            item.outcome, item.detail = blocked
        elif cycle.settings.dry_run:
            cycle.store.insert_trade(trade_row(cycle, intent, "dry_run"))
            item.outcome = "dry_run"
            cycle.orders_sent += 1
            book = book.after(intent)
        else:
            cycle.store.insert_trade(trade_row(cycle, intent, "submitting"))
            item.outcome, item.detail = _submit(cycle, item)
            # What really left: a buy whose fate is unknown counts as bought, a sell as not sold.
            if item.outcome == "ordered" or (intent.side == "buy" and cycle.store.trade_status(intent.client_order_id) == "unknown"):
                book = book.after(intent)
        cycle.settle(item)


def _gate(cycle: Cycle, item: Outcome) -> tuple[str, str] | None:
    """Why no order may leave now, as (outcome, detail); None when it may."""
    if cycle.services.deadline.expired:
        return "time_budget", "cycle.max_cycle_seconds passed: no new orders"
    if (switch := cycle.store.kill_switch()).active:
        return "kill_switch", switch.reason or "kill switch turned on"
    age = item.quote.age_seconds(cycle.services.clock.now())
    if age > cycle.settings.max_quote_age_seconds:
        return "stale_quote", f"price is {age:.0f}s old by now (limit {cycle.settings.max_quote_age_seconds:.0f}s)"
    return None


def _recheck(cycle: Cycle, intent, book: risk.Portfolio) -> tuple[str, str] | None:
    problem = risk.check_order(intent, book, cycle.settings.limits)
    return (problem[0], f"{problem[1]} (after the orders before it)") if problem else None


def _submit(cycle: Cycle, item: Outcome) -> tuple[str, str]:
    """Send one order; a broker that confirms it never got it is sent it once
    more, with the same client order id, only if ``_gate`` still allows."""
    intent, store, now = item.verdict.intent, cycle.store, cycle.services.clock.now
    cycle.submitted += 1

    def mark(status: str, notes: str) -> None:
        store.update_trade(intent.client_order_id, OrderResult(intent.client_order_id, None, status), now(), notes=notes)

    lost: OrderNotReceived | None = None  # the first attempt, which may still land
    for attempt in (1, 2):
        try:
            result = cycle.services.broker.submit_order(intent)
            break
        except OrderNotReceived as exc:
            blocked = _gate(cycle, item) if attempt == 1 else ("error", f"order lost twice: {exc}")
            if blocked:
                # The lost attempt may still land: leave it for the next cycle to look up.
                mark("unknown", f"{exc}; not sent again: {blocked[1]}")
                return blocked
            lost = exc
            cycle.log("order.resend", "warning", symbol=intent.symbol, client_order_id=intent.client_order_id, reason=str(exc))
        except ServiceError as exc:
            if lost is not None:
                # Whatever the resend met (a refusal, a 429, a closed port), the first one may land.
                mark("unknown", f"{lost}; resend failed: {exc}")
                cycle.note(f"{intent.symbol}: order outcome unknown ({exc}); the next cycle looks it up first", symbol=intent.symbol)
                return "error", f"order outcome unknown: resend failed: {exc}"
            return _failed(cycle, intent, exc, mark)
    store.update_trade(intent.client_order_id, result, now())
    cycle.orders_sent += 1
    cycle.log("order.sent", symbol=intent.symbol, side=intent.side, client_order_id=intent.client_order_id,
              order_id=result.broker_order_id, status=result.status)
    return "ordered", f"{intent.side} sent: {result.status}"


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
    results = gather(tasks | _order_lookups(services.broker, pending))  # one round trip for all of it
    try:
        _apply_order_updates(cycle, pending, results)
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
    )


__all__ = ["CycleReport", "CycleSettings", "client_order_id", "run_cycle"]
