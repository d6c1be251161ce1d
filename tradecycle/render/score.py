"""What ``tradecycle score`` and ``replay`` show."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console
from rich.text import Text
from tradecycle.render.console import (
    Col,
    default_console,
    grid,
    outcome_text,
    print_table,
    say,
    signed,
)


# -- score and replay ------------------------------------------------------------

HORIZON_LABELS = {"15m": "15 min", "1h": "1 h", "1d": "1 day"}


def _rate(cell: dict[str, Any]) -> str:
    """``57% of 21``, or ``n too small`` when fewer decisions than the minimum count."""
    if not cell["n"]:
        return "-"
    return "n too small" if cell["rate"] is None else f"{cell['rate'] * 100:.0f}% of {cell['n']}"


def _count(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda row: row["stats"]["decisions"].get(key, 0)


def _hit(horizon: str) -> Callable[[dict[str, Any]], Any]:
    return lambda row: _rate(row["stats"]["hit_rate"][horizon])


def _analyst_columns(horizons: Sequence[str]) -> list[Col]:
    return [
        Col("symbol", "symbol"),
        Col("buy", _count("buy"), right=True),
        Col("sell", _count("sell"), right=True),
        Col("hold", _count("hold"), right=True),
        Col("failed", _count("failed"), right=True, hide=1),
        *(Col(f"hit {HORIZON_LABELS.get(h, h)}", _hit(h), right=True) for h in horizons),
    ]


AGREEMENT_COLUMNS = [
    Col("analyst", "analyst"),
    Col("role", "role"),
    Col("same action as main", lambda a: _rate(a), right=True),
]
TOKEN_COLUMNS = [
    Col("day (UTC)", "day"),
    Col("analyst", "analyst"),
    Col("role", "role", hide=1),
    Col("requests", "requests", right=True),
    Col("prompt tokens", "prompt_tokens", right=True),
    Col("completion tokens", "completion_tokens", right=True),
]
PNL_COLUMNS = [
    Col("symbol", "symbol"),
    Col("realized", lambda p: signed(p["realized_usd"]), right=True),
    Col("fees", "fees_usd", right=True),
    Col("unrealized", lambda p: signed(p["unrealized_usd"]), right=True),
]


def _analyst_blocks(card: dict[str, Any], console: Console) -> None:
    """Per analyst: a table of its symbols (decisions by action, hit rates), then its calibration line."""
    for entry in card["analysts"]:
        rows = [{"symbol": symbol, "stats": stats} for symbol, stats in entry["symbols"].items()]
        console.print()
        print_table(console, f"{entry['analyst']} ({entry['role']})", _analyst_columns(card["horizons"]), rows)
        overall = entry["symbols"]["all"]
        brier = overall["brier"]
        score = "-" if not brier["n"] else "n too small" if brier["score"] is None else f"{brier['score']:.4f}"
        bands = ", ".join(f"{b['band']}: {_rate(b)}" for b in overall["bands"] if b["n"])
        horizon = HORIZON_LABELS.get(card["calibration_horizon"], card["calibration_horizon"])
        say(console, f"calibration at {horizon}: Brier {score} (n={brier['n']}; 0 is perfect, 0.25 a coin flip)"
                       + (f"; hit rate by confidence: {bands}" if bands else ""))
        if entry.get("verdict"):
            _verdict_lines(entry, console)


BASELINE_LABELS = {"cash": "cash", "buy_and_hold": "buy and hold",
                   "exposure_matched_buy_and_hold": "buy and hold at its exposure"}


def _verdict_lines(entry: dict[str, Any], console: Console) -> None:
    """The verdict in words, then each baseline with the 95 % interval of the excess, then the costs."""
    verdict = entry["verdict"]
    say(console, f"verdict: {verdict['text']}", "bold")
    measured = "net return" if entry["basis"] == "equity" else "return of its decisions (one stake each, to the horizon)"
    parts = []
    for key, label in BASELINE_LABELS.items():
        base = entry["baselines"].get(key)
        if base is None:
            continue
        interval = base["excess_ci95"]
        ci = f", 95% interval {interval[0]:+.2f} to {interval[1]:+.2f}" if interval else ""
        parts.append(f"{label} {base['return_percent']}% (excess {base['excess_percent']}{ci})")
    random = entry["baselines"]["random_entry"]
    if random["percentile"] is not None:
        parts.append(f"random entry median {random['median_return_percent']}% (percentile {random['percentile']:.0f}"
                     f" of {random['runs']} runs)")
    say(console, f"{measured} {entry['return_percent']}% vs " + "; ".join(parts))
    costs = entry["costs"]
    net = "" if entry["net_pnl_usd"] is None else f"; P&L gross {entry['gross_pnl_usd']}, net {entry['net_pnl_usd']} USD"
    say(console, f"costs: tokens {costs['tokens_usd']}, slippage {costs['slippage_usd']}, fees {costs['fees_usd']} USD{net}")


def score(card: dict[str, Any], console: Console | None = None) -> None:
    """The scorecard: each analyst's decisions and hit rates, agreement with the main
    analyst, tokens per day, P&L and performance against buy-and-hold."""
    console = console or default_console()
    filters = card.get("filters") or {}
    used = ", ".join(f"{k} {v}" for k, v in filters.items() if v and k in ("since", "model", "symbol"))
    say(console, f"scorecard ({used or 'all decisions'}); a rate needs {card['min_count']} decisions, "
                   "else 'n too small'", "bold")
    if filters.get("contaminated"):
        counted = "counted (--include-contaminated)" if filters.get("include_contaminated") else \
            "left out (--include-contaminated counts them)"
        say(console, f"{filters['contaminated']} decisions about a moment on or before their model's training cutoff: {counted}")
    if not card["analysts"]:
        say(console, "no analysed decisions " + ("match" if used else "yet"))
    _analyst_blocks(card, console)
    models = card.get("multiple_models") or {}
    if models.get("p_value") is not None and len(models["models"]) > 1:
        say(console, f"{len(models['models'])} analysts tried: the best of them beats holding cash with p = "
                     f"{models['p_value']:.2f} once that is allowed for (Hansen's SPA test, {models['periods']} cycles)")
    if card["agreement"]:
        console.print()
        print_table(console, "agreement with the main analyst (same symbol, same cycle)", AGREEMENT_COLUMNS, card["agreement"])
    if card["tokens_per_day"]:
        console.print()
        print_table(console, "tokens per day", TOKEN_COLUMNS, card["tokens_per_day"])
    pnl, perf = card["pnl"], card["performance"]
    console.print()
    realized = signed(pnl["realized_usd"])
    realized.append(f" (after {pnl['fees_usd']} fees; first in, first out)")

    def pct(value: str | None) -> Text:
        return Text("-") if value is None else signed(value).append("%")

    benchmark = pct(perf["benchmark_return_percent"])
    if perf["benchmark_symbols"]:
        benchmark.append(f" (equal weights in {', '.join(perf['benchmark_symbols'])}, held from the first cycle)")
    equity = (f"{perf['start_equity']} -> {perf['end_equity']} over {perf['cycles']} cycles" if perf["cycles"]
              else "no cycle has recorded its equity yet")
    console.print(grid([
        ("realized P&L", realized),
        ("unrealized P&L", signed(pnl["unrealized_usd"])),
        ("equity", equity),
        ("strategy return", pct(perf["strategy_return_percent"])),
        ("buy and hold", benchmark),
        ("vs buy and hold", pct(perf["vs_benchmark_percent"])),
        ("max drawdown", Text("-" if perf["max_drawdown_percent"] is None else f"{perf['max_drawdown_percent']}%")),
    ]))
    if pnl["by_symbol"]:
        console.print()
        print_table(console, "P&L by symbol (USD)", PNL_COLUMNS, pnl["by_symbol"])


def _said(decision: dict[str, Any]) -> Text:
    if decision["outcome"] in ("ai_unavailable", "ai_invalid"):
        return outcome_text(decision["outcome"])
    confidence = "-" if decision["confidence"] is None else f"{decision['confidence']:.2f}"
    return Text(f"{decision['action']} {confidence}")


REPLAY_COLUMNS = [
    Col("cycle id", "cycle_id"),
    Col("symbol", "symbol"),
    Col("recorded", lambda p: _said(p["recorded"])),
    Col("replayed", lambda p: _said(p["replayed"])),
    Col("same", lambda p: "yes" if p["agree"] else "no"),
    Col("replayed reasoning", lambda p: p["replayed"]["reasoning"], text=True, hide=1),
]
WHY_LIMIT = 10  # a window's replay lists more pairs than anyone reads whole


def replay(result: dict[str, Any], console: Console | None = None) -> None:
    """Both decisions side by side; for a few, both reasonings whole; for a window, the scores."""
    console = console or default_console()
    pairs = result["replayed"]
    same = sum(1 for p in pairs if p["agree"])
    of = (f" of cycle {result['cycle_id']}" + (" (the last one asked)" if result.get("asked_for") == "last" else "")
          if result.get("cycle_id") else f" since {result['since']}" if result.get("since") else "")
    say(console, f"replayed {len(pairs)} recorded request(s){of} on {result['model']} at {result['base_url']}: "
                   f"{same} of {len(pairs)} with the same action", "bold")
    print_table(console, None, REPLAY_COLUMNS, pairs)
    if len(pairs) <= WHY_LIMIT:
        console.print()
        for p in pairs:
            console.print(Text(f"{p['symbol']} in {p['cycle_id']}", style="bold"))
            console.print(grid([
                (f"recorded ({p['recorded']['analyst']})", " ".join(str(p["recorded"]["reasoning"] or "").split())),
                (f"replayed ({p['replayed']['analyst']})", " ".join(str(p["replayed"]["reasoning"] or "").split())),
            ]))
    if result.get("score"):
        _analyst_blocks(result["score"], console)
        if result["score"]["agreement"]:
            console.print()
            print_table(console, "agreement with the main analyst", AGREEMENT_COLUMNS, result["score"]["agreement"])
