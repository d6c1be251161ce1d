"""The fetch step's helpers: quotes with their fallback to a stored price,
headlines when due, and the account checks that may trip the kill switch."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from tradecycle.rules import risk
from tradecycle.cycle.state import Cycle, CycleSettings
from tradecycle.infra.errors import ServiceError
from tradecycle.models import Quote

if TYPE_CHECKING:
    from tradecycle.store import Store

NEWS_LOOKBACK = timedelta(hours=24)


def per_symbol(result, symbols) -> dict:
    if isinstance(result, Exception):
        return {symbol: result for symbol in symbols}
    return {symbol: result.get(symbol, ServiceError("quotes", "no quote returned")) for symbol in symbols}


def news_due(store: "Store", symbol: str, now: datetime, settings: CycleSettings) -> bool:
    last = store.news_fetched_at(symbol)
    return last is None or now - last >= timedelta(minutes=settings.news_refresh_minutes)


def collect_quotes(cycle: Cycle, fetched: dict[str, Quote | Exception]) -> None:
    """Keep the fresh quotes; a symbol without one falls back to its stored price
    while that is young enough. A failed call gives every symbol it served the
    same error: the cycle notes it once, naming those symbols."""
    market, store = cycle.market, cycle.store
    now = cycle.services.clock.now()
    fresh = []
    failed: dict[int, tuple[Exception, list[str], dict[str, str]]] = {}  # error -> (it, symbols without a price, stored prices)
    for symbol, quote in fetched.items():
        if isinstance(quote, Quote):
            market.quotes[symbol] = quote
            fresh.append(quote)
            continue
        market.failures[symbol] = str(quote)
        _, missing, stored = failed.setdefault(id(quote), (quote, [], {}))
        cached = store.last_quote(symbol)
        if cached and cached.age_seconds(now) <= cycle.settings.max_quote_age_seconds:
            market.quotes[symbol] = cached
            stored[symbol] = f"{cached.as_of:%H:%M:%S}Z"
        else:
            missing.append(symbol)
    for error, missing, stored in failed.values():
        _note_failure(cycle, error, missing, stored)
    store.record_quotes(cycle.cycle_id, fresh, now)


def _note_failure(cycle: Cycle, error: Exception, missing: list[str], stored: dict[str, str]) -> None:
    parts = [f"{', '.join(missing)}: no quote ({error})"] if missing else []
    if stored:
        times = set(stored.values())
        since = next(iter(times)) if len(times) == 1 else ", ".join(f"{s} {t}" for s, t in stored.items())
        reason = "the same error" if missing else str(error)
        parts.append(f"{', '.join(stored)}: quote unavailable ({reason}); using the stored price from {since}")
    symbols = [*missing, *stored]
    where = {"symbol": symbols[0]} if len(symbols) == 1 else {"symbols": symbols}
    cycle.note("; ".join(parts), **where)


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
