"""What the analyst is measured against: the baselines of the verdict, as pure functions.

No SQL, no I/O: ``store/scores.py`` reads the rows, these functions turn them
into paths of value (each starting at 1.0, one point per cycle that recorded
its equity) and into the random-entry distribution.

- **Cash**: 1.0 throughout (no interest is assumed).
- **Buy and hold**: equal weights in every symbol priced at the first cycle,
  held (the weights drift with the prices) to the last cycle.
- **Exposure-matched buy and hold**: the same universe, but only the share of
  equity the strategy itself had invested at the end of each cycle is held
  over the next one; the rest is cash. It answers "was it the picks, or only
  how much was invested?".
- **Random entry**: the same number of buys and sells as the analyst's fills,
  at random cycles of the same period, in random symbols of the same
  universe, each buy sized at the same share of equity as the analyst's buy
  of the same rank and each sell selling the same share of a held position,
  paying the analyst's own cost per dollar traded (fees and slippage). Many
  seeded runs; where the analyst's return falls among them is its percentile.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

RANDOM_RUNS = 1000
MAX_POINTS = 1000  # a longer period is measured at this many evenly spaced cycles
SEED = 25  # every random figure is seeded: the same database gives the same verdict


def sample_points(count: int, max_points: int = MAX_POINTS) -> list[int]:
    """At most ``max_points`` indices of ``count`` cycles, evenly spaced, always the first and the last."""
    if count <= max_points:
        return list(range(count))
    return sorted({round(i * (count - 1) / (max_points - 1)) for i in range(max_points)})


def buy_and_hold(prices: np.ndarray) -> np.ndarray:
    """Value of 1.0 put in equal parts into every symbol priced at the first cycle."""
    if not len(prices):
        return np.ones(0)
    held = ~np.isnan(prices[0])
    if not held.any():
        return np.ones(len(prices))
    return np.mean(prices[:, held] / prices[0, held], axis=1)


def holdings(times: Sequence[str], symbols: Sequence[str], fills: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Quantity held of each symbol after each time: the fills at or before it added
    up (buys add, sells subtract). Fills: ``filled_at``, ``symbol``, ``side``, ``filled_qty``."""
    column = {s: i for i, s in enumerate(symbols)}
    moments = np.asarray(times, dtype=str)
    held = np.zeros((len(times), len(symbols)))
    by_symbol: dict[str, list[tuple[str, float]]] = {}
    for fill in fills:
        if fill["symbol"] in column:
            sign = 1.0 if fill["side"] == "buy" else -1.0
            by_symbol.setdefault(fill["symbol"], []).append((fill["filled_at"] or "", sign * float(fill["filled_qty"])))
    for symbol, rows in by_symbol.items():
        rows.sort()
        stamps = np.asarray([t for t, _ in rows], dtype=str)
        running = np.cumsum([q for _, q in rows])
        index = np.searchsorted(stamps, moments, side="right") - 1
        held[:, column[symbol]] = np.where(index >= 0, running[np.maximum(index, 0)], 0.0)
    return np.maximum(held, 0.0)  # a sell of a position older than the database holds nothing, never less


