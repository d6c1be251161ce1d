"""The significance tests of the verdict, as pure functions.

No SQL, no I/O; scipy and arch are imported here, and only ``score`` and
``report`` import this module (never ``run`` or ``killswitch``).

- **Hit rate against chance**: a one-sided binomial test of the buys and sells
  that were right (``scorecard.is_hit`` at the calibration horizon) against
  50 %, and against the base rate: for each symbol, the share of its scored
  decision points (whatever the action) after which the price rose (for a
  buy) or fell (for a sell), averaged over the analyst's buys and sells.
- **Decisions needed**: how many scored buys and sells a one-sided test at
  5 % needs to tell this hit rate (or, when it is not above the base rate,
  the base rate plus 5 points) from the base rate with 80 % power.
- **Intervals**: a 95 % circular block bootstrap (arch) of the return in
  excess of a baseline. The cycles are grouped into at most ``MAX_PERIODS``
  periods of consecutive cycles; the interval is that of the sum of the
  periods' excess returns (in percentage points), blocks of about the cube
  root of the number of periods, since returns are not independent.
- **Several models tried**: Hansen's SPA test (arch) over every analyst's
  decision returns (main, shadows, replays) per cycle, against holding cash:
  can the best of them be told from luck, allowing for having tried them all
  (only when two or more analysts were asked; cycles averaged into at most
  ``MAX_PERIODS`` runs of consecutive cycles).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import Any

import numpy as np

SEED = 25
BOOTSTRAP_REPS = 1000
MAX_PERIODS = 400
ALPHA = 0.05
POWER = 0.8
MIN_EFFECT = 0.05  # when the hit rate is not above the base rate: the smallest edge worth detecting


def preload() -> None:
    """Import scipy.stats and arch (about a second: arch loads pandas and its models),
    e.g. on a worker thread while the database is read."""
    import arch.bootstrap  # noqa: F401
    import scipy.stats  # noqa: F401


# -- hit rate ---------------------------------------------------------------------------


def binomial_p_value(hits: int, n: int, rate: float) -> float | None:
    """P(at least ``hits`` right of ``n``) if each were right with probability ``rate``; None without decisions."""
    if n == 0:
        return None
    from scipy.stats import binomtest

    return float(binomtest(hits, n, min(max(rate, 0.0), 1.0), alternative="greater").pvalue)


def base_rates(points: Sequence[Mapping[str, Any]]) -> dict[str, tuple[float, float]]:
    """Per symbol: (share of decision points after which the price rose, share after
    which it fell). ``points``: ``symbol``, ``price``, ``later`` (floats)."""
    tally: dict[str, list[int]] = {}
    for point in points:
        up_down_n = tally.setdefault(point["symbol"], [0, 0, 0])
        up_down_n[0] += point["later"] > point["price"]
        up_down_n[1] += point["later"] < point["price"]
        up_down_n[2] += 1
    return {s: (up / n, down / n) for s, (up, down, n) in tally.items()}


def null_hit_rate(decisions: Sequence[Mapping[str, Any]], rates: Mapping[str, tuple[float, float]]) -> float | None:
    """The hit rate a coin weighted by each symbol's base rate would get on these buys and sells."""
    chances = [rates[d["symbol"]][0 if d["action"] == "buy" else 1] for d in decisions if d["symbol"] in rates]
    return sum(chances) / len(chances) if chances else None


def decisions_needed(null_rate: float, true_rate: float, alpha: float = ALPHA, power: float = POWER) -> int | None:
    """Scored decisions a one-sided binomial test at ``alpha`` needs to detect ``true_rate``
    against ``null_rate`` with ``power`` (normal approximation); None when there is nothing to detect."""
    if not 0 < null_rate < true_rate < 1:
        return None
    z_alpha, z_power = NormalDist().inv_cdf(1 - alpha), NormalDist().inv_cdf(power)
    spread = z_alpha * math.sqrt(null_rate * (1 - null_rate)) + z_power * math.sqrt(true_rate * (1 - true_rate))
    return math.ceil((spread / (true_rate - null_rate)) ** 2)


def detection_target(hit_rate: float | None, null_rate: float) -> float:
    """The hit rate ``decisions_needed`` aims at: the observed one when above the base rate, else the base rate + 5 points."""
    if hit_rate is not None and hit_rate > null_rate + 0.005:
        return hit_rate
    return min(null_rate + MIN_EFFECT, 0.99)


# -- returns ----------------------------------------------------------------------------


def period_returns(values: np.ndarray, periods: int = MAX_PERIODS) -> np.ndarray:
    """Returns of a value path over at most ``periods`` runs of consecutive cycles."""
    if len(values) < 2:
        return np.zeros(0)
    cuts = np.unique(np.linspace(0, len(values) - 1, min(periods, len(values) - 1) + 1).round().astype(int))
    return values[cuts[1:]] / values[cuts[:-1]] - 1


