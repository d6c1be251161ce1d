"""Is the analyst better than chance, and than buy-and-hold, after costs? The
verdict of each analyst, assembled from stored rows by pure functions.

``store/scores.py`` reads the rows, ``baselines.py`` builds the baselines and
``significance.py`` the tests; ``verdicts()`` returns, per analyst, the
``baselines``, ``costs``, ``net_pnl_usd`` (and ``gross_pnl_usd``) and
``verdict`` objects of ``score --json``, plus the multiple-model test.

Two bases:

- **equity** (the main analyst, once two cycles recorded their equity): its
  account's return net of token spend, against cash, buy and hold,
  exposure-matched buy and hold and random entry (``baselines.py``).
- **decisions** (shadows and replays, which never trade, and the main analyst
  before any equity): one equal stake per buy or sell, held to the
  calibration horizon; cash earns 0, buy and hold buys at every decision
  point, random entry deals the same buys and sells at random among the
  analyst's decision points. No exposure, so no exposure-matched baseline.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import numpy as np

from tradecycle.rules import baselines, significance
from tradecycle.rules.scorecard import CALIBRATION_HORIZON, FAILURES

CENT = Decimal("0.01")
BASELINES = ("cash", "buy_and_hold", "exposure_matched_buy_and_hold", "random_entry")


def decision_points(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The rows an analyst answered whose price at the calibration horizon is known."""
    later = f"price_{CALIBRATION_HORIZON}"
    return [
        {"analyst": r["analyst"], "role": r["role"], "cycle_id": r["cycle_id"], "created_at": r["created_at"],
         "symbol": r["symbol"], "action": r["action"], "price": float(r["price"]), "later": float(r[later])}
        for r in rows
        if r["outcome"] not in FAILURES and r.get("price") and r.get(later) and float(r["price"]) > 0
    ]


def signed_return(point: Mapping[str, Any]) -> float:
    """What one unit staked on the decision earned by the horizon: long on a buy, short on a sell, nothing on a hold."""
    move = point["later"] / point["price"] - 1
    return move if point["action"] == "buy" else -move if point["action"] == "sell" else 0.0


def token_cost(rows: Sequence[Mapping[str, Any]], prices: tuple[Decimal, Decimal]) -> Decimal:
    """USD of the prompt and completion tokens of ``rows`` at (input, output) USD per million."""
    if not prices[0] and not prices[1]:
        return Decimal(0)  # free (a local model, or no price set): no need to count
    prompt = sum(int(r.get("prompt_tokens") or 0) for r in rows)
    completion = sum(int(r.get("completion_tokens") or 0) for r in rows)
    return (prompt * prices[0] + completion * prices[1]) / Decimal(1_000_000)


def slippage(fills: Sequence[Mapping[str, Any]]) -> Decimal:
    """USD lost to fills worse than the quote the decision saw (a buy above it, a sell below); negative when better."""
    total = Decimal(0)
    for fill in fills:
        if fill.get("quote_price") in (None, ""):
            continue
        gap = Decimal(fill["filled_avg_price"]) - Decimal(fill["quote_price"])
        total += (gap if fill["side"] == "buy" else -gap) * Decimal(fill["filled_qty"])
    return total


