"""A deterministic offline analyst: trend and RSI on the daily bars, with the
day's change as confirmation; plain momentum when there are no indicators.

With indicators (``AnalysisInput.context``):

- Not holding, price above its 20-day and 50-day averages (the 50-day when
  known), RSI(14) between 50 and 70 (rising, not overbought) and not down on
  the day: buy, more confident the stronger the RSI and the day.
- Holding, and the trend broke (price below its 20-day average with RSI
  under 45), or RSI is 75 or more (overbought: take the gain), or the day is
  down 3 % or more: sell.
- Anything else: hold.

Without indicators (a source with no daily bars), the old momentum rules:

- Not holding, up at least 1 % on the day and not falling in the short run:
  buy, more confident the stronger the move.
- Holding, and down 1 % on the day or 0.5 % in the short run: sell.

Either way, a symbol that may only be sold or held (no fresh quote, or
outside the universe) is never bought.

Headlines only colour the reasoning text; they never change the action.
Same inputs, same decision: this is what the tests and a first try rely on.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from tradecycle.models import AnalysisInput, Decision, Indicators

BUY_DAY_CHANGE_PERCENT = Decimal("1.0")
SELL_DAY_CHANGE_PERCENT = Decimal("-1.0")
SELL_SHORT_MOVE_PERCENT = Decimal("-0.5")
BUY_RSI = (Decimal(50), Decimal(70))
SELL_RSI_BROKEN_TREND = Decimal(45)
SELL_RSI_OVERBOUGHT = Decimal(75)
SELL_DAY_DROP_PERCENT = Decimal("-3.0")
MAX_CONFIDENCE = 0.95


class RulesAnalyst:
    model = "rules-trend-rsi-v2"

    def analyse(self, inputs: Sequence[AnalysisInput], timeout_seconds: float) -> list[Decision]:
        return [self.decide(item) for item in inputs]

    def decide(self, item: AnalysisInput) -> Decision:
        indicators = item.context.indicators if item.context else None
        if indicators is not None and indicators.sma_20 is not None and indicators.rsi_14 is not None:
            return self._trend(item, indicators)
        return self._momentum(item)

    def _trend(self, item: AnalysisInput, ind: Indicators) -> Decision:
        price, day = item.quote.price, item.quote.change_percent or Decimal(0)
        held = item.position is not None and item.position.qty > 0
        rsi, sma_20, sma_50 = ind.rsi_14, ind.sma_20, ind.sma_50
        up_trend = price > sma_20 and (sma_50 is None or price > sma_50)
        facts = f"price {price} vs SMA20 {sma_20}" + (f", SMA50 {sma_50}" if sma_50 is not None else "") + f", RSI {rsi}, day {day:+.2f}%"
        if not held and not item.sell_only and up_trend and BUY_RSI[0] <= rsi < BUY_RSI[1] and day >= 0:
            confidence = min(MAX_CONFIDENCE, 0.6 + float(rsi - BUY_RSI[0]) / 100 + min(float(day), 3.0) / 20)
            return self._decision(item, "buy", confidence, f"Uptrend with room to run ({facts})")
        if held and price < sma_20 and rsi < SELL_RSI_BROKEN_TREND:
            return self._decision(item, "sell", 0.7, f"Trend broke below the 20-day average ({facts})")
        if held and rsi >= SELL_RSI_OVERBOUGHT:
            return self._decision(item, "sell", 0.65, f"Overbought: taking the gain ({facts})")
        if held and day <= SELL_DAY_DROP_PERCENT:
            return self._decision(item, "sell", 0.65, f"Sharp drop on the day ({facts})")
        return self._decision(item, "hold", 0.5, f"No clear signal ({facts})")

    def _momentum(self, item: AnalysisInput) -> Decision:
        day = item.quote.change_percent or Decimal(0)
        short = _short_move_percent(item)
        held = item.position is not None and item.position.qty > 0
        trend = f"day {day:+.2f}%, short-term {short:+.2f}%; no indicators"
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
