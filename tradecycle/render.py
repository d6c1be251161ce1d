"""Rich tables for people at a terminal (imported only when rendering)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()

OUTCOME_STYLE = {
    "ordered": "bold green",
    "dry_run": "green",
    "rejected": "red",
    "error": "red",
    "ai_unavailable": "yellow",
    "ai_invalid": "yellow",
    "kill_switch": "bold red",
}


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    return table


STEP_TEXT = {
    "cycle.started": "fetching account, prices and headlines",
    "market.fetched": "analysing",
    "decision": "checking risk and sending orders",
}


@contextmanager
def live_steps(out: Console | None = None):
    """A spinner naming the current step, and one line per decision as it is settled."""
    out = out or console
    with out.status("starting the cycle") as spinner:

        def watch(event: str, fields: dict) -> None:
            if event in STEP_TEXT:
                spinner.update(STEP_TEXT[event])
            if event == "market.fetched":
                out.print(f"[green]✓[/] fetched {fields.get('quotes')} prices ({fields.get('news_calls')} headline requests)")
            elif event == "order.sent":
                out.print(f"[green]✓[/] {fields.get('side')} {fields.get('symbol')} sent: {fields.get('status')}")
            elif event == "order.rejected":
                out.print(f"[red]✗[/] {fields.get('symbol')} rejected: {fields.get('message')}")
            elif event == "cycle.note":
                out.print(f"  [yellow]note:[/] {fields.get('message')}")

        yield watch


def _styled(outcome: str) -> str:
    style = OUTCOME_STYLE.get(outcome)
    return f"[{style}]{outcome}[/]" if style else outcome


def cycle_report(report, out: Console | None = None) -> None:
    out = out or console
    rows = [[d["symbol"], d["action"], d["confidence"], _styled(d["outcome"]), d["detail"]] for d in report.decisions]
    out.print(_table(f"cycle {report.cycle_id}", ["symbol", "action", "confidence", "outcome", "detail"], rows))
    out.print(report.summary_line(), highlight=False)


def status(data: dict[str, Any]) -> None:
    switch = data["kill_switch"]
    if switch["active"]:
        console.print(f"[bold red]KILL SWITCH ON[/] since {switch['changed_at']}: {switch['reason']}")
    else:
        console.print(f"[green]kill switch off[/]{' since ' + switch['changed_at'] if switch['changed_at'] else ''}")
    last = data["last_cycle"]
    if last:
        console.print(
            _table("last cycle", ["cycle", "started", "status", "duration", "orders", "errors"],
                   [[last["cycle_id"], last["started_at"], last["status"] + (" (dry run)" if last["dry_run"] else ""),
                     f"{(last['duration_ms'] or 0) / 1000:.1f}s", last["orders_count"], last["errors_count"]]])
        )
        if last["error"]:
            console.print(f"  [red]{last['error']}[/]")
    else:
        console.print("no cycle yet: try `tradecycle run --dry-run`")
    account = data["account"]
    if account:
        console.print(
            _table("account", ["equity", "cash", "previous close", "today's P&L"],
                   [[account["equity"], account["cash"], account["last_equity"],
                     f"{account['daily_pnl']} ({account['daily_pnl_percent']:+.2f}%)" if account["daily_pnl_percent"] is not None else account["daily_pnl"]]])
        )
    positions = data["positions"]
    console.print(
        _table("positions", ["symbol", "qty", "entry", "price", "value", "unrealized P&L"],
               [[p["symbol"], p["qty"], p["avg_entry_price"], p["current_price"], p["market_value"], p["unrealized_pl"]] for p in positions])
        if positions else "no open positions"
    )
    console.print(
        _table("risk limits", ["limit", "used", "limit value"],
               [[name, "-" if use["used"] is None else use["used"], use["limit"]] for name, use in data["limits"].items()])
    )


HISTORY_COLUMNS = {
    "cycles": ["cycle_id", "started_at", "status", "dry_run", "duration_ms", "orders_count", "errors_count", "error"],
    "trades": ["created_at", "cycle_id", "symbol", "side", "notional_usd", "quantity", "price", "status", "broker_order_id", "notes"],
    "decisions": ["created_at", "cycle_id", "symbol", "action", "confidence", "outcome", "price", "reasoning"],
}


def history(kind: str, rows: list[dict[str, Any]]) -> None:
    columns = HISTORY_COLUMNS[kind]
    if not rows:
        console.print(f"no {kind} yet")
        return
    console.print(_table(kind, columns, [[row.get(c) for c in columns] for row in rows]))


def explain(story: dict[str, Any]) -> None:
    cycle = story["cycle"]
    console.print(f"[bold]cycle {cycle['cycle_id']}[/]: {cycle['status']}{' (dry run)' if cycle['dry_run'] else ''}, "
                  f"{cycle['started_at']} -> {cycle['finished_at']}")
    if cycle.get("error"):
        console.print(f"  [red]error:[/] {cycle['error']}")
    if story["quotes"]:
        console.print(_table("prices seen", ["symbol", "price", "as of", "source", "day change %"],
                             [[q["symbol"], q["price"], q["as_of"], q["source"], q["change_percent"]] for q in story["quotes"]]))
    rows = []
    for d in story["decisions"]:
        headlines = "; ".join(h["title"] for h in (d.get("inputs") or {}).get("headlines") or [])
        rows.append([d["symbol"], d["action"], d["confidence"], d["outcome"], d.get("detail"), d["reasoning"], headlines[:120]])
    console.print(_table("decisions", ["symbol", "action", "confidence", "outcome", "risk verdict", "reasoning", "headlines"], rows))
    if story["trades"]:
        console.print(_table("orders", ["symbol", "side", "notional", "qty", "status", "client order id", "broker order id", "notes"],
                             [[t["symbol"], t["side"], t["notional_usd"], t["quantity"], t["status"], t["client_order_id"],
                               t["broker_order_id"], t["notes"]] for t in story["trades"]]))
    notes = (cycle.get("summary") or {}).get("notes") or []
    for note in notes:
        console.print(f"[yellow]note:[/] {note}")
