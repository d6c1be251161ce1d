"""The report's first section: each analyst's verdict, the random-entry histogram
with the analyst's marker, the baselines with their 95 % intervals, the costs.

Pure: built from ``score``'s analysts (``rules/verdict.py``); plotly is imported
only when a histogram is drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

HISTOGRAM_COLOR, MARKER_COLOR = "#9aa5b1", "#d62728"
BASELINE_LABELS = {"cash": "cash", "buy_and_hold": "buy and hold (equal weights)",
                   "exposure_matched_buy_and_hold": "buy and hold at the strategy's exposure"}


def section(analysts: Sequence[dict[str, Any]], plotly_config: dict[str, Any], multiple: dict[str, Any] | None) -> str:
    """The verdict section's HTML (a note when no analyst was asked yet)."""
    judged = [a for a in analysts if a.get("verdict")]
    if not judged:
        return '<p class="empty">No analysed decision yet: nothing to judge.</p>'
    parts = []
    for number, entry in enumerate(judged):
        parts.append(f'<div class="verdict"><h3>{escape(entry["analyst"])} ({escape(entry["role"])})</h3>'
                     f'<p class="verdict-text">{escape(entry["verdict"]["text"])}</p></div>')
        parts.append(_histogram(entry, plotly_config, "random-entry-chart" if number == 0 else f"random-entry-chart-{number}"))
        parts.append(_baselines(entry))
        parts.append(_costs(entry))
    if multiple and multiple.get("p_value") is not None and len(multiple["models"]) > 1:
        parts.append(f'<p class="note">{len(multiple["models"])} analysts tried: the best of them beats holding cash with '
                     f'p = {multiple["p_value"]:.2f} once that is allowed for (Hansen\'s SPA test over '
                     f'{multiple["periods"]} cycles).</p>')
    parts.append('<p class="note">How to read it: p is the chance that random entry (the same number of buys and sells '
                 "at random cycles and symbols) does at least as well; under 0.05 the analyst is told apart from luck. "
                 "An interval that contains 0 means the excess over that baseline could be chance.</p>")
    return "\n".join(parts)


def _histogram(entry: dict[str, Any], plotly_config: dict[str, Any], div: str) -> str:
    random = entry["baselines"]["random_entry"]
    histogram = random.get("histogram") or {}
    if not histogram.get("counts"):
        return ""
    import plotly.graph_objects as go

    edges, counts = histogram["edges"], histogram["counts"]
    centres = [(a + b) / 2 for a, b in zip(edges, edges[1:])]
    figure = go.Figure(go.Bar(x=centres, y=counts, width=[b - a for a, b in zip(edges, edges[1:])],
                              marker={"color": HISTOGRAM_COLOR}, name="random entry"))
    mine = float(entry["return_percent"])
    figure.add_vline(x=mine, line={"color": MARKER_COLOR, "width": 3},
                     annotation={"text": f"{entry['analyst']}: {mine:+.2f}% (percentile {random['percentile']:.0f})",
                                 "font": {"color": MARKER_COLOR}})
    figure.update_layout(template="plotly_white", height=260, margin={"l": 70, "r": 20, "t": 30, "b": 40}, showlegend=False,
                         bargap=0.02, xaxis={"title": {"text": _measured(entry) + ", %"}},
                         yaxis={"title": {"text": f"runs of {random['runs']}"}})
    return figure.to_html(full_html=False, include_plotlyjs=False, config=plotly_config, div_id=div)


def _measured(entry: dict[str, Any]) -> str:
    return "net return" if entry["basis"] == "equity" else "return of its decisions (one stake each)"


def _baselines(entry: dict[str, Any]) -> str:
    rows = []
    for key, label in BASELINE_LABELS.items():
        base = entry["baselines"].get(key)
        if base is None:
            continue
        interval = base["excess_ci95"]
        ci = f"{interval[0]:+.2f} to {interval[1]:+.2f}" if interval else "-"
        rows.append(f"<tr><td>{escape(label)}</td><td class=\"num\">{escape(base['return_percent'])}%</td>"
                    f"<td class=\"num\">{escape(base['excess_percent'])}</td><td class=\"num\">{escape(ci)}</td></tr>")
    random = entry["baselines"]["random_entry"]
    if random["percentile"] is not None:
        rows.append(f"<tr><td>random entry (median of {random['runs']} runs)</td>"
                    f"<td class=\"num\">{escape(random['median_return_percent'])}%</td>"
                    f"<td class=\"num\">percentile {random['percentile']:.0f}</td><td class=\"num\">p = {random['p_value']:.2f}</td></tr>")
    head = (f"<tr><th>{escape(_measured(entry))}: {escape(entry['return_percent'])}%, against</th><th class=\"num\">return</th>"
            "<th class=\"num\">excess (points)</th><th class=\"num\">95% interval of the excess</th></tr>")
    return f'<table class="baselines"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def _costs(entry: dict[str, Any]) -> str:
    costs = entry["costs"]
    text = f"Costs: tokens {costs['tokens_usd']}, slippage {costs['slippage_usd']}, fees {costs['fees_usd']} USD"
    if entry["net_pnl_usd"] is not None:
        text += f"; P&L gross {entry['gross_pnl_usd']}, net {entry['net_pnl_usd']} USD (the verdict is on net)"
    return f'<p class="costs">{escape(text)}.</p>'
