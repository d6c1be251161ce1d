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

from . import context, orders, protect, reuse, risk, winddown
from .cycle_state import Cycle, CycleAborted, CycleReport, CycleSettings, Outcome, trade_row
from .errors import BadResponse, ServiceError, TradecycleError, Unreconcilable
from .models import AnalysisInput, Decision, FetchResult, OrderResult, Quote, is_crypto
from .orders import client_order_id
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
    cycle.switch = switch = store.kill_switch()
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


# -- 2. fetch -----------------------------------------------------------------


def fetch_market_data(cycle: Cycle) -> None:
    """Account, clock, positions, quotes, due daily bars and due headlines, all at once.

    The broker failing aborts the cycle (nothing can be sized safely). A quote
    source failing falls back, per symbol, to the last stored price if it is
    younger than ``max_quote_age_seconds``. News failing leaves no news;
    daily bars failing leave the bars already stored (``context.py``).
    Orders still open from earlier cycles are refreshed in the same round
    trip, so that risk counts what they may still buy. After the fetch, the
    daily loss limit and the account's state may trip the kill switch.
    """
    services, settings, store = cycle.services, cycle.settings, cycle.store
    now = services.clock.now()
    news = services.news
    due_news = [s for s in settings.symbols if news and news.covers(s) and _news_due(store, s, now, settings)]
    open_orders = store.open_orders()
    bars = context.DailyBarRefresh(cycle)  # due once a day per symbol, fetched in this same round trip
    tasks = _order_lookups(services.broker, open_orders) | bars.tasks() | {
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
        fetched_at=services.clock.now(),
    )
    cycle.market = market
    _apply_order_updates(cycle, open_orders, results)
    cycle.open_orders = store.pending_trades()  # open, and any whose fate is still unknown
    _collect_quotes(cycle, {**_per_symbol(results["stocks"], settings.stocks), **_per_symbol(results["crypto"], settings.crypto)})
    bars.record(results)
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

    First, every held position is checked against its protective exits
    (``exits.py``): a level that is hit is a sell the analyst is not asked
    about. The universe is analysed, and so is every held symbol outside it (sell or
    hold only), so that removing a symbol from the config winds it down.
    Stocks while the market is closed and everything once the kill switch
    tripped are settled here without an AI call. A symbol without a fresh
    quote is settled too, unless a position is held: then the broker's own
    position price stands in, and the symbol may only be sold or held. The
    analyst never raises for a service problem; if it raises anyway, every
    symbol holds as ``ai_unavailable``.
    """
    market, settings, services = cycle.market, cycle.settings, cycle.services
    now = services.clock.now()
    inputs, guard, exits = [], protect.Guard(cycle), {}
    for symbol in analysed_symbols(cycle):
        quote, held = market.quotes.get(symbol), market.positions.get(symbol)
        sell_only = None if symbol in settings.symbols else ("not_in_universe", "held but no longer in the universe: sell or hold only")
        if cycle.halt_reason:
            cycle.settle(Outcome(symbol, "kill_switch", quote=quote, detail=cycle.halt_reason))
            continue
        if not is_crypto(symbol) and not market.clock.is_open:
            # Before the age check: outside market hours a stock's last trade is hours old.
            cycle.settle(Outcome(symbol, "market_closed", quote=quote, detail=f"market closed; next open {market.clock.next_open}"))
            continue
        if problem := _quote_problem(quote, now, settings, market.failures.get(symbol)):
            if not (held and held.qty > 0 and held.current_price > 0):
                cycle.settle(Outcome(symbol, problem[0], quote=quote, detail=problem[1]))
                continue
            # A held position can always be sold: the broker's price serves, for sells only.
            quote = Quote(symbol, held.current_price, market.fetched_at, "position")
            sell_only = sell_only or (problem[0], f"{problem[1]}: the broker's position price is used, sell or hold only")
        item = _analysis_input(cycle, symbol, quote, now, sell_only)
        cycle.inputs[symbol] = item
        if exit_sell := guard.exit_for(symbol, quote):
            exits[symbol] = exit_sell
        elif not settle_if_unchanged(cycle, item, now):
            inputs.append(item)
    guard.save()
    if not inputs:
        return exits
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
    return exits | {
        s: decisions.get(s) or Decision.held(s, "ai_unavailable", "the analyst returned no decision", analyst.model)
        for s in (item.symbol for item in inputs)
    }


def analysed_symbols(cycle: Cycle) -> list[str]:
    """The universe, then every held symbol outside it (to be wound down)."""
    universe = cycle.settings.symbols
    return [*universe, *sorted(s for s in cycle.market.positions if s not in universe)]


def _quote_problem(quote: Quote | None, now: datetime, settings: CycleSettings, failure: str | None) -> tuple[str, str] | None:
    """Why ``quote`` may not drive a trade, as (outcome, detail); None when it may."""
    if quote is None:
        return "no_quote", failure or "no price"
    if quote.as_of > now + MAX_CLOCK_SKEW:
        ahead = (quote.as_of - now).total_seconds()
        return "stale_quote", f"price dated {ahead:.0f}s in the future: its age cannot be trusted"
    age = quote.age_seconds(now)
    if age > settings.max_quote_age_seconds:
        return "stale_quote", f"price is {age:.0f}s old (limit {settings.max_quote_age_seconds:.0f}s)"
    return None


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


def _analysis_input(cycle: Cycle, symbol: str, quote: Quote, now: datetime, sell_only: tuple[str, str] | None) -> AnalysisInput:
    return AnalysisInput(
        symbol=symbol,
        quote=quote,
        quote_age_seconds=quote.age_seconds(now),
        position=cycle.market.positions.get(symbol),
        headlines=cycle.market.news.get(symbol, ()),
        recent_prices=tuple(cycle.store.recent_prices(symbol)),
        limits=cycle.settings.limits,
        context=context.market_context(cycle, symbol, quote),
        sell_only=sell_only,
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
    portfolio = current_portfolio(cycle)
    ordered = sorted(decisions.values(), key=lambda d: (d.action != "sell", d.symbol))
    minimums = _order_minimums(cycle, [d for d in ordered if d.action == "buy" and not d.failure])
    approved = []
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
            min_notional_usd=minimums.get(decision.symbol, Decimal(0)),
        )
        outcome = Outcome(decision.symbol, verdict.reason, decision, item.quote, verdict.detail, verdict)
        if verdict.allowed:
            approved.append(outcome)
            portfolio = portfolio.after(verdict.intent)
        else:
            cycle.settle(outcome)
    return approved


def current_portfolio(cycle: Cycle) -> risk.Portfolio:
    """The portfolio risk checks against (kept on the cycle, and shown to the
    analyst): account and positions as fetched, with what open orders may
    still do counted (open buys as if filled; open sells cover their quantity)."""
    if cycle.portfolio is None:
        market = cycle.market
        portfolio = risk.Portfolio(
            equity=market.account.equity,
            cash=min(market.account.cash, market.account.buying_power),
            holdings={s: risk.Holding(p.qty, p.market_value) for s, p in market.positions.items()},
        )
        cycle.portfolio = risk.with_open_orders(portfolio, [_unfilled(t) for t in cycle.open_orders])
    return cycle.portfolio


def _unfilled(trade: dict) -> risk.OpenOrder:
    """What an open order from its trades row may still do: USD a buy may still
    spend, or the quantity a sell may still sell."""
    price = Decimal(trade["price"] or 0)
    filled_qty = Decimal(trade["filled_qty"] or 0)
    if trade["side"] == "sell":
        return risk.OpenOrder(trade["symbol"], "sell", qty=max(Decimal(trade["quantity"] or 0) - filled_qty, Decimal(0)))
    ordered = Decimal(trade["notional_usd"]) if trade["notional_usd"] else Decimal(trade["quantity"] or 0) * price
    filled = filled_qty * Decimal(trade["filled_avg_price"] or trade["price"] or 0)
    return risk.OpenOrder(trade["symbol"], "buy", usd=max(ordered - filled, Decimal(0)))


def _order_minimums(cycle: Cycle, buys: list[Decision]) -> dict[str, Decimal]:
    """The broker's minimum order value per symbol, asked for all buys at once.
    A broker that cannot say falls back to $1 (the broker refuses what is
    too small anyway, and the refusal is recorded)."""
    broker, inputs = cycle.services.broker, cycle.inputs
    found = gather({d.symbol: (lambda s=d.symbol: broker.min_order_notional(s, inputs[s].quote.price)) for d in buys})
    return {s: (Decimal(1) if isinstance(v, Exception) else v) for s, v in found.items()}


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
    """
    book = cycle.portfolio
    for item in approved:
        intent = item.verdict.intent
        blocked = orders.gate(cycle, item) or _recheck(cycle, intent, book)
        if blocked:
            item.outcome, item.detail = blocked
        elif cycle.settings.dry_run:
            cycle.store.insert_trade(trade_row(cycle, intent, "dry_run"))
            item.outcome = "dry_run"
            cycle.orders_sent += 1
            book = book.after(intent)
        else:
            accepted = orders.send(cycle, item)
            # What really left: a buy whose fate is unknown counts as bought, a sell as not sold.
            if accepted or (intent.side == "buy" and cycle.store.trade_status(intent.client_order_id) == "unknown"):
                book = book.after(intent)
        cycle.settle(item)


def _recheck(cycle: Cycle, intent, book: risk.Portfolio) -> tuple[str, str] | None:
    problem = risk.check_order(intent, book, cycle.settings.limits)
    return (problem[0], f"{problem[1]} (after the orders before it)") if problem else None


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
        store.save_account(cycle.market.account, len(cycle.market.positions), now, cycle.cycle_id)
        return
    tasks = {"positions": services.broker.get_positions, "account": services.broker.get_account}
    results = gather(tasks | _order_lookups(services.broker, pending))  # one round trip for all of it
    try:
        _apply_order_updates(cycle, pending, results)
        for key in ("positions", "account"):
            if isinstance(results[key], Exception):
                raise results[key]
        store.replace_positions(results["positions"], now)
        store.save_account(results["account"], len(results["positions"]), now, cycle.cycle_id)
    except ServiceError as exc:
        cycle.note(f"sync with the broker failed ({exc}); it is retried next cycle")


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
    cycle.store.finish_cycle(
        cycle.cycle_id, status=cycle.status, finished_at=now, duration_ms=duration_ms, error=cycle.error, summary=summary,
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
    )


__all__ = ["CycleReport", "CycleSettings", "client_order_id", "run_cycle"]
