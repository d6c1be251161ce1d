"""Protective exits the analyst cannot override: stop-loss, take-profit and a
trailing stop, as pure functions.

Every cycle, before the analyst is asked, each long position is checked
against its levels, from the entry price (``avg_entry_price``) and, for the
trailing stop, from the highest price seen since entry (kept in the database,
``position_marks``). A level that is hit becomes a sell of the whole position
whatever the analyst would have said; the order then goes through the same
gate as any other (kill switch re-read, cycle budget, at-most-once), and an
open sell already covering the position is never sent again.

The price checked is the cycle's fresh quote, or, when the feed is down or
stale, the broker's own position price: an exit never waits for a feed.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tradecycle.models import ExitRules

HUNDRED = Decimal(100)


@dataclass(frozen=True)
class Levels:
    """The prices at which a position is sold; None where that exit is off."""

    stop_loss: Decimal | None
    take_profit: Decimal | None
    trailing_stop: Decimal | None


def levels(rules: ExitRules, entry_price: Decimal, high_price: Decimal | None) -> Levels:
    """The exit prices of a position bought at ``entry_price`` whose highest price since is ``high_price``."""
    high = max(entry_price, high_price or entry_price)
    return Levels(
        stop_loss=_scaled(entry_price, -rules.stop_loss_percent) if rules.stop_loss_percent else None,
        take_profit=_scaled(entry_price, rules.take_profit_percent) if rules.take_profit_percent else None,
        trailing_stop=_scaled(high, -rules.trailing_stop_percent) if rules.trailing_stop_percent else None,
    )


def triggered(rules: ExitRules, entry_price: Decimal, high_price: Decimal | None, price: Decimal) -> tuple[str, str] | None:
    """(outcome word, reason) of the exit ``price`` hits, or None. The stop-loss
    is checked first, then the trailing stop, then the take-profit."""
    if entry_price <= 0 or price <= 0:
        return None
    hit = levels(rules, entry_price, high_price)
    move = (price / entry_price - 1) * HUNDRED
    if hit.stop_loss is not None and price <= hit.stop_loss:
        return "stop_loss", (f"stop-loss: price {_plain(price)} is {-move:.2f}% under the entry {_plain(entry_price)} "
                             f"(risk.stop_loss_percent = {_plain(rules.stop_loss_percent)})")
    if hit.trailing_stop is not None and price <= hit.trailing_stop:
        high = max(entry_price, high_price or entry_price)
        drop = (1 - price / high) * HUNDRED
        return "trailing_stop", (f"trailing stop: price {_plain(price)} is {drop:.2f}% under the high {_plain(high)} "
                                 f"since entry (risk.trailing_stop_percent = {_plain(rules.trailing_stop_percent)})")
    if hit.take_profit is not None and price >= hit.take_profit:
        return "take_profit", (f"take-profit: price {_plain(price)} is {move:.2f}% over the entry {_plain(entry_price)} "
                               f"(risk.take_profit_percent = {_plain(rules.take_profit_percent)})")
    return None


def new_high(previous_high: Decimal | None, entry_price: Decimal, price: Decimal | None) -> Decimal:
    """The highest price seen since entry, once ``price`` has been seen too."""
    candidates = [p for p in (previous_high, entry_price, price) if p is not None and p > 0]
    return max(candidates) if candidates else entry_price


def distance_percent(price: Decimal, level: Decimal | None) -> float | None:
    """How far ``level`` is from ``price``, in percent of the price (negative: below it)."""
    if level is None or price <= 0:
        return None
    return round(float((level / price - 1) * HUNDRED), 2)


def _scaled(price: Decimal, percent: Decimal) -> Decimal:
    return price * (HUNDRED + percent) / HUNDRED


def _plain(value: Decimal) -> str:
    return format(Decimal(value).normalize(), "f")
