"""The analysis step's helpers: which symbols are analysed, what each may do
now (settled without an AI call, sell or hold only, or anything), the reuse
of a standing decision, and the one call to the analyst."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from tradecycle.cycle import context
from tradecycle.rules import reuse
from tradecycle.rules import risk
from tradecycle.cycle.state import Cycle, CycleSettings, Outcome
from tradecycle.models import AnalysisInput, Decision, Quote, is_crypto
from tradecycle.cycle.orders import client_order_id
from tradecycle.cycle.portfolio import current_portfolio

MAX_CLOCK_SKEW = timedelta(seconds=60)  # a quote dated further ahead than this is not trusted
NOT_IN_UNIVERSE = ("not_in_universe", "held but no longer in the universe: sell or hold only")


def analysed_symbols(cycle: Cycle) -> list[str]:
    """The universe, then every held symbol outside it (to be wound down)."""
    universe = cycle.settings.symbols
    return [*universe, *sorted(s for s in cycle.market.positions if s not in universe)]


def prepare(cycle: Cycle, symbol: str, now: datetime) -> AnalysisInput | None:
    """What the analyst would be shown about ``symbol``, or None when the symbol
    is settled here without an AI call: the kill switch tripped in this cycle,
    a stock while the market is closed, no fresh quote and nothing held.

    A held position can always be sold: without a fresh quote the broker's
    position price stands in, and the symbol may only be sold or held (so may a
    held symbol outside the universe)."""
    market = cycle.market
    quote, held = market.quotes.get(symbol), market.positions.get(symbol)
    sell_only = None if symbol in cycle.settings.symbols else NOT_IN_UNIVERSE
    if cycle.halt_reason:
        cycle.settle(Outcome(symbol, "kill_switch", quote=quote, detail=cycle.halt_reason))
        return None
    if not is_crypto(symbol) and not market.clock.is_open:
        # Before the age check: outside market hours a stock's last trade is hours old.
        cycle.settle(Outcome(symbol, "market_closed", quote=quote, detail=f"market closed; next open {market.clock.next_open}"))
        return None
    if problem := quote_problem(quote, now, cycle.settings, market.failures.get(symbol)):
        if not (held and held.qty > 0 and held.current_price > 0):
            cycle.settle(Outcome(symbol, problem[0], quote=quote, detail=problem[1]))
            return None
        quote = Quote(symbol, held.current_price, market.fetched_at, "position")
        sell_only = sell_only or (problem[0], f"{problem[1]}: the broker's position price is used, sell or hold only")
    item = _analysis_input(cycle, symbol, quote, now, sell_only)
    cycle.inputs[symbol] = item
    return item


def quote_problem(quote: Quote | None, now: datetime, settings: CycleSettings, failure: str | None) -> tuple[str, str] | None:
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
    # The decision that stands, under the identity of the analyst who made it (no tokens: nobody was asked).
    decision = Decision(item.symbol, standing.action, standing.confidence, standing.reasoning, standing.model,
                        prompt_hash=standing.prompt_hash)
    verdict = None
    if stands and standing.is_refusal:
        verdict = risk.plan_order(decision, item.quote.price, current_portfolio(cycle), settings.limits,
                                  client_order_id=client_order_id(cycle.cycle_id, item.symbol), min_notional_usd=standing.min_notional_usd,
                                  atr=daily_atr(item))
        stands, why = reuse.refusal_still_stands(standing, verdict.reason, verdict.detail)
    if not stands:
        cycle.log("analysis.needed", symbol=item.symbol, reason=why)
        return False
    outcome = standing.outcome if standing.is_refusal else "unchanged"
    cycle.settle(Outcome(item.symbol, outcome, decision, item.quote, why, verdict, reused_decision_id=standing.decision_id))
    return True


def daily_atr(item: AnalysisInput) -> Decimal | None:
    """The symbol's daily ATR(14) as the analyst was shown it, for volatility sizing; None without daily bars."""
    indicators = item.context.indicators if item.context else None
    return indicators.atr_14 if indicators else None


def ask(cycle: Cycle, inputs: list[AnalysisInput]) -> dict[str, Decision]:
    """One decision per input, from the analyst, inside the analysis timeout.
    The analyst never raises for a service problem; if it raises anyway,
    every symbol holds as ``ai_unavailable``. Decisions for symbols that
    were not asked about are dropped and logged."""
    if not inputs:
        return {}
    services = cycle.services
    timeout = min(cycle.settings.analysis_timeout_seconds, services.deadline.remaining())
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


def _analysis_input(cycle: Cycle, symbol: str, quote: Quote, now: datetime, sell_only: tuple[str, str] | None) -> AnalysisInput:
    shown = context.market_context(cycle, symbol, quote)
    # The recent prices are the context's (one query for both), without their times.
    recent = tuple(p.price for p in shown.recent) if shown is not None else tuple(cycle.store.recent_prices(symbol))
    return AnalysisInput(
        symbol=symbol,
        quote=quote,
        quote_age_seconds=quote.age_seconds(now),
        position=cycle.market.positions.get(symbol),
        headlines=cycle.market.news.get(symbol, ()),
        recent_prices=recent,
        limits=cycle.settings.limits,
        context=shown,
        sell_only=sell_only,
    )