def block_size(length: int) -> int:
    return max(1, round(length ** (1 / 3)))


def excess_intervals(strategy: np.ndarray, against: Mapping[str, np.ndarray], reps: int = BOOTSTRAP_REPS,
                     seed: int = SEED) -> dict[str, list[float] | None]:
    """Per baseline, the 95 % circular block bootstrap interval (percentile method) of the
    summed excess of ``strategy`` over it per period, in percentage points (one resampling
    of the periods serves every baseline); None under 2 periods."""
    mine = period_returns(strategy)
    return sum_intervals({name: (mine - period_returns(values)) * 100 for name, values in against.items()}, reps, seed)


def sum_interval(series: np.ndarray, reps: int = BOOTSTRAP_REPS, seed: int = SEED) -> list[float] | None:
    """95 % circular block bootstrap interval of ``series.sum()``; None under 2 points."""
    return sum_intervals({"x": series}, reps, seed)["x"]


def sum_intervals(columns: Mapping[str, np.ndarray], reps: int = BOOTSTRAP_REPS,
                  seed: int = SEED) -> dict[str, list[float] | None]:
    """``sum_interval`` of each series (all of one length), from the same resampled blocks."""
    names = list(columns)
    length = len(columns[names[0]]) if names else 0
    if length < 2:
        return dict.fromkeys(names)
    matrix = np.column_stack([columns[n] for n in names])
    from arch.bootstrap import CircularBlockBootstrap

    bootstrap = CircularBlockBootstrap(block_size(length), matrix, seed=np.random.default_rng(seed))
    bounds = bootstrap.conf_int(lambda x: x.sum(axis=0), reps=reps, method="percentile", size=0.95)
    result = {}
    for i, name in enumerate(names):
        if np.all(matrix[:, i] == matrix[0, i]):  # every resample is the same series
            total = round(float(matrix[:, i].sum()), 4)
            result[name] = [total, total]
        else:
            result[name] = [round(float(bounds[0, i]), 4), round(float(bounds[1, i]), 4)]
    return result


def spa_p_value(losses: Mapping[str, np.ndarray], reps: int = BOOTSTRAP_REPS, seed: int = SEED) -> float | None:
    """Hansen's SPA p-value (consistent) that no analyst beats holding cash (loss 0)
    once it is allowed for that several were tried; None with fewer than 10 periods.
    A long series is first averaged over at most ``MAX_PERIODS`` runs of consecutive periods."""
    names = sorted(losses)
    if not names or len(losses[names[0]]) < 10:
        return None
    models = np.column_stack([losses[n] for n in names])
    if len(models) > MAX_PERIODS:
        groups = np.array_split(np.arange(len(models)), MAX_PERIODS)
        models = np.vstack([models[g].mean(axis=0) for g in groups])
    if np.all(models == 0):
        return 1.0
    from arch.bootstrap import SPA

    test = SPA(np.zeros(len(models)), models, block_size=block_size(len(models)), reps=reps,
               seed=np.random.default_rng(seed))
    test.compute()
    return float(test.pvalues["consistent"])


# -- the verdict in words ---------------------------------------------------------------


def random_entry_p_value(value: float, sample: np.ndarray) -> float | None:
    """One-sided: the share of random runs that did at least as well (the analyst counted in)."""
    if not len(sample):
        return None
    return float((np.sum(sample >= value) + 1) / (len(sample) + 1))


def verdict_text(scored: int, p_random: float | None, percentile: float | None, hit_rate: float | None,
                 null_rate: float | None, hit_p: float | None, needed: int | None, target: float | None,
                 basis: str) -> str:
    """One line: better than, worse than or not distinguishable from random entry, after how
    many decisions, with the p-value; the hit rate against its base rate; the decisions needed."""
    on = "net return" if basis == "equity" else "its decisions' returns"
    if p_random is None or percentile is None:
        head = f"nothing to judge yet after {scored} scored decisions"
    elif p_random < ALPHA:
        head = f"better than random entry on {on} after {scored} decisions (p = {p_random:.2f})"
    elif percentile <= ALPHA * 100:
        head = f"worse than random entry on {on} after {scored} decisions (percentile {percentile:.0f})"
    else:
        head = f"not distinguishable from random entry after {scored} decisions (p = {p_random:.2f})"
    parts = [head]
    if hit_rate is not None and null_rate is not None and hit_p is not None:
        parts.append(f"hit rate {hit_rate:.0%} against a base rate of {null_rate:.0%} (p = {hit_p:.2f})")
    if needed is not None and target is not None:
        parts.append(f"about {needed} decisions to detect a {target:.0%} hit rate")
    return "; ".join(parts)
