"""Rich tables for people (imported only when rendering).

Every function takes an optional ``console``; tests pass one that writes to
a ``StringIO`` at a fixed width. Cell text is never read as rich markup: a
reasoning or a headline with ``[brackets]`` in it is data, printed as is.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from typing import Any

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

# Piped (cron mail, ``| less``, a file), rich assumes 80 columns and cuts ids
# short; a wide line keeps every id whole. COLUMNS, when set, still wins.
PIPE_WIDTH = 160

OUTCOME_STYLE = {
    "ordered": "bold green",
    "dry_run": "green",
    "rejected": "red",
    "error": "red",
    "ai_unavailable": "yellow",
    "ai_invalid": "yellow",
    "kill_switch": "bold red",
}
CYCLE_STATUS_STYLE = {"completed": "green", "skipped": "yellow", "aborted": "bold red", "running": "cyan"}


def default_console() -> Console:
    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        return Console()
    return Console(width=PIPE_WIDTH)


def _cell(value: Any, style: str = "") -> RenderableType:
    if isinstance(value, (Text, Table)):
        return value
    return Text("" if value is None else str(value), style=style)


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(v) for v in row))
    return table


def _fields(title: str, rows: list[tuple[str, Any]]) -> Table:
    """A two-column table of name / value, for one record (fits any width)."""
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for name, value in rows:
        table.add_row(name, _cell(value))
    return table


def _line(console: Console, text: str, style: str = "") -> None:
    console.print(Text(text, style=style), soft_wrap=True)


def _outcome(outcome: str | None) -> Text:
    return Text(outcome or "", style=OUTCOME_STYLE.get(outcome or "", ""))


def _signed(value: Any) -> Text:
    """A money amount, green when positive, red when negative."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return Text("" if value is None else str(value))
    return Text(str(value), style="green" if number > 0 else "red" if number < 0 else "")


# -- run -------------------------------------------------------------------------


STEP_TEXT = {
    "cycle.started": "fetching account, prices and headlines",
    "market.fetched": "analysing",
    "decision": "checking risk and sending orders",
}


@contextmanager
def live_steps(console: Console | None = None):
    """A spinner naming the current step, and a line for each thing that happened."""
    console = console or default_console()
    with console.status("starting the cycle") as spinner:

        def watch(event: str, fields: dict) -> None:
            if event in STEP_TEXT:
                spinner.update(STEP_TEXT[event])
            if event == "market.fetched":
                _line(console, f"✓ fetched {fields.get('quotes')} prices ({fields.get('news_calls')} headline requests)", "green")
            elif event == "order.sent":
                _line(console, f"✓ {fields.get('side')} {fields.get('symbol')} sent: {fields.get('status')}", "green")
            elif event == "order.rejected":
                _line(console, f"✗ {fields.get('symbol')} rejected: {fields.get('message')}", "red")
            elif event == "cycle.note":
                _line(console, f"note: {fields.get('message')}", "yellow")

        yield watch


def cycle_report(report, console: Console | None = None) -> None:
    """One row per symbol (action, confidence, outcome, why), then the summary line."""
    console = console or default_console()
    rows = [[d["symbol"], d["action"], d["confidence"], _outcome(d["outcome"]), d["detail"]] for d in report.decisions]
    console.print(_table(f"cycle {report.cycle_id}", ["symbol", "action", "confidence", "outcome", "detail"], rows))
    _line(console, report.summary_line())


# -- status ----------------------------------------------------------------------

LIMIT_LABELS = {
    "max_positions_count": ("open positions", ""),
    "max_position_size_percent": ("largest position, % of equity", "%"),
    "max_total_exposure_percent": ("all positions, % of equity", "%"),
    "daily_loss_limit_percent": ("today's loss, % of previous close", "%"),
}