def exposure(prices: np.ndarray, held: np.ndarray, equity: np.ndarray) -> np.ndarray:
    """Share of equity invested at each cycle (0 to 1): held quantities at that cycle's prices over equity."""
    invested = np.nansum(held * np.nan_to_num(prices), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(equity > 0, invested / equity, 0.0)
    return np.clip(share, 0.0, 1.0)


def exposure_matched(universe: np.ndarray, share: np.ndarray) -> np.ndarray:
    """Value of 1.0 holding the universe at ``share`` of itself over each next cycle, the rest in cash."""
    if len(universe) < 2:
        return np.ones(len(universe))
    step = universe[1:] / universe[:-1] - 1
    return np.concatenate([[1.0], np.cumprod(1 + share[:-1] * step)])


def order_sizes(fills: Sequence[Mapping[str, Any]], times: Sequence[str], equity: np.ndarray,
                since: str = "") -> tuple[list[float], list[float]]:
    """(buy shares, sell shares) of the fills at or after ``since``: each buy's notional
    as a share of equity at its cycle; each sell's quantity as a share of the position
    it sold from (earlier fills build the positions). In time order."""
    moments = np.asarray(times, dtype=str)
    held: dict[str, float] = {}
    buys, sells = [], []
    for fill in sorted(fills, key=lambda f: f["filled_at"] or ""):
        qty, price = float(fill["filled_qty"]), float(fill["filled_avg_price"])
        counted = (fill["filled_at"] or "") >= since
        if fill["side"] == "buy":
            at = max(int(np.searchsorted(moments, fill["filled_at"] or "", side="right")) - 1, 0)
            base = float(equity[at]) if len(equity) else 0.0
            if base > 0 and counted:
                buys.append(min(qty * price / base, 1.0))
            held[fill["symbol"]] = held.get(fill["symbol"], 0.0) + qty
        else:
            before = held.get(fill["symbol"], 0.0)
            if counted:
                sells.append(min(qty / before, 1.0) if before > 0 else 1.0)
            held[fill["symbol"]] = max(before - qty, 0.0)
    return buys, sells


def random_entry(prices: np.ndarray, buys: Sequence[float], sells: Sequence[float], cost_rate: float,
                 runs: int = RANDOM_RUNS, seed: int = SEED) -> np.ndarray:
    """Final return (in percent) of each of ``runs`` random strategies over the cycles
    of ``prices`` (see the module's docstring). A random sell when nothing is held
    sells nothing, as the analyst's would (``no_position``). All runs step together."""
    cycles, width = prices.shape
    trades = min(len(buys) + len(sells), cycles)
    if cycles == 0 or width == 0:
        return np.zeros(runs)
    rng = np.random.default_rng(seed)
    sizes = np.asarray([*buys, *sells], dtype=float)[:trades]
    is_buy = np.asarray([True] * len(buys) + [False] * len(sells), dtype=bool)[:trades]
    # Each run: distinct cycles, in time order; which of them buy and which sell is shuffled.
    when = np.sort(np.stack([rng.choice(cycles, trades, replace=False) for _ in range(runs)]), axis=1) if trades else \
        np.zeros((runs, 0), dtype=int)
    order = np.stack([rng.permutation(trades) for _ in range(runs)]) if trades else np.zeros((runs, 0), dtype=int)
    cash, held, rows = np.ones(runs), np.zeros((runs, width)), np.arange(runs)
    buy_rank, sell_rank = np.zeros(runs, dtype=int), np.zeros(runs, dtype=int)
    filled = np.nan_to_num(prices)
    n_buys = int(is_buy.sum())
    buy_sizes, sell_sizes = sizes[is_buy], sizes[~is_buy]
    buying_all = is_buy[order]
    # Every buy's symbol, drawn up front: uniform among the symbols priced at its cycle (-1: none).
    priced = ~np.isnan(prices)
    slots = np.argsort(~priced, axis=1, kind="stable")  # per cycle, its priced symbols first
    available = priced.sum(axis=1)[when]
    slot = np.minimum((rng.random(when.shape) * available).astype(int), width - 1)
    picks = np.where(available > 0, slots[when, slot], -1)
    for step in range(trades):
        buying = buying_all[:, step]
        price_now = filled[when[:, step]]  # runs x symbols
        if buying.any():
            # The same share of equity as the analyst's buy of that rank, in the symbol drawn for it.
            pick = picks[:, step]
            value = cash + np.einsum("rs,rs->r", held, price_now)
            size = buy_sizes[np.minimum(buy_rank, max(n_buys - 1, 0))]
            spend = np.where(buying & (pick >= 0), np.minimum(size * value, cash / (1 + cost_rate)), 0.0)
            price_pick = price_now[rows, np.maximum(pick, 0)]
            held[rows, np.maximum(pick, 0)] += np.where(spend > 0, spend / np.where(price_pick > 0, price_pick, 1.0), 0.0)
            cash -= spend * (1 + cost_rate)
            buy_rank += buying
        if not buying.all():
            # A random held symbol, the same share of it as the analyst's sell of that rank.
            choice = _random_member(rng, held > 0)
            share = sell_sizes[np.minimum(sell_rank, max(len(sell_sizes) - 1, 0))]
            selling = ~buying & (choice >= 0)
            qty = np.where(selling, held[rows, np.maximum(choice, 0)] * share, 0.0)
            held[rows, np.maximum(choice, 0)] -= qty
            cash += qty * price_now[rows, np.maximum(choice, 0)] * (1 - cost_rate)
            sell_rank += ~buying
    final = cash + np.sum(held * filled[-1], axis=1)
    return (final - 1) * 100


def _random_member(rng: np.random.Generator, allowed: np.ndarray) -> np.ndarray:
    """Per row, the index of a uniformly chosen True column; -1 where there is none."""
    counts = allowed.sum(axis=1)
    target = np.floor(rng.random(len(allowed)) * np.maximum(counts, 1)).astype(int)
    position = np.cumsum(allowed, axis=1) - 1
    hit = allowed & (position == target[:, None])
    return np.where(counts > 0, hit.argmax(axis=1), -1)


def percentile(value: float, sample: np.ndarray) -> float:
    """Share of ``sample`` below ``value``, ties counted half, in percent."""
    if not len(sample):
        return float("nan")
    tie = np.isclose(sample, value, rtol=1e-9, atol=1e-9)  # the same outcome, reached by other arithmetic
    below = np.sum((sample < value) & ~tie) + 0.5 * np.sum(tie)
    return float(below / len(sample) * 100)


def histogram(sample: np.ndarray, bins: int = 30) -> dict[str, list[float]]:
    """``{"edges": [...], "counts": [...]}`` of ``sample`` (edges one longer than counts)."""
    if not len(sample):
        return {"edges": [], "counts": []}
    low, high = float(np.min(sample)), float(np.max(sample))
    if high == low:
        low, high = low - 0.5, high + 0.5
    counts, edges = np.histogram(sample, bins=bins, range=(low, high))
    return {"edges": [round(float(e), 4) for e in edges], "counts": [int(c) for c in counts]}
