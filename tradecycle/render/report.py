"""``tradecycle report``: one self-contained HTML file, built from data.

Pure: ``build_html(data)`` takes what ``app.report`` gathered and returns the
page as a string; nothing here reads the database or the clock. The page needs
no network to open: plotly.js, the styles and the data are all inline, and a
Content-Security-Policy forbids the page any request at all.

Sections: a summary (performance and P&L from the scorecard), the equity curve
against the buy-and-hold benchmark, the drawdown, the P&L of each UTC day, the
scorecard per analyst (main, shadows, replays), the positions with their
protective exit levels (as ``status`` shows them), and the last trades with the
decision and reasoning that led to each.

plotly is imported only in ``build_html``: nothing on the cycle's or the kill
switch's path ever loads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from html import escape
from typing import Any

from tradecycle.render import verdict_html
from tradecycle.rules import scorecard

MAX_CHART_POINTS = 2000  # a year of minute cycles is thinned to this many points per line
LAST_TRADES = 25
SECTIONS = {
    "verdict": "Verdict",
    "summary": "Summary",
    "equity": "Equity vs. buy and hold",
    "drawdown": "Drawdown",
    "daily-pnl": "P&L per day (UTC)",
    "scorecard": "Scorecard per analyst",
    "positions": "Positions",
    "trades": "Last trades and their reasoning",
}
# Chart colours (the browser test looks for them in the screenshot).
EQUITY_COLOR, BENCHMARK_COLOR, MATCHED_COLOR, CASH_COLOR = "#1f77b4", "#ff7f0e", "#9467bd", "#7f7f7f"
DRAWDOWN_COLOR, GAIN_COLOR, LOSS_COLOR = "#d62728", "#2ca02c", "#d62728"
# No toolbar: plotly's floats over the top right of the chart and covers the lines (drag still zooms,
# a double click resets).
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "displayModeBar": False}
GAP_FACTOR = 4  # a step between chart points this many times the usual one is a gap (a closure): no line across it
# The page may run its own inline scripts and styles and show inline images; it may fetch nothing.
CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; font-src data:"
EXIT_KINDS = (("stop_loss", "stop-loss"), ("trailing_stop", "trailing stop"), ("take_profit", "take-profit"))


# -- the numbers behind the charts --------------------------------------------------


def chart_points(rows: Sequence[Any], max_points: int = MAX_CHART_POINTS) -> list[Any]:
    """At most ``max_points`` of ``rows``, evenly spaced, always the first and the last."""
    count = len(rows)
    if count <= max_points:
        return list(rows)
    picks = sorted({round(i * (count - 1) / (max_points - 1)) for i in range(max_points)})
    return [rows[i] for i in picks]


def daily_pnl(equity_rows: Sequence[dict[str, Any]]) -> list[tuple[str, Decimal]]:
    """(UTC day, P&L): the day's last equity less the previous day's last (the first
    day: less the first equity recorded). The days add up to last less first equity."""
    closes: dict[str, Decimal] = {}
    for row in equity_rows:
        closes[row["started_at"][:10]] = Decimal(row["equity"])
    previous = Decimal(equity_rows[0]["equity"]) if equity_rows else Decimal(0)
    result = []
    for day, close in closes.items():
        result.append((day, close - previous))
        previous = close
    return result


def with_gaps(times: Sequence[str], *series: Sequence[Any]) -> tuple[list[Any], ...]:
    """``times`` and each of ``series`` with a None point inserted wherever the step
    between two points exceeds ``GAP_FACTOR`` times the median step: plotly draws no
    line across a None, so a weekend or an outage shows as a gap, not a slope."""
    from datetime import datetime

    moments = [datetime.fromisoformat(t) for t in times]
    steps = sorted((b - a).total_seconds() for a, b in zip(moments, moments[1:]))
    if not steps:
        return (list(times), *(list(s) for s in series))
    limit = max(steps[len(steps) // 2], 1) * GAP_FACTOR
    out_times, outs = [], [[] for _ in series]
    for i, moment in enumerate(moments):
        if i and (moment - moments[i - 1]).total_seconds() > limit:
            out_times.append(times[i - 1])  # a point with no value, at the gap's start
            for out in outs:
                out.append(None)
        out_times.append(times[i])
        for out, values in zip(outs, series):
            out.append(values[i])
    return (out_times, *outs)


def benchmark_equity(start_equity: Decimal, start: dict[str, str], prices: dict[str, str] | None) -> Decimal | None:
    """What ``start_equity`` would be worth in the scorecard's buy-and-hold benchmark
    (``scorecard.benchmark_return_percent``) at these prices; None before any."""
    change = scorecard.benchmark_return_percent(start, prices or {})
    return None if change is None else start_equity * (1 + change / 100)


# -- the page ---------------------------------------------------------------------


def build_html(data: dict[str, Any]) -> str:
    """The whole page. ``data``: ``generated_at``, ``since``, ``database``,
    ``database_exists``, ``status`` (``app.status``), ``score`` (``app.score``),
    ``equity`` (``[{cycle_id, started_at, finished_at, equity}]``, oldest first),
    ``benchmark`` (``{"start": {symbol: price}, "at": {cycle_id: {symbol: price}}}``
    for the chart points), ``trades`` (``store.report.last_trades``), ``chain_head``
    (``store.chain.chain_head``: the record's head, shown in the footer; None: nothing written)."""
    charts = _charts(data) if data["equity"] else {}
    verdict = verdict_html.section(data["score"]["analysts"], PLOTLY_CONFIG, data["score"].get("multiple_models"))
    body = [
        _header(data),
        _section("verdict", verdict),
        _section("summary", _summary(data)),
        *(_section(key, charts.get(key) or _empty_chart(data)) for key in ("equity", "drawdown", "daily-pnl")),
        _section("scorecard", _scorecard(data["score"], data["since"])),
        _section("positions", _positions(data["status"])),
        _section("trades", _trades(data["trades"], data["since"])),
        f"<footer>tradecycle report, generated {escape(data['generated_at'])}. Charts: plotly, inline; this file"
        f" needs no network.{_chain_line(data.get('chain_head'))}</footer>",
    ]
    plotly_js = f"<script>{_plotly_js()}</script>" if charts or 'class="plotly-graph-div"' in verdict else ""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tradecycle report</title>
<style>{STYLE}</style>
{plotly_js}
</head>
<body>
{chr(10).join(body)}
</body>
</html>
"""


STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #222; margin: 0 auto; max-width: 1240px; padding: 16px 24px; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; }
h3 { font-size: 14px; margin: 16px 0 6px; }
.meta, .note, footer { color: #666; } footer { margin: 32px 0 8px; font-size: 12px; }
.empty { padding: 16px; background: #f6f6f6; color: #555; border-radius: 4px; }
table { border-collapse: collapse; margin: 4px 0 8px; max-width: 100%; } th, td { padding: 3px 10px; border-bottom: 1px solid #eee; }
th { text-align: left; background: #fafafa; font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.id { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; overflow-wrap: anywhere; }
td.time { white-space: nowrap; } td.why { min-width: 16em; white-space: normal; overflow-wrap: anywhere; }
tr.all td { font-weight: 600; }
.verdict-text { font-size: 16px; font-weight: 600; margin: 4px 0 8px; } .costs { margin: 4px 0 16px; }
.gain { color: #1a7f1a; } .loss { color: #c0262d; } .on { color: #c0262d; font-weight: 600; }
dl.grid { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; margin: 0; } dt { color: #555; } dd { margin: 0; }
"""


def _chain_line(head: dict[str, Any] | None) -> str:
    """The record's chain head: a copy of this page proves the decisions and trades up to it."""
    if not head:
        return ""
    return (f'<br><span id="chain-head">Record: chain head <code>{escape(head["hash"])}</code> (link {head["seq"]},'
            f" {escape(head['linked_at'])}); <code>tradecycle verify --head</code> with it proves every decision and"
            " trade up to it unchanged.</span>")


def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def _section(key: str, content: str) -> str:
    return f'<section id="{key}">\n<h2>{escape(SECTIONS[key])}</h2>\n{content}\n</section>'


def _header(data: dict[str, Any]) -> str:
    rows = data["equity"]
    if rows:
        period = f"{len(rows)} cycles, {_when(rows[0]['started_at'])} to {_when(rows[-1]['started_at'])} (UTC)"
    else:
        period = "no cycle has recorded its equity yet"
    since = f", since {escape(data['since'])}" if data["since"] else ""
    switch = data["status"]["kill_switch"]
    state = (f'<span class="on">kill switch ON</span>: {escape(switch["reason"] or "")}' if switch["active"]
             else "kill switch off")
    run = data.get("backtest")
    backtest = "" if not run else (
        f"\n<p class=\"meta\">Backtest of {escape(run['from'])} to {escape(run['to'])} at {escape(run['interval'])}"
        f" on {escape(run['source'])} history ({escape(run['status'])})."
        + (' <span class="on">CONTAMINATED</span>: a model was asked about days on or before its training cutoff'
           " (--allow-contaminated)." if run["contaminated"] else "") + "</p>")
    return (f"<header><h1>tradecycle report</h1>\n<p class=\"meta\">{escape(data['database'])}: {escape(period)}{since}."
            f" {state}. Generated {escape(data['generated_at'])}.</p>{backtest}</header>")


def _empty_chart(data: dict[str, Any]) -> str:
    if not data["database_exists"]:
        why = f"There is no database at {data['database']} yet: run `tradecycle run` first."
    else:
        why = "No cycle " + ("since then " if data["since"] else "") + "has recorded its equity yet."
    return f'<p class="empty">{escape(why)}</p>'


def _summary(data: dict[str, Any]) -> str:
    perf, pnl = data["score"]["performance"], data["score"]["pnl"]
    account = data["status"]["account"]
    benchmark = _pct(perf["benchmark_return_percent"])
    if perf["benchmark_symbols"]:
        benchmark += escape(f" (equal weights in {', '.join(perf['benchmark_symbols'])}, held from the first cycle)")
    rows = [
        ("equity", f"{_money(perf['start_equity'])} → {_money(perf['end_equity'])} over {perf['cycles']} cycles"
         if perf["cycles"] else "no cycle has recorded its equity yet"),
        ("strategy return", _pct(perf["strategy_return_percent"])),
        ("buy and hold", benchmark),
        ("vs. buy and hold", _pct(perf["vs_benchmark_percent"])),
        ("max drawdown", "-" if perf["max_drawdown_percent"] is None else f"{perf['max_drawdown_percent']}%"),
        ("realized P&L", f"{_signed(pnl['realized_usd'])} (after {escape(pnl['fees_usd'])} fees; first in, first out)"),
        ("unrealized P&L", _signed(pnl["unrealized_usd"])),
    ]
    if account:
        rows.append(("account now", f"equity {_money(account['equity'])}, cash {_money(account['cash'])}; today "
                                    f"{_signed(account['daily_pnl'])} vs. previous close (synced {escape(account['synced_at'] or '-')})"))
    return '<dl class="grid">' + "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"


# -- charts ---------------------------------------------------------------------------


def _charts(data: dict[str, Any]) -> dict[str, str]:
    import plotly.graph_objects as go

    rows = data["equity"]
    values = [Decimal(r["equity"]) for r in rows]
    drawdowns = scorecard.drawdown_percent(values)
    picks = chart_points(range(len(rows)))
    times = [_plot_time(rows[i]["started_at"]) for i in picks]
    start, at = data["benchmark"]["start"], data["benchmark"]["at"]
    held = [benchmark_equity(values[0], start, at.get(rows[i]["cycle_id"])) for i in picks]

    mode = "lines" if len(picks) > 1 else "markers"  # one point draws no line
    gapped, strategy, benchmark, cash, below = with_gaps(
        times, [float(values[i]) for i in picks], [None if h is None else float(h) for h in held],
        [float(values[0])] * len(picks), [-float(drawdowns[i]) for i in picks])
    equity = go.Figure()
    equity.add_scatter(x=gapped, y=strategy, name="strategy equity", mode=mode, line={"color": EQUITY_COLOR, "width": 2})
    if any(h is not None for h in held):
        equity.add_scatter(x=gapped, y=benchmark, name="buy and hold", mode=mode,
                           line={"color": BENCHMARK_COLOR, "width": 2, "dash": "dash"})
    paths = next((a.get("paths") for a in data["score"]["analysts"] if a.get("paths")), None)
    if paths:
        matched_times, matched = with_gaps([_plot_time(t) for t in paths["times"]],
                                           [float(values[0]) * v for v in paths["exposure_matched_buy_and_hold"]])
        equity.add_scatter(x=matched_times, y=matched, name="buy and hold at the strategy's exposure", mode=mode,
                           line={"color": MATCHED_COLOR, "width": 2, "dash": "dot"})
    equity.add_scatter(x=gapped, y=cash, name="cash", mode=mode, line={"color": CASH_COLOR, "width": 1, "dash": "dot"})
    drawdown = go.Figure(go.Scatter(x=gapped, y=below, name="drawdown", mode=mode,
                                    fill="tozeroy", line={"color": DRAWDOWN_COLOR, "width": 1.5}))
    days = daily_pnl(rows)
    daily = go.Figure(go.Bar(x=[d for d, _ in days], y=[float(p) for _, p in days], name="P&L",
                             marker={"color": [GAIN_COLOR if p >= 0 else LOSS_COLOR for _, p in days]}))
    _layout(equity, "USD", 380, legend=True)
    _layout(drawdown, "% below the peak", 260)
    _layout(daily, "USD", 280)
    daily.update_xaxes(type="category" if len(days) < 3 else "date")
    return {
        "equity": _figure(equity, "equity-chart"),
        "drawdown": _figure(drawdown, "drawdown-chart"),
        "daily-pnl": _figure(daily, "daily-pnl-chart"),
    }


def _layout(figure, y_title: str, height: int, legend: bool = False) -> None:
    figure.update_layout(template="plotly_white", height=height, margin={"l": 70, "r": 20, "t": 10, "b": 40},
                         showlegend=legend, legend={"orientation": "h", "y": 1.08, "x": 0}, hovermode="x unified",
                         yaxis={"title": {"text": y_title}})


def _figure(figure, div_id: str) -> str:
    return figure.to_html(full_html=False, include_plotlyjs=False, config=PLOTLY_CONFIG, div_id=div_id)


def _plot_time(stored: str) -> str:
    """A stored UTC time as plotly reads it without shifting it to the viewer's zone."""
    return stored.replace("T", " ").removesuffix("Z")


# -- tables ---------------------------------------------------------------------------


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], classes: dict[int, str] | None = None,
           row_class: Sequence[str] | None = None) -> str:
    """A table of already escaped cells; ``classes``: column -> CSS class (``num`` aligns right)."""
    classes = classes or {}

    def cell(tag: str, i: int, text: str) -> str:
        return f'<{tag} class="{classes[i]}">{text}</{tag}>' if i in classes else f"<{tag}>{text}</{tag}>"

    head = "".join(cell("th", i, escape(h)) for i, h in enumerate(headers))
    body = []
    for n, row in enumerate(rows):
        klass = f' class="{row_class[n]}"' if row_class and row_class[n] else ""
        body.append(f"<tr{klass}>{''.join(cell('td', i, c) for i, c in enumerate(row))}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _numeric(columns) -> dict[int, str]:
    return dict.fromkeys(columns, "num")


def _scorecard(card: dict[str, Any], since: str | None) -> str:
    if not card["analysts"]:
        return f'<p class="empty">No analysed decision {_since_or_yet(since)}.</p>'
    horizons = card["horizons"]
    headers = ["analyst", "role", "symbol", "buy", "sell", "hold", "failed", *(f"hit {h}" for h in horizons),
               f"Brier ({card['calibration_horizon']})"]
    rows, classes = [], []
    for analyst in card["analysts"]:
        for symbol, stats in analyst["symbols"].items():
            actions = stats["decisions"]
            brier = stats["brier"]
            rows.append([
                escape(analyst["analyst"]), escape(analyst["role"]), escape(symbol),
                *(str(actions.get(a, 0)) for a in ("buy", "sell", "hold", "failed")),
                *(_rate(stats["hit_rate"][h]) for h in horizons),
                f"{brier['score']:.4f}" if brier["score"] is not None else f"n too small ({brier['n']})",
            ])
            classes.append("all" if symbol == scorecard.ALL else "")
    parts = [
        f'<p class="note">A buy is a hit when the price is higher at the horizon, a sell when it is lower. '
        f"A rate needs {card['min_count']} decisions, else \"n too small\".</p>",
        _table(headers, rows, _numeric(range(3, len(headers))), classes),
    ]
    if card["agreement"]:
        parts.append("<h3>Agreement with the main analyst (same symbol, same cycle)</h3>")
        parts.append(_table(["analyst", "role", "agreed"],
                            [[escape(a["analyst"]), escape(a["role"]), _rate(a)] for a in card["agreement"]], _numeric([2])))
    by_symbol = card["pnl"]["by_symbol"]
    if by_symbol:
        parts.append("<h3>P&amp;L by symbol (USD)</h3>")
        parts.append(_table(["symbol", "realized", "fees", "unrealized"],
                            [[escape(p["symbol"]), _signed(p["realized_usd"]), escape(p["fees_usd"]), _signed(p["unrealized_usd"])]
                             for p in by_symbol], _numeric([1, 2, 3])))
    return "\n".join(parts)


def _since_or_yet(since: str | None) -> str:
    return f"since {escape(since)}" if since else "yet"


def _rate(rate: dict[str, Any]) -> str:
    if rate["rate"] is None:
        return f"n too small ({rate['n']})"
    return f"{rate['rate'] * 100:.0f}% of {rate['n']}"


def _positions(state: dict[str, Any]) -> str:
    positions = state["positions"]
    if not positions:
        return '<p class="empty">No open position.</p>'
    kinds = [(k, label) for k, label in EXIT_KINDS if any(p.get(f"{k}_price") for p in positions)]
    headers = ["symbol", "qty", "avg entry", "price", "value", "unrealized P&L", *(f"{label} (away)" for _, label in kinds)]
    rows = [[
        escape(p["symbol"]), escape(p["qty"]), escape(p["avg_entry_price"]), escape(p["current_price"]),
        _money(p["market_value"]), _signed(p["unrealized_pl"]),
        *(_level(p, k) for k, _ in kinds),
    ] for p in positions]
    note = ('<p class="note">Protective exits (risk.stop_loss_percent, risk.trailing_stop_percent, risk.take_profit_percent):'
            " the price that sells the position, and how far it is from the price now.</p>")
    return _table(headers, rows, _numeric(range(1, len(headers)))) + note


def _level(position: dict[str, Any], kind: str) -> str:
    price = position.get(f"{kind}_price")
    if not price:
        return "off"
    return f"{escape(price)} ({position[f'{kind}_distance_percent']:+.1f}%)"


def _trades(trades: Sequence[dict[str, Any]], since: str | None) -> str:
    if not trades:
        return f'<p class="empty">No trade {_since_or_yet(since)}.</p>'
    headers = ["sent (UTC)", "cycle id", "symbol", "side", "amount", "fill", "status", "decision", "reasoning"]
    rows = []
    for t in trades:
        amount = f"{_money(t['notional_usd'])} USD" if t["notional_usd"] else f"{escape(t['quantity'] or '-')} qty"
        fill = f"{escape(t['filled_qty'])} @ {escape(t['filled_avg_price'])}" if t["filled_avg_price"] else "-"
        status = escape(t["status"] or "-") + (" (dry run)" if t["dry_run"] and t["status"] != "dry_run" else "")
        if t["decision_id"] is None:
            decision, why = "-", '<span class="note">no decision led to it (e.g. the kill switch\'s flatten)</span>'
        else:
            confidence = "" if t["decision_confidence"] is None else f" {t['decision_confidence']:.2f}"
            decision = f"{escape(t['decision_action'] or '-')}{confidence}, {escape(t['decision_outcome'] or '-')}"
            why = escape(t["decision_reasoning"] or "")
        rows.append([escape(_when(t["created_at"])), escape(t["cycle_id"]), escape(t["symbol"]), escape(t["side"]),
                     amount, fill, status, decision, why])
    return _table(headers, rows, {0: "time", 1: "id", 4: "num", 5: "num", 8: "why"})


# -- formats --------------------------------------------------------------------------


def _money(value: str | None) -> str:
    return "-" if value is None else f"{Decimal(value):,.2f}"


def _signed(value: str | None) -> str:
    """A signed amount, green when a gain and red when a loss."""
    if value is None:
        return "-"
    amount = Decimal(value)
    klass = "gain" if amount > 0 else "loss" if amount < 0 else ""
    text = f"{amount:+,.2f}" if amount else "0.00"
    return f'<span class="{klass}">{text}</span>' if klass else text


def _pct(value: str | None) -> str:
    return "-" if value is None else _signed(value) + "%"


def _when(stored: str | None) -> str:
    """A stored time, to the minute (``2026-11-02 14:03``)."""
    return "-" if not stored else stored.replace("T", " ")[:16]