def verdicts(rows: Sequence[Mapping[str, Any]], equity_rows: Sequence[Mapping[str, Any]],
             prices: Mapping[str, Sequence[float | None]], fills: Sequence[Mapping[str, Any]],
             token_prices: Mapping[str, tuple[Decimal, Decimal]], account_pnl: Decimal | None,
             since: str | None = None, runs: int = baselines.RANDOM_RUNS, paths: bool = False) -> dict[str, Any]:
    """``{"analysts": {(analyst, role): {...}}, "multiple_models": {...}}``.

    ``rows``: the scored decisions; ``equity_rows``: the cycles measured (thinned
    by ``baselines.sample_points``), oldest first; ``prices``: symbol -> price at
    each of those cycles (None before its first quote); ``fills``: the main
    account's fills with the quote its order was sized at (all of them: the
    holdings; those at or after ``since``: the costs and the random entry's
    trades); ``token_prices``: model -> (input, output) USD per million tokens;
    ``account_pnl``: the scorecard's P&L, used when no equity was recorded.
    ``paths``: the equity basis also gives ``paths`` (times, and each baseline's
    value at them, starting at 1.0) for the report's chart."""
    points = decision_points(rows)
    rates = significance.base_rates({(p["symbol"], p["created_at"]): p for p in points}.values())
    by_analyst: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        by_analyst[(row["analyst"], row["role"])].append(row)
    window = [f for f in fills if since is None or (f["filled_at"] or "") >= since]
    mine: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for point in points:
        mine[(point["analyst"], point["role"])].append(point)
    # The account is the main analyst's: with one in the window, it is judged on it; when the main
    # model (or its prompt) changed within the window, the account mixes them, so each is judged
    # on its own decisions, and the account's P&L is nobody's alone.
    mains = [key for key in by_analyst if key[1] == "main"]
    result = {}
    for key, members in by_analyst.items():
        tokens = token_cost(members, token_prices.get(members[0]["model"], (Decimal(0), Decimal(0))))
        trades = key[1] == "main" and len(mains) == 1
        if trades and len(equity_rows) >= 2:
            entry = _equity_basis(equity_rows, prices, fills, window, tokens, runs)
            if not paths:
                entry.pop("paths")
        else:
            entry = _decision_basis(mine[key], runs)
        costs = {"tokens_usd": tokens, "slippage_usd": slippage(window) if trades else Decimal(0),
                 "fees_usd": _fees(window) if trades else Decimal(0)}
        account_change = entry.pop("pnl_usd", None)  # equity's change: after fees and slippage, before tokens
        net = None
        if trades:
            net = (account_change if account_change is not None else (account_pnl or Decimal(0))) - tokens
        entry["costs"] = {k: _money(v) for k, v in costs.items()}
        entry["net_pnl_usd"] = _money(net) if net is not None else None
        entry["gross_pnl_usd"] = _money(net + sum(costs.values(), Decimal(0))) if net is not None else None
        entry["verdict"] = _verdict(entry, mine[key], rates)
        result[key] = entry
    return {"analysts": result, "multiple_models": _multiple_models(points, sorted(by_analyst))}


def _fees(fills: Sequence[Mapping[str, Any]]) -> Decimal:
    return sum((Decimal(f.get("fee_usd") or 0) for f in fills), Decimal(0))


def _equity_basis(equity_rows, prices, fills, window, tokens: Decimal, runs: int) -> dict[str, Any]:
    times = [r["finished_at"] or r["started_at"] for r in equity_rows]
    equity = np.asarray([float(r["equity"]) for r in equity_rows])
    symbols = sorted(prices)
    matrix = np.asarray([[np.nan if v is None else float(v) for v in prices[s]] for s in symbols], dtype=float).T \
        if symbols else np.zeros((len(times), 0))
    start = equity[0]
    steps = np.linspace(0, 1, len(equity))
    strategy = equity / start - float(tokens) / start * steps  # token spend spread evenly over the period
    universe = baselines.buy_and_hold(matrix)
    share = baselines.exposure(matrix, baselines.holdings(times, symbols, fills), equity)
    matched = baselines.exposure_matched(universe, share)
    net_return = (strategy[-1] - 1) * 100
    buys, sells = baselines.order_sizes(fills, times, equity, since=times[0])
    traded = sum(float(f["filled_qty"]) * float(f["filled_avg_price"]) for f in window)
    cost_rate = max(float(_fees(window) + slippage(window)) / traded, 0.0) if traded else 0.0
    sample = baselines.random_entry(matrix, buys, sells, cost_rate, runs)
    intervals = significance.excess_intervals(strategy, {"cash": np.ones(len(strategy)), "buy_and_hold": universe,
                                                         "matched": matched})
    return {
        "basis": "equity",
        "paths": {"times": list(times), "buy_and_hold": [round(float(v), 6) for v in universe],
                  "exposure_matched_buy_and_hold": [round(float(v), 6) for v in matched]},
        "return_percent": _pct(net_return),
        "pnl_usd": Decimal(str(equity[-1] - start)).quantize(CENT),
        "baselines": {
            "cash": _baseline(0.0, net_return, intervals["cash"]),
            "buy_and_hold": _baseline((universe[-1] - 1) * 100, net_return, intervals["buy_and_hold"]),
            "exposure_matched_buy_and_hold": _baseline((matched[-1] - 1) * 100, net_return, intervals["matched"])
            | {"mean_exposure_percent": _pct(float(np.mean(share)) * 100)},
            "random_entry": _random(net_return, sample, len(buys), len(sells)),
        },
    }


