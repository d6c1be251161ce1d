"""Sell stops held at the broker, as pure functions: the stop that should
stand for a position, and what to do about the one that stands.

The broker's stop sells at the position's protective level (the higher of
the stop-loss and the trailing stop, ``exits.levels``) while no cycle runs.
Stocks take a ``stop`` order: ``gtc`` for whole shares, ``day`` for a
fractional quantity (Alpaca takes fractional stops for the day only, so the
cycle places a new one each session). Crypto takes no plain stop: a
``stop_limit``, ``gtc``, whose limit sits ``CRYPTO_LIMIT_BAND_PERCENT`` under
its stop price. A stop is never lowered; it is raised once the level gained
``MIN_RAISE_PERCENT`` (a trailing stop moves by a cent at a time: one PATCH a
minute would spend the broker's rate limit for nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import ROUND_DOWN, Decimal

from tradecycle.rules.exits import levels
from tradecycle.models import ExitRules, is_crypto

HUNDRED = Decimal(100)
CRYPTO_LIMIT_BAND_PERCENT = Decimal(1)  # a crypto stop-limit sells down to 1 % under its stop price
MIN_RAISE_PERCENT = Decimal("0.1")  # raise the broker's stop once the level is this much higher


@dataclass(frozen=True)
class StopSpec:
    """A sell stop for ``qty`` of ``symbol`` (as it should stand, or as it stands)."""

    symbol: str
    qty: Decimal
    stop_price: Decimal
    order_type: str  # "stop" (stocks) or "stop_limit" (crypto)
    time_in_force: str  # "gtc", or "day" for a fractional stock quantity
    limit_price: Decimal | None = None


def stop_level(rules: ExitRules, entry_price: Decimal, high_price: Decimal | None) -> Decimal | None:
    """The price the broker's stop sells at: the higher of the stop-loss and the
    trailing stop, or None when both are off."""
    hit = levels(rules, entry_price, high_price)
    candidates = [p for p in (hit.stop_loss, hit.trailing_stop) if p is not None and p > 0]
    return max(candidates) if candidates else None


def wanted_stop(symbol: str, qty: Decimal, entry_price: Decimal, high_price: Decimal | None, rules: ExitRules) -> StopSpec | None:
    """The stop that should protect ``qty`` of ``symbol`` bought at ``entry_price``
    (highest price since: ``high_price``), or None (no position, no level)."""
    level = stop_level(rules, entry_price, high_price) if entry_price > 0 else None
    if qty <= 0 or level is None:
        return None
    stop = tick(level)
    if stop <= 0:
        return None
    if is_crypto(symbol):
        return StopSpec(symbol, qty, stop, "stop_limit", "gtc", crypto_limit(stop))
    return StopSpec(symbol, qty, stop, "stop", "gtc" if qty == qty.to_integral_value() else "day")


def crypto_limit(stop_price: Decimal) -> Decimal:
    """A crypto stop-limit's limit price: ``CRYPTO_LIMIT_BAND_PERCENT`` under its stop."""
    return tick(stop_price * (HUNDRED - CRYPTO_LIMIT_BAND_PERCENT) / HUNDRED)


def tick(price: Decimal) -> Decimal:
    """A price the broker takes, rounded down (never a stop above its level):
    cents from $1, four decimals under it."""
    step = Decimal("0.01") if price >= 1 else Decimal("0.0001")
    return price.quantize(step, rounding=ROUND_DOWN)


def next_step(wanted: StopSpec | None, standing: StopSpec | None, price: Decimal | None) -> tuple[str, StopSpec | None]:
    """What to do about the stop at the broker: ("keep", None), ("place", spec),
    ("replace", spec) (a PATCH: raised, resized or another time in force) or
    ("cancel", None) (it protects no position any more).

    Nothing is placed or raised to a stop at or above ``price`` (the broker
    would refuse it, or sell at once): the cycle's own exit sells then.
    """
    if wanted is None:
        return ("cancel", None) if standing is not None else ("keep", None)
    if price is not None and wanted.stop_price >= price:
        return "keep", None
    if standing is None:
        return "place", wanted
    raised = wanted.stop_price >= standing.stop_price * (HUNDRED + MIN_RAISE_PERCENT) / HUNDRED
    resized = wanted.qty != standing.qty or wanted.time_in_force != standing.time_in_force
    if not (raised or resized):
        return "keep", None
    stop = max(wanted.stop_price, standing.stop_price)  # a stop is never lowered
    spec = replace(wanted, stop_price=stop, limit_price=crypto_limit(stop) if wanted.order_type == "stop_limit" else None)
    if spec.order_type != standing.order_type:
        return "cancel", None  # a PATCH keeps the order type; a new stop follows next cycle
    return "replace", spec
