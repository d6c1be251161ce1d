"""What ``tradecycle status`` and ``killswitch`` show: the switch and its history,
the last cycle, the account, positions with their exit levels, open orders and limits."""

from __future__ import annotations

from typing import Any

from rich.console import Console, RenderableType
from rich.text import Text
from tradecycle.render.console import (
    Col,
    default_console,
    duration,
    grid,
    print_table,
    say,
    signed,
    status_text,
)


# -- status ----------------------------------------------------------------------

LIMIT_LABELS = {
    "max_positions_count": ("open positions", ""),
    "max_position_size_percent": ("largest position, % equity", "%"),
    "max_total_exposure_percent": ("all positions, % equity", "%"),
    "daily_loss_limit_percent": ("today's loss, % prev. close", "%"),
}

# The protective exits (stop / target prices) slot in here as two more Col()s.
POSITION_COLUMNS = [
    Col("symbol", "symbol"),
    Col("qty", "qty", right=True),
    Col("avg entry", "avg_entry_price", right=True, hide=2),
    Col("price", "current_price", right=True),
    Col("value", "market_value", right=True),
    Col("unrealized P&L", lambda p: signed(p["unrealized_pl"]), right=True),
    Col("stop (away)", lambda p: _level(p, "stop_loss", "trailing_stop"), right=True),
    Col("target (away)", lambda p: _level(p, "take_profit"), right=True, hide=1),
]


def _level(position: dict[str, Any], *kinds: str) -> str:
    """The nearest of a position's exit prices of these kinds, with its distance from the price."""
    found = [(position.get(f"{k}_price"), position.get(f"{k}_distance_percent")) for k in kinds if position.get(f"{k}_price")]
    if not found:
        return "-"
    price, away = min(found, key=lambda f: abs(f[1] or 0))
    return f"{price} ({away:+.1f}%)"

OPEN_ORDER_COLUMNS = [
    Col("symbol", "symbol"),
    Col("side", "side"),
    Col("notional", "notional_usd", right=True),
    Col("stop", "stop_price", right=True, hide=2),
    Col("filled qty", "filled_qty", right=True, hide=2),
    Col("status", "status"),
    Col("client order id", "client_order_id"),
    Col("sent", "created_at", hide=1),
]


def _limit_row(key: str, use: dict[str, Any]) -> dict[str, Any]:
    label, unit = LIMIT_LABELS.get(key, (key, ""))
    used, limit = use.get("used"), use.get("limit")
    share = None if used is None or not limit else float(used) / float(limit) * 100
    style = "" if share is None else "bold red" if share >= 100 else "yellow" if share >= 80 else "green"
    return {
        "key": f"risk.{key}",
        "label": label,
        "used": "-" if used is None else f"{used:g}{unit}",
        "limit": f"{limit:g}{unit}",
        "share": Text("-" if share is None else f"{share:.0f}%", style=style),
    }


LIMIT_COLUMNS = [
    Col("config key", "key"),
    Col("used", "used", right=True),
    Col("limit", "limit", right=True),
    Col("use", "share", right=True),
    Col("measures", "label", text=True, hide=1),
]


def status(data: dict[str, Any], console: Console | None = None) -> None:
    """Kill switch, last cycle, account and today's P&L as name / value lines,
    then positions, open orders and the use of each risk limit as tables: one
    screen (24 lines at 80 columns) for one position."""
    console = console or default_console()
    if not data.get("database_exists", True):
        say(console, f"no database yet at {data['database']} (nothing has run with this config)", "yellow")
    rows: list[tuple[str, RenderableType]] = [("kill switch", _kill_switch(data["kill_switch"]))]
    last = data.get("last_cycle")
    rows += _last_cycle(last) if last else [("last cycle", Text("none yet (try `tradecycle run --dry-run`)"))]
    account = data.get("account")
    rows += _account(account) if account else [("account", Text("not synced yet (no cycle has reached the broker)"))]
    console.print(grid(rows))
    if outage := data.get("outage"):
        say(console, f"outage: {outage['cycles']} cycle(s) aborted since {outage['since']} ({outage['minutes']} min), "
                       f"each retried the next minute; last: {outage['error']}", "yellow")
    positions = data.get("positions") or []
    console.print()
    if positions:
        print_table(console, "positions", POSITION_COLUMNS, positions)
    else:
        say(console, "positions: none open")
    if missing := (data.get("broker_held_stops") or {}).get("missing"):
        say(console, "no stop at the broker for " + "; ".join(f"{s} ({why})" for s, why in missing.items())
            + ": the cycle protects them itself, only while it runs", "yellow")
    if orders := data.get("open_orders") or []:
        console.print()
        print_table(console, "open orders (they count against the limits until they fill)", OPEN_ORDER_COLUMNS, orders)
    console.print()
    print_table(console, "risk limits", LIMIT_COLUMNS, [_limit_row(k, v) for k, v in (data.get("limits") or {}).items()])


