"""Is the analyst any good? The scorecard as pure functions over stored rows.

No SQL, no I/O: ``store/scores.py`` reads the rows, ``app.score`` hands them
here, ``render.score`` prints the result (``--json`` prints it as is).

- **Decisions by action**, per analyst (model + prompt hash, and role) and
  symbol. Only decisions an analyst was asked for count, each once.
- **Hit rate** of buys and sells at each horizon: a buy is a hit when the
  first stored price at or after the horizon is above the decision's price, a
  sell when it is below (unchanged is a miss). A horizon with no price yet is
  not counted.
- **Calibration** at ``CALIBRATION_HORIZON``: the Brier score (mean of
  (confidence - hit)², 0 is perfect, 0.25 is a coin flip at 0.5) and the hit
  rate per confidence band.
- Every rate is None ("n too small") when fewer than ``MIN_COUNT`` count.
- **P&L** of the account (the main analyst's trades): realized from fills,
  first in first out, after the fees the broker reported; unrealized from the
  positions as last synced.
- **Performance**: equity return over the cycles that recorded equity; the
  buy-and-hold benchmark (the symbols priced in the first cycle, equal
  weights, held to their latest price); their difference; the max drawdown.
- **Agreement** of each shadow (or replayed model) with the main analyst on
  the same request; **tokens per day** of the main analyst and the shadows.
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

HORIZONS = {"15m": 15 * 60, "1h": 60 * 60, "1d": 24 * 60 * 60}  # name -> seconds after the decision
CALIBRATION_HORIZON = "1h"
MIN_COUNT = 20  # fewer decisions than this: "n too small", no rate
# Confidence bands: [low, high); the last one includes 1.
BANDS = ((0.0, 0.6), (0.6, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 1.0))
FAILURES = ("ai_unavailable", "ai_invalid")
CENT = Decimal("0.01")
ALL = "all"


def rate(hits: int, n: int) -> dict[str, Any]:
    """``{"n", "hits", "rate"}``; ``rate`` is None when ``n`` is under ``MIN_COUNT``."""
    return {"n": n, "hits": hits, "rate": round(hits / n, 4) if n >= MIN_COUNT else None}


def is_hit(action: str, price: Decimal | float, later: Decimal | float) -> bool:
    """A buy is right when the price rose, a sell when it fell. (Prices read from the same
    stored decimal text compare alike as floats: ``_Tally`` reads them so, for speed.)"""
    return later > price if action == "buy" else later < price


def band_of(confidence: float) -> str:
    for low, high in BANDS:
        if low <= confidence < high or (high == BANDS[-1][1] and confidence == high):
            return f"{low:.1f}-{high:.1f}"
    return "out of range"


class _Tally:
    """Decisions by action, hit rates per horizon, the Brier score's terms and the bands
    of some rows; tallies add up, so the symbols' tallies make the analyst's."""

    def __init__(self) -> None:
        self.actions = {"buy": 0, "sell": 0, "hold": 0, "failed": 0}
        self.hits = {h: [0, 0] for h in HORIZONS}
        self.squared: list[float] = []
        self.bands = {f"{lo:.1f}-{hi:.1f}": [0, 0] for lo, hi in BANDS}

    def count(self, rows: Iterable[dict[str, Any]]) -> _Tally:
        columns = [(horizon, f"price_{horizon}") for horizon in HORIZONS]
        band_names: dict[float, str] = {}
        for row in rows:
            if row["outcome"] in FAILURES:
                self.actions["failed"] += 1
                continue
            self.actions[row["action"]] = self.actions.get(row["action"], 0) + 1
            if row["action"] not in ("buy", "sell") or not row.get("price"):
                continue
            price = float(row["price"])
            for horizon, column in columns:
                later = row.get(column)
                if later is None:
                    continue
                hit = is_hit(row["action"], price, float(later))
                self.hits[horizon][0] += hit
                self.hits[horizon][1] += 1
                if horizon == CALIBRATION_HORIZON:
                    confidence = float(row["confidence"] or 0)
                    self.squared.append((confidence - hit) ** 2)
                    name = band_names.get(confidence) or band_names.setdefault(confidence, band_of(confidence))
                    band = self.bands.setdefault(name, [0, 0])
                    band[0] += hit
                    band[1] += 1
        return self

    def add(self, other: _Tally) -> _Tally:
        for action, n in other.actions.items():
            self.actions[action] = self.actions.get(action, 0) + n
        for tallies, more in ((self.hits, other.hits), (self.bands, other.bands)):
            for name, (k, n) in more.items():
                tally = tallies.setdefault(name, [0, 0])
                tally[0] += k
                tally[1] += n
        self.squared += other.squared
        return self

    def stats(self) -> dict[str, Any]:
        squared = self.squared
        return {
            "decisions": self.actions,
            "hit_rate": {h: rate(k, n) for h, (k, n) in self.hits.items()},
            # fsum: exact, so a sum over the symbols' tallies is the sum over the rows
            "brier": {"n": len(squared),
                      "score": round(math.fsum(squared) / len(squared), 4) if len(squared) >= MIN_COUNT else None},
            "bands": [{"band": name, **rate(k, n)} for name, (k, n) in self.bands.items()],
        }


def analysts(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (analyst, role): overall (``"all"``) and per symbol. Main first."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows:
        groups[(row["analyst"], row["role"])].append(row)
    order = {"main": 0, "shadow": 1, "replay": 2}
    result = []
    for (analyst, role), members in sorted(groups.items(), key=lambda kv: (order.get(kv[0][1], 3), kv[0][0])):
        by_symbol: dict[str, list[dict]] = defaultdict(list)
        for row in members:
            by_symbol[row["symbol"]].append(row)
        tallies = {s: _Tally().count(by_symbol[s]) for s in sorted(by_symbol)}
        overall = _Tally()
        for tally in tallies.values():
            overall.add(tally)
        result.append({
            "analyst": analyst,
            "model": members[0]["model"],
            "prompt_hash": members[0]["prompt_hash"],
            "role": role,
            "symbols": {ALL: overall.stats()} | {s: tally.stats() for s, tally in tallies.items()},
        })
    return result


def agreement(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """How often each shadow (or replayed model) chose the main analyst's action on
    the same symbol in the same cycle; pairs where either failed are left out."""
    main = {(r["cycle_id"], r["symbol"]): r for r in rows if r["role"] == "main" and r["outcome"] not in FAILURES}
    pairs: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        if row["role"] == "main" or row["outcome"] in FAILURES:
            continue
        partner = main.get((row["cycle_id"], row["symbol"]))
        if partner is None:
            continue
        tally = pairs[(row["analyst"], row["role"])]
        tally[0] += row["action"] == partner["action"]
        tally[1] += 1
    return [{"analyst": a, "role": role, **rate(k, n)} for (a, role), (k, n) in sorted(pairs.items())]


def tokens_per_day(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Requests and tokens per UTC day of the main analyst and each shadow (replays
    are left out: their rows carry the day of the decision they re-asked)."""
    days: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for row in rows:
        if row["role"] not in ("main", "shadow"):
            continue
        tally = days[(row["created_at"][:10], row["analyst"], row["role"])]
        tally[0] += 1
        tally[1] += row.get("prompt_tokens") or 0
        tally[2] += row.get("completion_tokens") or 0
    return [
        {"day": day, "analyst": analyst, "role": role, "requests": n, "prompt_tokens": p, "completion_tokens": c}
        for (day, analyst, role), (n, p, c) in sorted(days.items())
    ]


