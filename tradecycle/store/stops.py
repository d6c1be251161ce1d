"""The sell stops held at the broker, as the trades table records them
(``order_type`` ``stop`` or ``stop_limit``): the ones that stand, and the
last word of the broker on each symbol's stop (for ``status``)."""

from __future__ import annotations

from typing import Any

from tradecycle.models import FINAL_TRADE_STATUSES, STOP_ORDER_TYPES
from tradecycle.store.db import Database

_STOP = f"order_type IN ({', '.join(repr(t) for t in STOP_ORDER_TYPES)})"
_NOT_FINAL = f"status NOT IN ({', '.join(repr(s) for s in FINAL_TRADE_STATUSES)})"


def open_stops(db: Database, symbol: str | None = None) -> list[dict[str, Any]]:
    """Stop orders not final yet (open at the broker, or sent and not confirmed), oldest first."""
    where = f"{_STOP} AND {_NOT_FINAL}" + (" AND symbol = ?" if symbol else "")
    return db.query(f"SELECT * FROM trades WHERE {where} ORDER BY id", (symbol,) if symbol else ())


def last_stop(db: Database, symbol: str) -> dict[str, Any] | None:
    """The newest stop order of ``symbol``, whatever its state."""
    return db.one(f"SELECT * FROM trades WHERE {_STOP} AND symbol = ? ORDER BY id DESC LIMIT 1", (symbol,))


def stop_cover(db: Database, symbols: list[str]) -> dict[str, dict[str, Any]]:
    """symbol -> what protects it at the broker: ``{"stop_price", "order_type",
    "time_in_force", "status"}`` of its open stop, or ``{"missing": why}``."""
    cover: dict[str, dict[str, Any]] = {}
    for symbol in symbols:
        standing = open_stops(db, symbol)
        if standing:
            stop = standing[-1]
            cover[symbol] = {k: stop[k] for k in ("stop_price", "limit_price", "order_type", "time_in_force", "status", "quantity")}
            continue
        last = last_stop(db, symbol)
        if last is None:
            why = "no stop placed yet"
        elif last["status"] == "rejected":
            why = f"the broker refused it: {last['notes'] or 'no reason given'}"
        elif last["status"] == "filled":
            why = "its stop filled"
        else:
            why = f"its last stop is {last['status']}"
        cover[symbol] = {"missing": why}
    return cover


class BrokerStops:
    """The ``Store``'s side of the broker-held stops."""

    db: Database

    def open_stops(self, symbol: str | None = None) -> list[dict[str, Any]]:
        return open_stops(self.db, symbol)

    def last_stop(self, symbol: str) -> dict[str, Any] | None:
        return last_stop(self.db, symbol)

    def trade(self, client_order_id: str) -> dict[str, Any] | None:
        return self.db.one("SELECT * FROM trades WHERE client_order_id = ?", (client_order_id,))
