"""``tradecycle status``: the kill switch, the last cycle, the account, the
positions with their exit levels, and the use of each risk limit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tradecycle.commands.common import now, reading
from tradecycle.infra import paths
from tradecycle.infra.times import parse_iso


def status(config_option: str | None, db_option: str | None) -> dict[str, Any]:
    """Kill switch, last cycle, account, positions, today's P&L and the use of each limit."""
    from decimal import Decimal

    from tradecycle.config import load_config
    from tradecycle.store import reads
    from tradecycle.store.stops import stop_cover

    config = load_config(paths.config_path(config_option))
    db_path = Path(db_option).expanduser() if db_option else config.database_path
    with reading(db_path) as db:
        agent = reads.agent_status(db) if db else {}
        positions = reads.positions(db) if db else []
        orders = reads.open_orders(db) if db else []
        last = reads.last_cycle(db) if db else None
        outage = reads.outage(db) if db else None
        marks = reads.position_marks(db) if db else {}
        longs = [p["symbol"] for p in positions if Decimal(p["qty"]) > 0]
        cover = stop_cover(db, longs) if db and config.broker_held_stops else {}
    positions = [p | _exit_levels(config.risk.exits(), p, marks.get(p["symbol"])) for p in positions]
    positions = [p | ({"broker_stop": cover[p["symbol"]]} if p["symbol"] in cover else {}) for p in positions]
    if outage:
        outage["minutes"] = round((now() - parse_iso(outage["since"])).total_seconds() / 60)
    account = None
    if agent.get("equity") is not None:
        equity, last_equity = Decimal(agent["equity"]), Decimal(agent["last_equity"])
        pnl = equity - last_equity
        account = {
            "equity": agent["equity"],
            "last_equity": agent["last_equity"],
            "cash": agent["cash"],
            "buying_power": agent["buying_power"],
            "status": agent["account_status"],
            "synced_at": agent["account_synced_at"],
            "daily_pnl": str(pnl),
            "daily_pnl_percent": _pct(pnl, last_equity),
        }
    return {
        "kill_switch": {
            "active": bool(agent.get("kill_switch_active")),
            "reason": agent.get("kill_switch_reason"),
            "changed_at": agent.get("kill_switch_changed_at"),
            "flatten": bool(agent.get("kill_switch_flatten")),
            "cleanup_done_at": agent.get("kill_switch_cleanup_at"),  # open orders cancelled (and, with flatten, all sold)
        },
        "last_cycle": _cycle_view(last),
        "outage": outage,
        "account": account,
        "positions": positions,
        # risk.broker_held_stops: the long positions with no stop at the broker, and why (the cycle protects them alone)
        "broker_held_stops": {
            "enabled": config.broker_held_stops,
            "missing": {s: c["missing"] for s, c in cover.items() if "missing" in c},
        },
        "open_orders": orders,
        "limits": _limit_use(config.risk, account, positions, orders),
        "database": str(db_path),
        "database_exists": db_path.exists(),
    }


def _exit_levels(rules, position: dict, high: str | None) -> dict[str, Any]:
    """Each protective exit's price for a position and how far it is from the price now
    (percent of the price; negative: below it). Off exits are left out."""
    from decimal import Decimal

    from tradecycle.rules import exits

    price, entry = Decimal(position["current_price"]), Decimal(position["avg_entry_price"])
    if Decimal(position["qty"]) <= 0 or entry <= 0:
        return {}
    levels = exits.levels(rules, entry, Decimal(high) if high else price)
    view = {}
    for kind in ("stop_loss", "take_profit", "trailing_stop"):
        level = getattr(levels, kind)
        if level is not None:
            step = Decimal("0.01") if level >= 1 else Decimal("0.000001")
            view[f"{kind}_price"] = str(level.quantize(step))
            view[f"{kind}_distance_percent"] = exits.distance_percent(price, level)
    return view


def _pct(part, whole) -> float | None:
    return round(float(part / whole * 100), 2) if whole else None


# Cron starts a cycle every minute: three minutes without one means it stopped (or cron did).
STALE_AFTER_SECONDS = 180


def _cycle_view(row: dict | None) -> dict | None:
    """The last cycle, with how long ago it started (``age_seconds``) and whether that
    is longer than cron would ever leave it (``stale``: more than three minutes)."""
    if row is None:
        return None
    keys = ("cycle_id", "started_at", "finished_at", "status", "dry_run", "error", "duration_ms", "orders_count", "errors_count")
    view = {k: row.get(k) for k in keys}
    view["dry_run"] = bool(view["dry_run"])
    age = max(0, int((now() - parse_iso(row["started_at"])).total_seconds())) if row.get("started_at") else None
    view["age_seconds"] = age
    view["stale"] = age is not None and age > STALE_AFTER_SECONDS
    return view


def _limit_use(risk, account: dict | None, positions: list[dict], orders: list[dict]) -> dict[str, dict]:
    """How much of each limit is used, counting what open buys may still buy (as the risk check does)."""
    from decimal import Decimal

    equity = Decimal(account["equity"]) if account else Decimal(0)
    by_symbol = {p["symbol"]: abs(Decimal(p["market_value"])) for p in positions}  # gross: a short adds too
    for order in orders:
        if order["side"] == "buy" and order["notional_usd"]:
            filled = Decimal(order["filled_qty"] or 0) * Decimal(order["filled_avg_price"] or order["price"] or 0)
            by_symbol[order["symbol"]] = by_symbol.get(order["symbol"], Decimal(0)) + max(Decimal(order["notional_usd"]) - filled, Decimal(0))
    values = list(by_symbol.values())
    loss = -Decimal(str(account["daily_pnl_percent"] or 0)) if account else Decimal(0)
    return {
        "max_positions_count": {"used": len(by_symbol), "limit": risk.max_positions_count},
        "max_position_size_percent": {"used": _pct(max(values, default=Decimal(0)), equity), "limit": float(risk.max_position_size_percent)},
        "max_total_exposure_percent": {"used": _pct(sum(values, Decimal(0)), equity), "limit": float(risk.max_total_exposure_percent)},
        "daily_loss_limit_percent": {"used": float(max(loss, Decimal(0))), "limit": float(risk.daily_loss_limit_percent)},
    }