def fifo_pnl(fills: Sequence[dict[str, Any]], since: str | None = None) -> dict[str, dict[str, Decimal]]:
    """Realized P&L per symbol, first in first out: each sell is matched against the
    oldest lots still open. Fills before ``since`` build the lots; only sells at or
    after it realize, and only fees of fills at or after it are charged. A sell
    beyond the lots held (a position older than the database) realizes nothing for
    the unmatched quantity (``unmatched_qty``)."""
    lots: dict[str, deque] = defaultdict(deque)
    result: dict[str, dict[str, Decimal]] = defaultdict(
        lambda: {"gross_usd": Decimal(0), "fees_usd": Decimal(0), "unmatched_qty": Decimal(0)}
    )
    for fill in fills:
        symbol, qty, price = fill["symbol"], Decimal(fill["filled_qty"]), Decimal(fill["filled_avg_price"])
        counted = since is None or (fill["filled_at"] or "") >= since
        if counted:
            result[symbol]["fees_usd"] += Decimal(fill["fee_usd"] or 0)
        if fill["side"] == "buy":
            lots[symbol].append([qty, price])
            continue
        left = qty
        while left > 0 and lots[symbol]:
            lot = lots[symbol][0]
            matched = min(left, lot[0])
            if counted:
                result[symbol]["gross_usd"] += (price - lot[1]) * matched
            lot[0] -= matched
            left -= matched
            if lot[0] == 0:
                lots[symbol].popleft()
        if counted and left > 0:
            result[symbol]["unmatched_qty"] += left
    return {s: {**v, "realized_usd": v["gross_usd"] - v["fees_usd"]} for s, v in result.items()}


