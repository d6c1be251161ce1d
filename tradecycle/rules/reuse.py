"""When an earlier decision may stand without asking the LLM again.

The decision that stands is the last real analysis of a symbol, if it said
hold, or if it was a buy or sell refused by a limit (``REFUSALS``). A symbol
is not sent to the LLM when all of these hold for it:

- its price moved less than ``ai.reanalyze_move_percent`` since;
- no headline arrived that the analyst has not seen;
- the position held is the same;
- it is younger than ``ai.max_decision_age_minutes``;
- for a refusal: the risk check, run again now on the same decision, refuses
  it for the same reason (the room under the limits did not change enough to
  let it through). The room it saw is kept in the row's ``inputs``.

Anything else is a change, and the symbol is analysed as usual. Pure
functions: the cycle gathers the facts, this decides.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal


# A buy or sell refused by one of these limits stands like a hold, while the limit still refuses it.
REFUSALS = ("position_too_large", "exposure_limit_exceeded", "max_positions_reached", "below_minimum")


@dataclass(frozen=True)
class StandingHold:
    """The decision a symbol's latest row points at (itself, or the one it reused):
    a hold, or a buy or sell refused by a limit (``outcome`` says which)."""

    decision_id: int
    decided_at: datetime
    price: Decimal
    headline_ids: frozenset[str]
    position_qty: Decimal
    confidence: float
    reasoning: str
    model: str
    action: str = "hold"
    outcome: str = "hold"
    min_notional_usd: Decimal = Decimal(1)  # the broker's minimum the refusal was checked against
    prompt_hash: str | None = None  # with ``model``, who decided: a reuse keeps this identity

    @property
    def is_refusal(self) -> bool:
        return self.outcome in REFUSALS


def still_stands(
    standing: StandingHold,
    *,
    price: Decimal,
    headline_ids: Iterable[str],
    position_qty: Decimal,
    now: datetime,
    reanalyze_move_percent: Decimal,
    max_decision_age_minutes: float,
) -> tuple[bool, str]:
    """(True, why it stands) or (False, what changed)."""
    age = now - standing.decided_at
    if age >= timedelta(minutes=max_decision_age_minutes):
        return False, f"decision is {age.total_seconds() / 60:.0f} min old"
    if standing.price <= 0:
        return False, "no earlier price"
    move = abs(price / standing.price - 1) * 100
    if move >= reanalyze_move_percent:
        return False, f"price moved {move:.2f}%"
    new = set(headline_ids) - standing.headline_ids
    if new:
        return False, f"{len(new)} new headline(s)"
    if position_qty != standing.position_qty:
        return False, "position changed"
    return True, f"hold #{standing.decision_id} still stands: price moved {move:.2f}%, no new headline, same position"


def refusal_still_stands(standing: StandingHold, reason_now: str, detail_now: str) -> tuple[bool, str]:
    """A refused order stands while the risk check, run again now, refuses it for the same reason."""
    if reason_now == standing.outcome:
        return True, f"{standing.action} #{standing.decision_id} still refused, no new analysis: {detail_now}"
    return False, f"room under the limits changed ({standing.outcome} -> {reason_now})"