def _decision_basis(points: Sequence[Mapping[str, Any]], runs: int) -> dict[str, Any]:
    ordered = sorted(points, key=lambda p: (p["created_at"], p["symbol"]))
    signed = np.asarray([signed_return(p) for p in ordered]) * 100
    staked = [p for p in ordered if p["action"] in ("buy", "sell")]
    moves = np.asarray([(p["later"] / p["price"] - 1) * 100 if p["action"] in ("buy", "sell") else 0.0 for p in ordered])
    total = float(signed.sum())
    actions = np.asarray([1 if p["action"] == "buy" else -1 if p["action"] == "sell" else 0 for p in ordered])
    every_move = np.asarray([(p["later"] / p["price"] - 1) * 100 for p in ordered])
    rng = np.random.default_rng(baselines.SEED)
    sample = rng.permuted(np.tile(actions, (runs, 1)), axis=1) @ every_move if len(ordered) else np.zeros(0)
    intervals = significance.sum_intervals({"cash": signed, "buy_and_hold": signed - moves})
    return {
        "basis": "decisions",
        "return_percent": _pct(total),
        "baselines": {
            "cash": _baseline(0.0, total, intervals["cash"]),
            "buy_and_hold": _baseline(float(moves.sum()), total, intervals["buy_and_hold"]),
            "exposure_matched_buy_and_hold": None,
            "random_entry": _random(total, sample, sum(p["action"] == "buy" for p in staked),
                                    sum(p["action"] == "sell" for p in staked)),
        },
    }


def _baseline(value: float, strategy: float, interval: list[float] | None) -> dict[str, Any]:
    return {"return_percent": _pct(value), "excess_percent": _pct(strategy - value), "excess_ci95": interval}


def _random(value: float, sample: np.ndarray, buys: int, sells: int) -> dict[str, Any]:
    return {
        "runs": len(sample), "buys": buys, "sells": sells,
        "median_return_percent": _pct(float(np.median(sample))) if len(sample) else None,
        "percentile": round(baselines.percentile(value, sample), 1) if len(sample) else None,
        "p_value": significance.random_entry_p_value(value, sample),
        "histogram": baselines.histogram(sample),
    }


def _verdict(entry: Mapping[str, Any], points: Sequence[Mapping[str, Any]], rates) -> dict[str, Any]:
    scored = [p for p in points if p["action"] in ("buy", "sell")]
    hits = sum(p["later"] > p["price"] if p["action"] == "buy" else p["later"] < p["price"] for p in scored)  # scorecard.is_hit
    hit_rate = hits / len(scored) if scored else None
    null = significance.null_hit_rate(scored, rates)
    p_base = significance.binomial_p_value(hits, len(scored), null) if null is not None else None
    p_half = significance.binomial_p_value(hits, len(scored), 0.5)
    target = significance.detection_target(hit_rate, null if null is not None else 0.5)
    needed = significance.decisions_needed(null if null is not None else 0.5, target)
    random = entry["baselines"]["random_entry"]
    informative = scored and random["percentile"] is not None
    text = significance.verdict_text(len(scored), random["p_value"] if informative else None,
                                     random["percentile"] if informative else None, hit_rate, null, p_base, needed,
                                     target, entry["basis"])
    return {
        "text": text,
        "decisions": len(scored),
        "hits": hits,
        "hit_rate": None if hit_rate is None else round(hit_rate, 4),
        "base_rate": None if null is None else round(null, 4),
        "hit_rate_p_value": None if p_base is None else round(p_base, 4),
        "hit_rate_p_value_vs_half": None if p_half is None else round(p_half, 4),
        "excess_return_ci95": {k: v["excess_ci95"] for k, v in entry["baselines"].items()
                               if v is not None and k != "random_entry"},
        "random_entry_percentile": random["percentile"],
        "random_entry_p_value": None if random["p_value"] is None else round(random["p_value"], 4),
        "decisions_needed": needed,
        "decisions_needed_for_hit_rate": round(target, 4),
    }


def _multiple_models(points: Sequence[Mapping[str, Any]], keys: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """SPA over each analyst's mean decision return per cycle (a cycle where it held: 0)."""
    staked = [p for p in points if p["action"] in ("buy", "sell")]
    cycles = sorted({(p["created_at"][:16], p["cycle_id"]) for p in staked})
    index = {c: i for i, (_, c) in enumerate(cycles)}
    column = {key: i for i, key in enumerate(keys)}
    total, count = np.zeros((len(cycles), len(keys))), np.zeros((len(cycles), len(keys)))
    for p in staked:
        at = (index[p["cycle_id"]], column[(p["analyst"], p["role"])])
        total[at] += signed_return(p)
        count[at] += 1
    mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    losses = {f"{analyst} ({role})": -mean[:, i] for (analyst, role), i in column.items()}
    p_value = significance.spa_p_value(losses) if len(keys) > 1 else None  # one analyst: no choice among several
    return {"test": "Hansen's SPA (consistent p-value) against holding cash", "models": sorted(losses),
            "periods": len(cycles), "p_value": None if p_value is None else round(p_value, 4)}


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT))


def _pct(value: float) -> str:
    return f"{value:.2f}"