def _kill_switch(switch: dict[str, Any]) -> Text:
    since = f" (since {switch['changed_at']})" if switch.get("changed_at") else ""
    if switch["active"]:
        return Text(f"ON: no order will be sent. {switch.get('reason') or 'no reason given'}{since}", style="bold red")
    return Text(f"off: cycles trade normally{since}", style="green")


def _switch_state(change: dict[str, Any]) -> Text:
    if not change["active"]:
        return Text("off", style="green")
    return Text("ON, flatten" if change["flatten"] else "ON", style="bold red")


KILL_SWITCH_CHANGE_COLUMNS = [
    Col("when (UTC)", "changed_at"),
    Col("state", _switch_state),
    Col("by", "changed_by"),
    Col("reason", lambda c: c["reason"] or "", text=True),
    Col("cycle", lambda c: c["cycle_id"] or "", hide=1),
]


def kill_switch_changes(changes: list[dict[str, Any]], console: Console | None = None) -> None:
    """The last few changes of the kill switch, newest first (``killswitch`` with no argument)."""
    console = console or default_console()
    by_tool = any(c["cycle_id"] for c in changes)  # a person's change has no cycle: no empty column
    columns = [c for c in KILL_SWITCH_CHANGE_COLUMNS if by_tool or c.header != "cycle"]
    print_table(console, "last changes", columns, changes)


def _last_cycle(last: dict[str, Any]) -> list[tuple[str, RenderableType]]:
    text = Text(f"{last['cycle_id']} ")
    text.append_text(status_text(last))
    if last.get("dry_run"):
        text.append(" (dry run)")
    skipped = last.get("status") == "skipped"
    if skipped:  # why it was skipped, once: it decided nothing, so no error count
        orders = last.get("orders_count") or 0
        text.append(f": {last.get('error') or 'no reason recorded'}"
                    + (f"; {orders} closing order(s) sent" if orders else ""))
    else:
        text.append(f": {last.get('orders_count') or 0} order(s), {last.get('errors_count') or 0} error(s)")
    ago = f" ({ago_text(last['age_seconds'])} ago)" if last.get("age_seconds") is not None else ""
    text.append(f"\nstarted {last['started_at']}{ago}, took {duration(last.get('duration_ms'))}")
    rows: list[tuple[str, RenderableType]] = [("last cycle", text)]
    if last.get("stale"):
        rows.append(("no cycle since", Text(f"no cycle has run for {ago_text(last['age_seconds'])}: is cron running? "
                                            "(`crontab -l`; see crontab.example)", style="bold red")))
    if last.get("error") and not skipped:
        rows.append(("error", Text(last["error"], style="red")))
    return rows


def ago_text(seconds: int) -> str:
    """``45 s``, ``12 min``, ``3 h 5 min``, ``2 d 4 h``."""
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _account(account: dict[str, Any]) -> list[tuple[str, RenderableType]]:
    pnl = signed(account["daily_pnl"])
    if account.get("daily_pnl_percent") is not None:
        pnl.append(f" ({account['daily_pnl_percent']:+.2f}%)")
    pnl.append(f" vs. previous close {account['last_equity']}")
    return [
        ("account", f"equity {account['equity']}, cash {account['cash']} ({account.get('status')})\n"
                    f"synced {account.get('synced_at')}"),
        ("today's P&L", pnl),
    ]
