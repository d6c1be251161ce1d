"""The simulator's books (prices, cash, positions, orders) in the same database.

The simulator stands in for the outside world, so its state lives in its own
``sim_*`` tables, apart from the audit trail; every statement is here.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tradecycle.store.db import Database


@dataclass(frozen=True)
class SimPrice:
    symbol: str
    price: Decimal
    previous_close: Decimal
    day: str
    updated_at: str
    day_open: Decimal | None = None  # the simulated day's bar so far (older databases: None until the next day)
    day_high: Decimal | None = None
    day_low: Decimal | None = None


class SimLedger:
    def __init__(self, db: Database):
        self.db = db

    # -- market --------------------------------------------------------------

    def price_state(self, symbol: str) -> SimPrice | None:
        row = self.db.one("SELECT * FROM sim_market WHERE symbol = ?", (symbol,))
        if row is None:
            return None
        day_bar = [Decimal(row[k]) if row.get(k) else None for k in ("day_open", "day_high", "day_low")]
        return SimPrice(symbol, Decimal(row["price"]), Decimal(row["previous_close"]), row["day"], row["updated_at"], *day_bar)

    def save_price_state(self, state: SimPrice) -> None:
        self.db.execute(
            """INSERT INTO sim_market (symbol, price, previous_close, day, updated_at, day_open, day_high, day_low)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(symbol) DO UPDATE SET price = excluded.price, previous_close = excluded.previous_close,
               day = excluded.day, updated_at = excluded.updated_at, day_open = excluded.day_open,
               day_high = excluded.day_high, day_low = excluded.day_low""",
            (state.symbol, str(state.price), str(state.previous_close), state.day, state.updated_at,
             *(None if v is None else str(v) for v in (state.day_open, state.day_high, state.day_low))),
        )

    # -- account -------------------------------------------------------------

    def account(self) -> dict[str, Any] | None:
        return self.db.one("SELECT cash, day, day_start_equity FROM sim_account WHERE id = 1")

    def open_account(self, cash: Decimal, day: str) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO sim_account (id, cash, day, day_start_equity) VALUES (1, ?, ?, ?)",
            (str(cash), day, str(cash)),
        )

    def start_day(self, day: str, equity: Decimal) -> None:
        self.db.execute("UPDATE sim_account SET day = ?, day_start_equity = ? WHERE id = 1", (day, str(equity)))

    def holdings(self) -> dict[str, tuple[Decimal, Decimal]]:
        """symbol -> (qty, avg_entry_price)."""
        rows = self.db.query("SELECT symbol, qty, avg_entry_price FROM sim_positions ORDER BY symbol")
        return {r["symbol"]: (Decimal(r["qty"]), Decimal(r["avg_entry_price"])) for r in rows}

    # -- orders --------------------------------------------------------------

    def order(self, *, client_order_id: str | None = None, order_id: str | None = None) -> dict[str, Any] | None:
        if client_order_id is not None:
            return self.db.one("SELECT * FROM sim_orders WHERE client_order_id = ?", (client_order_id,))
        return self.db.one("SELECT * FROM sim_orders WHERE id = ?", (order_id,))

    def open_orders(self) -> list[dict[str, Any]]:
        """Orders waiting at the simulated broker (its stops), oldest first."""
        return self.db.query("SELECT * FROM sim_orders WHERE status IN ('new', 'accepted') ORDER BY submitted_at, rowid")

    def add_order(self, order: dict[str, Any]) -> None:
        """Record an order that waits (a stop): no cash or position moves yet."""
        self.db.execute(f"INSERT INTO sim_orders ({', '.join(order)}) VALUES ({', '.join('?' for _ in order)})", tuple(order.values()))

    def set_order(self, order_id: str, **fields: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.db.execute(f"UPDATE sim_orders SET {sets} WHERE id = ?", (*fields.values(), order_id))

    def fill_waiting(self, order_id: str, fields: dict[str, Any], cash_delta: Decimal, new_holding: tuple[Decimal, Decimal] | None) -> None:
        """Book the fill of a waiting order atomically: the order, the cash, the position."""
        with self.db.transaction():
            self.set_order(order_id, **fields)
            self._book(self.order(order_id=order_id)["symbol"], cash_delta, new_holding)

    def record_fill(self, order: dict[str, Any], cash_delta: Decimal, new_holding: tuple[Decimal, Decimal] | None) -> None:
        """Book a filled order atomically: the order, the cash, the position."""
        with self.db.transaction():
            columns = ", ".join(order)
            self.db.execute(
                f"INSERT INTO sim_orders ({columns}) VALUES ({', '.join('?' for _ in order)})", tuple(order.values())
            )
            self._book(order["symbol"], cash_delta, new_holding)

    def _book(self, symbol: str, cash_delta: Decimal, new_holding: tuple[Decimal, Decimal] | None) -> None:
        """The cash and the position a fill moves (inside the caller's transaction)."""
        cash = Decimal(self.db.one("SELECT cash FROM sim_account WHERE id = 1")["cash"])
        self.db.execute("UPDATE sim_account SET cash = ? WHERE id = 1", (str(cash + cash_delta),))
        if new_holding is None or new_holding[0] == 0:
            self.db.execute("DELETE FROM sim_positions WHERE symbol = ?", (symbol,))
        else:
            self.db.execute(
                """INSERT INTO sim_positions (symbol, qty, avg_entry_price) VALUES (?, ?, ?)
                   ON CONFLICT(symbol) DO UPDATE SET qty = excluded.qty, avg_entry_price = excluded.avg_entry_price""",
                (symbol, str(new_holding[0]), str(new_holding[1])),
            )
