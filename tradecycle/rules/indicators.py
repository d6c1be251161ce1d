"""Technical indicators on daily bars, computed with TA-Lib.

numpy and talib are imported inside ``compute``, so that only a cycle that
analyses something pays for them (``killswitch`` and ``status`` never do).

The series is the completed daily bars, oldest first, then today's bar so far
with its close set to the current price (its high and low stretched to it):

- ``sma_20`` / ``sma_50``: talib.SMA of the closes;
- ``rsi_14``: talib.RSI of the closes;
- ``atr_14``: talib.ATR of highs, lows, closes;
- ``avg_volume_20``: talib.SMA of the volumes of the 20 completed days before
  today; ``volume_ratio``: today's volume so far divided by it;
- ``high_20`` / ``low_20``: talib.MAX of the highs / talib.MIN of the lows of
  those same 20 days; ``from_high_20_percent`` / ``from_low_20_percent``: the
  current price against them, in percent.

Each value is the last point of its series, rounded half-even to 2 decimals
(prices under 1 USD: 6; volumes to whole units), so that the prompt, the audit trail and ``explain``
show the same numbers. Too short a history gives None for that value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal

from tradecycle.models import DailyBar, Indicators

HUNDRED = Decimal(100)


def rounded(value: float | Decimal | None, small: bool = False) -> Decimal | None:
    """Half-even to 2 decimals (6 when ``small``), from the exact value; None for nan."""
    if value is None:
        return None
    number = Decimal(value) if not isinstance(value, Decimal) else value
    if not number.is_finite():
        return None
    return number.quantize(Decimal("0.000001") if small else Decimal("0.01"), rounding=ROUND_HALF_EVEN)


def rounded_volume(value: float | Decimal | None) -> Decimal | None:
    """Whole shares (or coins) from 100 up; 4 decimals below (a thin crypto pair)."""
    if value is None or math.isnan(float(value)):
        return None
    number = Decimal(value)
    return number.quantize(Decimal(1) if abs(number) >= 100 else Decimal("0.0001"), rounding=ROUND_HALF_EVEN)


def series(history: Sequence[DailyBar], today: DailyBar | None, price: Decimal) -> tuple[list[DailyBar], list[DailyBar]]:
    """(completed bars before today, the series the indicators run on)."""
    if today is None:
        return list(history), list(history)
    completed = [bar for bar in history if bar.day < today.day]
    now_bar = DailyBar(today.day, today.open, max(today.high, price), min(today.low, price), price, today.volume)
    return completed, completed + [now_bar]


def preload() -> None:
    """Import numpy and TA-Lib (about 50 ms), e.g. on a worker thread while the fetch waits."""
    import numpy  # noqa: F401

    _talib()


def _talib():
    """TA-Lib, without the pandas and polars wrappers it loads when they are installed
    (arch brings pandas, for ``score``): a cycle passes numpy arrays and never pays
    for importing pandas. A None in ``sys.modules`` makes TA-Lib's own import of
    them fail as if they were absent, which it handles."""
    import sys

    if "talib" in sys.modules:
        return sys.modules["talib"]
    blocked = [name for name in ("pandas", "polars") if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        import talib
    finally:
        for name in blocked:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
    return talib


def compute(history: Sequence[DailyBar], today: DailyBar | None, price: Decimal) -> Indicators:
    """The indicators of one symbol. Never raises for a short history (values are None)."""
    import numpy as np

    talib = _talib()
    completed, bars = series(history, today, price)
    small = price < 1

    def last(values) -> float | None:
        value = float(values[-1]) if len(values) else math.nan
        return None if math.isnan(value) else value

    def column(rows: Sequence[DailyBar], name: str):
        return np.array([float(getattr(bar, name)) for bar in rows], dtype=np.float64)

    closes, highs, lows = column(bars, "close"), column(bars, "high"), column(bars, "low")
    values: dict = {"bars_count": len(completed)}
    if len(bars) >= 20:
        values["sma_20"] = rounded(last(talib.SMA(closes, timeperiod=20)), small)
    if len(bars) >= 50:
        values["sma_50"] = rounded(last(talib.SMA(closes, timeperiod=50)), small)
    if len(bars) >= 15:
        values["rsi_14"] = rounded(last(talib.RSI(closes, timeperiod=14)))
        values["atr_14"] = rounded(last(talib.ATR(highs, lows, closes, timeperiod=14)), small)
    if len(completed) >= 20:
        avg_volume = last(talib.SMA(column(completed, "volume"), timeperiod=20))
        high_20 = last(talib.MAX(column(completed, "high"), timeperiod=20))
        low_20 = last(talib.MIN(column(completed, "low"), timeperiod=20))
        values["avg_volume_20"] = rounded_volume(avg_volume)
        values["high_20"], values["low_20"] = rounded(high_20, small), rounded(low_20, small)
        if high_20:
            values["from_high_20_percent"] = rounded((float(price) / high_20 - 1) * 100)
        if low_20:
            values["from_low_20_percent"] = rounded((float(price) / low_20 - 1) * 100)
        if today is not None and avg_volume:
            values["volume_ratio"] = rounded(float(today.volume) / avg_volume)
    if today is not None:
        values["volume_today"] = rounded_volume(today.volume)
    return Indicators(**values)