def status(data: dict[str, Any], console: Console | None = None) -> None:
    """Kill switch, last cycle, account, positions and the use of each risk limit."""
    console = console or default_console()
    if not data.get("database_exists", True):
        _line(console, f"no database yet at {data['database']} (nothing has run with this config)", "yellow")
    console.print(_kill_switch(data["kill_switch"]))
    last = data.get("last_cycle")
    console.print(_last_cycle(last) if last else Text("last cycle: none yet (try `tradecycle run --dry-run`)"))
    account = data.get("account")
    console.print(_account(account) if account else Text("account: not synced yet (no cycle has reached the broker)"))
    positions = data.get("positions") or []
    console.print(_positions(positions) if positions else Text("positions: none open"))
    orders = data.get("open_orders") or []
    if orders:
        console.print(_table("open orders (they count against the limits until they fill)",
                             ["symbol", "side", "notional", "filled qty", "status", "client order id", "sent"],
                             [[o["symbol"], o["side"], o["notional_usd"], o["filled_qty"], o["status"], o["client_order_id"],
                               o["created_at"]] for o in orders]))
    console.print(_limits(data.get("limits") or {}))


def _kill_switch(switch: dict[str, Any]) -> Table:
    if switch["active"]:
        state = Text("ON: no order will be sent", style="bold red")
    else:
        state = Text("off: cycles trade normally", style="green")
    return _fields("kill switch", [("state", state), ("reason", switch.get("reason") or "-"), ("since", switch.get("changed_at") or "-")])


def _last_cycle(last: dict[str, Any]) -> Table:
    status_text = Text(last["status"] or "", style=CYCLE_STATUS_STYLE.get(last["status"], ""))
    if last.get("dry_run"):
        status_text.append(" (dry run)")
    ms = last.get("duration_ms")
    duration = "-" if ms is None else f"{ms} ms" if ms < 1000 else f"{ms / 1000:.1f} s"
    rows = [
        ("cycle", last["cycle_id"]),
        ("started", last["started_at"]),
        ("finished", last.get("finished_at") or "-"),
        ("status", status_text),
        ("duration", duration),
        ("orders", last.get("orders_count")),
        ("errors", last.get("errors_count")),
    ]
    if last.get("error"):
        rows.append(("error", Text(last["error"], style="red")))
    return _fields("last cycle", rows)


def _account(account: dict[str, Any]) -> Table:
    pnl = _signed(account["daily_pnl"])
    if account.get("daily_pnl_percent") is not None:
        pnl.append(f" ({account['daily_pnl_percent']:+.2f}%)")
    return _fields(
        "account",
        [
            ("equity", account["equity"]),
            ("cash", account["cash"]),
            ("previous close", account["last_equity"]),
            ("today's P&L", pnl),
            ("status", account.get("status")),
            ("synced", account.get("synced_at")),
        ],
    )


def _positions(positions: list[dict[str, Any]]) -> Table:
    return _table(
        "positions",
        ["symbol", "qty", "entry", "price", "value", "unrealized P&L"],
        [[p["symbol"], p["qty"], p["avg_entry_price"], p["current_price"], p["market_value"], _signed(p["unrealized_pl"])]
         for p in positions],
    )


def _limits(limits: dict[str, dict[str, Any]]) -> Table:
    rows = []
    for key, use in limits.items():
        label, unit = LIMIT_LABELS.get(key, (key, ""))
        used, limit = use.get("used"), use.get("limit")
        share = None if used is None or not limit else float(used) / float(limit) * 100
        style = "" if share is None else "bold red" if share >= 100 else "yellow" if share >= 80 else "green"
        rows.append([
            f"risk.{key}",
            label,
            "-" if used is None else f"{used:g}{unit}",
            f"{limit:g}{unit}",
            Text("-" if share is None else f"{share:.0f}%", style=style),
        ])
    return _table("risk limits", ["limit", "measures", "used", "limit", "use of limit"], rows)


# -- history and explain ---------------------------------------------------------------

HISTORY_COLUMNS = {
    "cycles": ["cycle_id", "started_at", "status", "dry_run", "duration_ms", "orders_count", "errors_count", "error"],
    "trades": ["created_at", "cycle_id", "symbol", "side", "notional_usd", "quantity", "price", "status", "broker_order_id", "notes"],
    "decisions": ["created_at", "cycle_id", "symbol", "action", "confidence", "outcome", "span", "price", "reasoning"],
}


def _span(row: dict[str, Any]) -> str:
    """A row that stood for several cycles in a row (store/spans.py): until when, how many."""
    repeats = row.get("repeats") or 0
    return f"until {row.get('last_seen_at')} ({repeats + 1} cycles)" if repeats else ""


