"""When an earlier "hold" may stand without asking the LLM again.

A symbol is not sent to the LLM when all of these hold for the decision that
stands (the last real analysis, which said hold):

- its price moved less than ``ai.reanalyze_move_percent`` since;
- no headline arrived that the analyst has not seen;
- the position held is the same;
- it is younger than ``ai.max_decision_age_minutes``.

Anything else is a change, and the symbol is analysed as usual. Pure
functions: the cycle gathers the facts, this decides.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal


@dataclass(frozen=True)
class StandingHold:
    """The hold a symbol's latest row points at (itself, or the one it reused)."""

    decision_id: int
    decided_at: datetime
    price: Decimal
    headline_ids: frozenset[str]
    position_qty: Decimal
    confidence: float
    reasoning: str
    model: str


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
