"""What ``cycles``, ``trades``, ``decisions`` and ``explain`` show."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text
from tradecycle.render.console import (
    DECIDED_COLUMNS,
    Col,
    default_console,
    duration,
    grid,
    outcome_text,
    print_table,
    say,
    status_text,
)


# -- history -----------------------------------------------------------------------

HISTORY_COLUMNS: dict[str, list[Col]] = {
    "cycles": [
        Col("cycle id", "cycle_id"),
        Col("started", "started_at", hide=3),
        Col("status", status_text),
        Col("dry run", lambda c: "yes" if c.get("dry_run") else "", hide=2),
        Col("orders", "orders_count", right=True),
        Col("errors", "errors_count", right=True, hide=1),
        Col("took", lambda c: duration(c.get("duration_ms")), right=True, hide=4),
        Col("error", "error", text=True),
    ],
    "trades": [
        Col("time", "created_at", hide=4),
        Col("cycle id", "cycle_id"),
        Col("symbol", "symbol"),
        Col("side", lambda t: t["side"] if t.get("order_type") in (None, "market") else f"{t['side']} {t['order_type']} {t['stop_price']}"),
        Col("notional", "notional_usd", right=True),
        Col("qty", "quantity", right=True, hide=1),
        Col("quoted", "price", right=True, hide=3),
        Col("fill price", "filled_avg_price", right=True, hide=2),
        Col("status", "status"),
        Col("broker order id", "broker_order_id", hide=5),
        Col("notes", "notes", text=True, hide=1),
    ],
    "decisions": [
        Col("time", "created_at", hide=3),
        Col("cycle id", "cycle_id"),
        *DECIDED_COLUMNS,
        Col("span", lambda d: _span(d), hide=2),  # the reasoning matters more on a narrow terminal
        Col("price", "price", right=True, hide=2),
        Col("reasoning", "reasoning", text=True, hide=1),
    ],
}


def _span(row: dict[str, Any]) -> str:
    """A row that stood for several cycles in a row (store/spans.py): until when, how many."""
    repeats = row.get("repeats") or 0
    return f"until {row.get('last_seen_at')} ({repeats + 1} cycles)" if repeats else ""


def _with_spans(columns: list[Col], rows: list[dict[str, Any]]) -> list[Col]:
    """The span column only when some row stood for several cycles."""
    return [c for c in columns if c.header != "span" or any(row.get("repeats") for row in rows)]


def history(kind: str, rows: list[dict[str, Any]], filters: dict[str, Any] | None = None,
            console: Console | None = None) -> None:
    """One line per row, newest first. Empty: "no trades yet", or, when
    ``filters`` (option -> value) narrowed it, "no trades match ..."."""
    console = console or default_console()
    if not rows:
        used = " ".join(f"{option} {value}" for option, value in (filters or {}).items() if value)
        say(console, f"no {kind} match {used}" if used else f"no {kind} yet")
        return
    print_table(console, kind, _with_spans(HISTORY_COLUMNS[kind], rows), rows)


# -- explain ---------------------------------------------------------------------

QUOTE_COLUMNS = [
    Col("symbol", "symbol"),
    Col("price", "price", right=True),
    Col("as of", "as_of"),
    Col("source", "source"),
    Col("day change %", "change_percent", right=True),
    Col("span", lambda q: _span(q), hide=1),
]
DECISION_COLUMNS = [
    *DECIDED_COLUMNS,
    Col("price", "price", right=True),
    Col("age", lambda d: "-" if d.get("quote_age_seconds") is None else f"{d['quote_age_seconds']:.0f}s", right=True),
    Col("source", "quote_source"),
    Col("span", lambda d: _span(d), hide=1),
]
HEADLINE_COLUMNS = [Col("symbol", "symbol"), Col("headline", "title", text=True)]
CHALLENGER_COLUMNS = [
    Col("symbol", "symbol"),
    Col("analyst", "analyst"),
    Col("role", "role", hide=2),
    Col("action", "action"),
    Col("conf.", "confidence", right=True),
    Col("outcome", lambda d: outcome_text(d.get("outcome"))),
    Col("reasoning", "reasoning", text=True, hide=1),
]


def explain(story: dict[str, Any], console: Console | None = None) -> None:
    """What one cycle saw (prices, headlines), decided (per symbol: the
    outcome, the risk verdict and the analyst's reasoning, whole) and did (orders)."""
    console = console or default_console()
    cycle = story["cycle"]
    header = Text(f"cycle {cycle['cycle_id']}: ", style="bold")
    header.append_text(status_text(cycle))
    if cycle["dry_run"]:
        header.append(" (dry run)")
    console.print(header)
    say(console, f"started {cycle['started_at']}, finished {cycle['finished_at'] or '?'} ({duration(cycle.get('duration_ms'))})")
    if cycle.get("error"):
        say(console, f"error: {cycle['error']}", "red")
    if story["quotes"]:
        console.print()
        print_table(console, "prices seen", _with_spans(QUOTE_COLUMNS, story["quotes"]), story["quotes"])
    console.print()
    if story["decisions"]:
        print_table(console, "decisions", _with_spans(DECISION_COLUMNS, story["decisions"]), story["decisions"])
        console.print()
        console.print(Text("why", style="bold"))
        console.print(grid([(d["symbol"], _why(d)) for d in story["decisions"]]))
    else:
        say(console, "no decisions recorded in this cycle")
    if story.get("challengers"):
        console.print()
        print_table(console, "shadow and replayed analysts (recorded, never traded)", CHALLENGER_COLUMNS, story["challengers"])
    _market_context(story["decisions"], console)
    headlines = [{"symbol": d["symbol"], "title": h.get("title")}
                 for d in story["decisions"] for h in ((d.get("inputs") or {}).get("headlines") or [])]
    if headlines:
        console.print()
        print_table(console, "headlines the analyst saw", HEADLINE_COLUMNS, headlines)
    if story["trades"]:
        console.print()
        console.print(Text("orders", style="bold"))
        for t in story["trades"]:
            console.print(_order(t))
    for note in (cycle.get("summary") or {}).get("notes") or []:
        say(console, f"note: {note}", "yellow")


def _indicator(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda row: "-" if (row.get("indicators") or {}).get(key) is None else row["indicators"][key]


INDICATOR_COLUMNS = [
    Col("symbol", "symbol"),
    Col("RSI 14", _indicator("rsi_14"), right=True),
    Col("SMA 20", _indicator("sma_20"), right=True),
    Col("SMA 50", _indicator("sma_50"), right=True, hide=2),
    Col("volume ratio", _indicator("volume_ratio"), right=True),
    Col("from 20d high %", _indicator("from_high_20_percent"), right=True, hide=3),
    Col("from 20d low %", _indicator("from_low_20_percent"), right=True, hide=3),
    Col("ATR 14", _indicator("atr_14"), right=True, hide=4),
    Col("volume today", _indicator("volume_today"), right=True, hide=5),
    Col("avg volume 20d", _indicator("avg_volume_20"), right=True, hide=5),
    Col("bars", _indicator("bars_count"), right=True, hide=6),
]


def _market_context(decisions: list[dict[str, Any]], console: Console) -> None:
    """The indicators each symbol's analyst saw, and the portfolio it was shown (once)."""
    seen = [(d["symbol"], d["inputs"]) for d in decisions if "indicators" in (d.get("inputs") or {})]
    if not seen:
        return
    known = [{"symbol": symbol, "indicators": inputs["indicators"]} for symbol, inputs in seen if inputs.get("indicators")]
    console.print()
    if known:
        print_table(console, "indicators the analyst saw (daily bars, TA-Lib)", INDICATOR_COLUMNS, known)
    for symbol, inputs in seen:
        if inputs.get("indicators") is None:
            say(console, f"{symbol}: indicators unavailable: {inputs.get('indicators_unavailable') or 'no daily bars'}", "yellow")
    portfolio = next((inputs["portfolio"] for _, inputs in seen if inputs.get("portfolio")), None)
    if portfolio:
        say(console, f"portfolio the analyst saw: equity {portfolio['equity']} USD, cash {portfolio['cash']} USD, exposure "
                       f"{portfolio['exposure_usd']} USD ({portfolio['exposure_percent']}%, room {portfolio['exposure_room_usd']} USD), "
                       f"{portfolio['positions_count']} positions (room {portfolio['positions_room']})")


def _why(decision: dict[str, Any]) -> Text:
    """The risk verdict, then the analyst's reasoning, whole (wrapped, not cut)."""
    text = Text(f"{decision['action']} -> ")
    text.append_text(outcome_text(decision["outcome"]))
    if decision.get("detail"):
        text.append(f": {decision['detail']}")
    if decision.get("reasoning"):
        text.append("\n" + " ".join(str(decision["reasoning"]).split()), style="italic")
    return text


def _order(trade: dict[str, Any]) -> Table:
    fill = f", filled at {trade['filled_avg_price']} ({trade['executed_at'] or '?'})" if trade.get("filled_avg_price") else ""
    rows: list[tuple[str, RenderableType]] = [
        (f"{trade['symbol']} {trade['side']}",
         f"{trade['status']}: notional {trade['notional_usd'] or '-'}, qty {trade['quantity']}, quoted {trade['price']}{fill}"),
        ("", f"client order id {trade['client_order_id']}"),
        ("", f"broker order id {trade['broker_order_id'] or '-'}"),
    ]
    if trade.get("notes"):
        rows.append(("", f"notes: {trade['notes']}"))
    return grid(rows)