def pnl(fills: Sequence[dict[str, Any]], positions: Sequence[dict[str, Any]], since: str | None) -> dict[str, Any]:
    """Realized (FIFO, after fees) and unrealized P&L, in all and per symbol."""
    realized = fifo_pnl(fills, since)
    unrealized = {p["symbol"]: Decimal(p["unrealized_pl"] or 0) for p in positions}
    symbols = sorted(set(realized) | set(unrealized))
    rows = [
        {
            "symbol": s,
            "realized_usd": _money(realized.get(s, {}).get("realized_usd", Decimal(0))),
            "fees_usd": _money(realized.get(s, {}).get("fees_usd", Decimal(0))),
            "unrealized_usd": _money(unrealized.get(s, Decimal(0))),
            "unmatched_sell_qty": str(realized.get(s, {}).get("unmatched_qty", Decimal(0))),
        }
        for s in symbols
    ]
    return {
        "realized_usd": _money(sum((v["realized_usd"] for v in realized.values()), Decimal(0))),
        "fees_usd": _money(sum((v["fees_usd"] for v in realized.values()), Decimal(0))),
        "unrealized_usd": _money(sum(unrealized.values(), Decimal(0))),
        "by_symbol": rows,
    }


def fall_percent(peak: Decimal, value: Decimal) -> Decimal:
    """How far ``value`` is below ``peak``, in percent of the peak (0 at or above it, or with no positive peak)."""
    return (peak - value) / peak * 100 if peak > 0 else Decimal(0)


def drawdown_percent(equity: Sequence[Decimal]) -> list[Decimal]:
    """At each point, how far equity is below its highest value so far, in percent
    of that peak (0 at a new peak)."""
    peak, result = None, []
    for value in equity:
        peak = value if peak is None else max(peak, value)
        result.append(fall_percent(peak, value))
    return result


def benchmark_return_percent(start: dict[str, str], end: dict[str, str]) -> Decimal | None:
    """Equal weights in every symbol priced at the start, held to the latest price."""
    returns = [Decimal(end[s]) / Decimal(p) - 1 for s, p in start.items() if s in end and Decimal(p) > 0]
    return sum(returns, Decimal(0)) / len(returns) * 100 if returns else None


def performance(equity: Mapping[str, Any], start: dict[str, str], end: dict[str, str]) -> dict[str, Any]:
    """The account over the period. ``equity``: ``store.scores.equity_summary``'s figures
    (how many cycles, the first and last equity, the deepest fall's peak and trough)."""
    first, last = (None if equity.get(k) is None else Decimal(equity[k]) for k in ("first", "last"))
    strategy = (last / first - 1) * 100 if first and last is not None and first > 0 else None
    benchmark = benchmark_return_percent(start, end)
    fall = None if equity.get("peak") is None else fall_percent(Decimal(equity["peak"]), Decimal(equity["trough"]))
    return {
        "cycles": equity.get("cycles", 0),
        "start_equity": _money(first) if first is not None else None,
        "end_equity": _money(last) if last is not None else None,
        "strategy_return_percent": _percent(strategy),
        "benchmark_return_percent": _percent(benchmark),
        "vs_benchmark_percent": _percent(strategy - benchmark if strategy is not None and benchmark is not None else None),
        "max_drawdown_percent": _percent(fall),
        "benchmark_symbols": sorted(start),
    }


def scorecard(decisions: Sequence[dict[str, Any]], fills: Sequence[dict[str, Any]], positions: Sequence[dict[str, Any]],
              equity: Mapping[str, Any], benchmark: tuple[dict[str, str], dict[str, str]],
              since: str | None = None) -> dict[str, Any]:
    """The whole scorecard (the ``score --json`` object, less the filters); ``equity``: see ``performance``."""
    return {
        "horizons": list(HORIZONS),
        "calibration_horizon": CALIBRATION_HORIZON,
        "min_count": MIN_COUNT,
        "analysts": analysts(decisions),
        "agreement": agreement(decisions),
        "tokens_per_day": tokens_per_day(decisions),
        "pnl": pnl(fills, positions, since),
        "performance": performance(equity, *benchmark),
    }


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT))


def _percent(value: Decimal | None) -> str | None:
    return None if value is None else str(value.quantize(CENT))