def history(kind: str, rows: list[dict[str, Any]], console: Console | None = None) -> None:
    console = console or default_console()
    columns = [c for c in HISTORY_COLUMNS[kind] if c != "span" or any(row.get("repeats") for row in rows)]
    if not rows:
        _line(console, f"no {kind} yet")
        return
    shown = {"outcome": lambda row: _outcome(row.get("outcome")), "span": _span}
    cells = [[shown[c](row) if c in shown else row.get(c) for c in columns] for row in rows]
    console.print(_table(kind, columns, cells))


def explain(story: dict[str, Any], console: Console | None = None) -> None:
    """What one cycle saw (prices, headlines), decided (per symbol, with the
    reasoning and the outcome) and did (orders)."""
    console = console or default_console()
    cycle = story["cycle"]
    header = Text(f"cycle {cycle['cycle_id']}", style="bold")
    header.append(f": {cycle['status']}{' (dry run)' if cycle['dry_run'] else ''}, {cycle['started_at']} -> {cycle['finished_at'] or '?'}")
    console.print(header, soft_wrap=True)
    if cycle.get("error"):
        _line(console, f"  error: {cycle['error']}", "red")
    if story["quotes"]:
        console.print(_table("prices seen", ["symbol", "price", "as of", "source", "day change %", "span"],
                             [[q["symbol"], q["price"], q["as_of"], q["source"], q["change_percent"], _span(q)] for q in story["quotes"]]))
    if story["decisions"]:
        spans = any(d.get("repeats") for d in story["decisions"])  # a column only when some row stood for several cycles
        rows = [[d["symbol"], _price_seen(d), d["action"], d["confidence"], _outcome(d["outcome"]), d.get("detail"), d["reasoning"]]
                + ([_span(d)] if spans else []) for d in story["decisions"]]
        console.print(_table("decisions", ["symbol", "price (age, source)", "action", "confidence", "outcome", "risk verdict",
                                           "reasoning"] + (["span"] if spans else []), rows))
    else:
        _line(console, "no decisions recorded in this cycle")
    headlines = [[d["symbol"], h.get("title")] for d in story["decisions"] for h in ((d.get("inputs") or {}).get("headlines") or [])]
    if headlines:
        console.print(_table("headlines the analyst saw", ["symbol", "headline"], headlines))
    if story["trades"]:
        console.print(_table("orders", ["symbol", "side", "notional", "qty", "status", "fill price", "filled at", "client order id",
                                        "broker order id", "notes"],
                             [[t["symbol"], t["side"], t["notional_usd"], t["quantity"], t["status"], t["filled_avg_price"],
                               t["executed_at"], t["client_order_id"], t["broker_order_id"], t["notes"]] for t in story["trades"]]))
    for note in (cycle.get("summary") or {}).get("notes") or []:
        _line(console, f"note: {note}", "yellow")


# -- check -----------------------------------------------------------------------


def _price_seen(decision: dict[str, Any]) -> str:
    if decision.get("price") is None:
        return "-"
    age = decision.get("quote_age_seconds")
    return f"{decision['price']} ({'?' if age is None else f'{age:.0f}s'}, {decision.get('quote_source') or '?'})"


def check(result: dict[str, Any], console: Console | None = None) -> None:
    """The config verdict, which variables are set (names only) and, after
    ``--online``, what each service answered."""
    console = console or default_console()
    _line(console, f"config {result['config']}: valid")
    _line(console, "providers: " + ", ".join(f"{k}={v}" for k, v in result["providers"].items()))
    for name, is_set in result["environment"].items():
        need = " (required)" if name in result["required"] else ""
        _line(console, f"  {name}: {'set' if is_set else 'not set'}{need}")
    services = result.get("services")
    if services:
        rows = [[s["service"], s["provider"], Text("OK", style="green") if s["ok"] else Text("FAILED", style="bold red"),
                 s["detail"], "-" if s["elapsed_ms"] is None else f"{s['elapsed_ms']} ms"] for s in services]
        console.print(_table("services", ["service", "provider", "result", "detail", "time"], rows))
