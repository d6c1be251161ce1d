"""A deterministic offline analyst: momentum on the day's change and on the
short-term trend of the prices seen in earlier cycles.

- Not holding, up at least 1 % on the day and not falling in the short run:
  buy, more confident the stronger the move.
- Holding, and down 1 % on the day or 0.5 % in the short run: sell.
- Anything else: hold. A symbol that may only be sold or held (no fresh
  quote, or outside the universe) is never bought.

Headlines only colour the reasoning text; they never change the action.
Same inputs, same decision: this is what the tests and a first try rely on.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from ..models import AnalysisInput, Decision

BUY_DAY_CHANGE_PERCENT = Decimal("1.0")
SELL_DAY_CHANGE_PERCENT = Decimal("-1.0")
SELL_SHORT_MOVE_PERCENT = Decimal("-0.5")
MAX_CONFIDENCE = 0.95


class RulesAnalyst:
    model = "rules-momentum-v1"

    def analyse(self, inputs: Sequence[AnalysisInput], timeout_seconds: float) -> list[Decision]:
        return [self.decide(item) for item in inputs]

    def decide(self, item: AnalysisInput) -> Decision:
        day = item.quote.change_percent or Decimal(0)
        short = _short_move_percent(item)
        held = item.position is not None and item.position.qty > 0
        trend = f"day {day:+.2f}%, short-term {short:+.2f}%"
        if not held and not item.sell_only and day >= BUY_DAY_CHANGE_PERCENT and short >= Decimal("-0.2"):
            confidence = min(MAX_CONFIDENCE, 0.5 + float(day) / 10)
            return self._decision(item, "buy", confidence, f"Upward momentum ({trend})")
        if held and (day <= SELL_DAY_CHANGE_PERCENT or short <= SELL_SHORT_MOVE_PERCENT):
            confidence = min(MAX_CONFIDENCE, 0.55 + max(-float(day), -float(short) * 2) / 10)
            return self._decision(item, "sell", confidence, f"Momentum turned down ({trend})")
        return self._decision(item, "hold", 0.5, f"No clear signal ({trend})")

    def _decision(self, item: AnalysisInput, action: str, confidence: float, reasoning: str) -> Decision:
        if item.headlines:
            reasoning += f"; latest headline: {item.headlines[0].headline[:80]}"
        return Decision(item.symbol, action, round(confidence, 3), reasoning, self.model)


def _short_move_percent(item: AnalysisInput) -> Decimal:
    """Change from the oldest recent price to now, in percent (0 with no history)."""
    if not item.recent_prices or item.recent_prices[0] <= 0:
        return Decimal(0)
    return (item.quote.price / item.recent_prices[0] - 1) * 100
