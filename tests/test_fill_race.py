"""The fill race: an order from an earlier cycle fills between the broker's
positions reply and its order-lookup reply, both asked at once in the fetch.
Whatever order the replies come in, risk must count every fill the cycle
knows of: no buy may take a position or the exposure past its limit."""

from __future__ import annotations

import tempfile
import threading
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from tradecycle.cycle.run import run_cycle
from tradecycle.infra.errors import ServiceUnavailable
from tradecycle.infra.logs import MemoryLog
from tradecycle.models import Account, OrderResult, Position, RiskLimits
from tradecycle.store import Store, open_database

from .fakes import FakeBroker, FakeClock, FakeQuotes, ScriptedAnalyst, position, services, settings


class SnapshotBroker(FakeBroker):
    """Answers the positions from a queue of snapshots: the first reply can
    predate a fill the order lookup already shows."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.snapshots: list[dict[str, Position]] = []
        self.positions_calls = 0

    def get_positions(self):
        self.positions_calls += 1
        if self.snapshots:
            snapshot = self.snapshots.pop(0)
            if isinstance(snapshot, Exception):
                raise snapshot
            return list(snapshot.values())
        return super().get_positions()


def _first_cycle_buys_aapl(store, log, clock, broker):
    analyst = ScriptedAnalyst({"AAPL": ("buy", 0.9)})
    run_cycle(services(broker=broker, analyst=analyst, clock=clock), store, settings(), log)
    [order] = broker.orders
    return order, analyst


def _fill(broker, order, qty, price="200"):
    known = broker.known[order.client_order_id]
    status = "filled" if Decimal(qty) * Decimal(price) >= order.notional_usd else "partially_filled"
    broker.known[order.client_order_id] = replace(known, status=status, filled_qty=Decimal(qty), filled_avg_price=Decimal(price))


def test_a_fill_the_order_lookup_shows_counts_although_the_positions_reply_predates_it(db, store, log):
    clock = FakeClock()
    broker = SnapshotBroker()
    order, analyst = _first_cycle_buys_aapl(store, log, clock, broker)  # $10,000 of AAPL: open, not filled
    clock.advance(60)
    # Next cycle: the positions reply was made before the fill, the order lookup after it.
    _fill(broker, order, "50")
    broker.positions["AAPL"] = position("AAPL", "10000", qty="50")
    broker.snapshots = [{}]
    report = run_cycle(services(broker=broker, analyst=analyst, clock=clock), store, settings(), log)

    assert len(broker.orders) == 1, "bought AAPL again past the 10 % limit"
    assert report.outcomes == {"AAPL": "position_too_large"}
    assert db.one("SELECT status FROM trades")["status"] == "filled"
    # The positions were read again once the fill was seen, and those are what the database keeps.
    assert db.one("SELECT qty FROM positions WHERE symbol = 'AAPL'")["qty"] == "50"


def test_a_partial_fill_seen_in_the_fetch_counts_the_filled_part_and_the_rest(db, store, log):
    clock = FakeClock()
    broker = SnapshotBroker()
    order, analyst = _first_cycle_buys_aapl(store, log, clock, broker)
    clock.advance(60)
    _fill(broker, order, "25")  # half filled: 5000 held, 5000 still open
    broker.positions["AAPL"] = position("AAPL", "5000", qty="25")
    broker.snapshots = [{}]
    report = run_cycle(services(broker=broker, analyst=analyst, clock=clock), store, settings(), log)

    assert len(broker.orders) == 1
    assert report.outcomes == {"AAPL": "position_too_large"}


def test_when_the_positions_cannot_be_read_again_the_fill_still_counts(db, store, log):
    clock = FakeClock()
    broker = SnapshotBroker()
    order, analyst = _first_cycle_buys_aapl(store, log, clock, broker)
    clock.advance(60)
    _fill(broker, order, "50")
    broker.snapshots = [{}, ServiceUnavailable("fake", "positions: connection reset")]
    report = run_cycle(services(broker=broker, analyst=analyst, clock=clock), store, settings(), log)

    assert len(broker.orders) == 1
    assert report.outcomes == {"AAPL": "position_too_large"}
    assert any("read again" in note for note in report.notes)


def test_no_fill_seen_costs_no_second_positions_request(db, store, log):
    clock = FakeClock()
    broker = SnapshotBroker()
    _first_cycle_buys_aapl(store, log, clock, broker)
    calls = broker.positions_calls
    clock.advance(60)
    run_cycle(services(broker=broker, analyst=ScriptedAnalyst(), clock=clock), store, settings(), log)
    assert broker.positions_calls == calls + 2  # the fetch and the sync (an order is still open), no re-read


# -- the property: any reply order, any fill time ------------------------------------------------

SYMBOLS = ("AAPL", "MSFT", "NVDA")
PRICE = Decimal(100)
LIMITS = RiskLimits(
    max_position_size_percent=Decimal(10),
    max_total_exposure_percent=Decimal(25),
    max_positions_count=15,
    daily_loss_limit_percent=Decimal(50),
    min_confidence=0.6,
)


@dataclass
class Fill:
    client_order_id: str
    at: float  # on the timeline of the second cycle's broker calls
    fraction: Decimal


class TimelineBroker(FakeBroker):
    """A broker whose truth is a timeline. Each reply is computed at a moment:
    the first call of each kind in a cycle (the fetch round, asked at once)
    at a moment drawn by the test, in any order; every later call after all
    of them. Fills of open orders happen at drawn moments; new orders fill
    at once. Cash and positions are always what the fills made them."""

    def __init__(self, cash: Decimal):
        super().__init__(equity=str(cash))
        self.cash = cash
        self.held: dict[str, Decimal] = {}
        self.orders_state: dict[str, OrderResult] = {}
        self.fills: list[Fill] = []
        self.read_at: dict[str, float] = {}
        self.first_seen: set[str] = set()
        self.later = 1.0
        self.applied: set[str] = set()
        self.lock = threading.Lock()
        self.fill_new_orders = False

    # the timeline ---------------------------------------------------------------

    def start_cycle(self, read_at: dict[str, float], fills: list[Fill]) -> None:
        self.read_at, self.fills, self.first_seen, self.later = read_at, fills, set(), 1.0
        self.fill_new_orders = True

    def _moment(self, kind: str) -> float:
        with self.lock:
            if kind not in self.first_seen and kind in self.read_at:
                self.first_seen.add(kind)
                return self.read_at[kind]
            self.later += 0.01
            return self.later

    def _state(self, moment: float):
        """(cash, holdings, orders) as of ``moment``: every fill at or before it applied."""
        cash, held, orders = self.cash, dict(self.held), dict(self.orders_state)
        for fill in self.fills:
            if fill.at <= moment:
                order = orders[fill.client_order_id]
                qty = (order.notional * fill.fraction / PRICE).quantize(Decimal("0.000000001"))
                orders[fill.client_order_id] = replace(
                    order, status="filled" if fill.fraction == 1 else "partially_filled",
                    filled_qty=qty, filled_avg_price=PRICE)
                held[order.symbol] = held.get(order.symbol, Decimal(0)) + qty
                cash -= qty * PRICE
        return cash, held, orders

    def final(self):
        return self._state(float("inf"))

    # the Broker port --------------------------------------------------------------

    def get_account(self):
        cash, held, _ = self._state(self._moment("account"))
        equity = cash + sum(held.values(), Decimal(0)) * PRICE
        return Account(equity=equity, last_equity=equity, cash=cash, buying_power=cash)

    def get_positions(self):
        _, held, _ = self._state(self._moment("positions"))
        return [Position(s, q, PRICE, q * PRICE, PRICE, Decimal(0)) for s, q in held.items() if q > 0]

    def get_order(self, broker_order_id):
        _, _, orders = self._state(self._moment(f"order:{broker_order_id}"))
        return next(o for o in orders.values() if o.broker_order_id == broker_order_id)

    def get_order_by_client_id(self, client_order_id):
        _, _, orders = self._state(self._moment(f"cid:{client_order_id}"))
        return orders.get(client_order_id)

    def recent_orders(self, after):
        _, _, orders = self._state(self._moment("listing"))
        return list(orders.values())[::-1]

    def open_orders(self):
        _, _, orders = self._state(self._moment("open_orders"))
        return [o for o in orders.values() if o.status not in ("filled", "canceled", "expired", "rejected")]

    def submit_order(self, intent):
        result = super().submit_order(intent)
        with self.lock:
            if self.fill_new_orders:  # a market order fills at once, at the price
                qty = (intent.notional_usd / PRICE).quantize(Decimal("0.000000001")) if intent.side == "buy" else intent.qty
                sign = 1 if intent.side == "buy" else -1
                self.held[intent.symbol] = self.held.get(intent.symbol, Decimal(0)) + sign * qty
                self.cash -= sign * qty * PRICE
                result = replace(result, status="filled", filled_qty=qty, filled_avg_price=PRICE)
            self.orders_state[intent.client_order_id] = result
        return result


moments = st.floats(min_value=0, max_value=0.99, allow_nan=False)


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    held=st.lists(st.integers(min_value=0, max_value=8), min_size=3, max_size=3),  # within both limits at the start
    first_buys=st.lists(st.booleans(), min_size=3, max_size=3),
    fill_at=st.lists(st.one_of(st.none(), st.floats(min_value=0, max_value=1.5, allow_nan=False)), min_size=3, max_size=3),
    fraction=st.lists(st.sampled_from([Decimal("0.25"), Decimal("0.5"), Decimal(1)]), min_size=3, max_size=3),
    read_positions=moments, read_account=moments, read_listing=moments, read_open=moments,
    read_orders=st.lists(moments, min_size=3, max_size=3),
)
def test_no_reply_order_or_fill_time_takes_a_position_or_the_exposure_past_its_limit(
    held, first_buys, fill_at, fraction, read_positions, read_account, read_listing, read_open, read_orders,
):
    with tempfile.TemporaryDirectory() as folder:
        db = open_database(Path(folder) / "tradecycle.db")
        try:
            store, log, clock = Store(db), MemoryLog(), FakeClock()
            broker = TimelineBroker(Decimal(100_000))
            broker.held = {s: Decimal(h) * 10 for s, h in zip(SYMBOLS, held)}  # 0 to 8 % of equity each
            broker.cash -= sum(broker.held.values(), Decimal(0)) * PRICE
            quotes = FakeQuotes({s: str(PRICE) for s in SYMBOLS}, clock)
            cycle_settings = settings(stocks=SYMBOLS, limits=LIMITS)

            # Cycle 1 sends buys that stay open (the broker has not filled them yet).
            analyst = ScriptedAnalyst({s: ("buy", 0.9) for s, buy in zip(SYMBOLS, first_buys) if buy})
            run_cycle(services(broker=broker, quotes=quotes, analyst=analyst, clock=clock), store, cycle_settings, log)
            opened = list(broker.orders_state.values())

            # Cycle 2: they fill at drawn moments; the fetch's replies are made at drawn moments.
            clock.advance(60)
            fills = [Fill(o.client_order_id, at, f) for o, at, f in zip(opened, fill_at, fraction) if at is not None]
            read_at = {"positions": read_positions, "account": read_account, "listing": read_listing, "open_orders": read_open}
            read_at |= {f"order:{o.broker_order_id}": t for o, t in zip(opened, read_orders)}
            broker.start_cycle(read_at, fills)
            buy_all = ScriptedAnalyst({s: ("buy", 0.9) for s in SYMBOLS})
            run_cycle(services(broker=broker, quotes=quotes, analyst=buy_all, clock=clock), store, cycle_settings, log)
        finally:
            db.close()

    cash, final_held, orders = broker.final()
    equity = cash + sum(final_held.values(), Decimal(0)) * PRICE
    still_open = {s: Decimal(0) for s in SYMBOLS}
    for o in orders.values():
        if o.status != "filled":
            still_open[o.symbol] += o.notional - (o.filled_qty or 0) * PRICE
    committed = {s: final_held.get(s, Decimal(0)) * PRICE + still_open[s] for s in SYMBOLS}
    cent = Decimal("0.01")
    for symbol, value in committed.items():
        assert value <= equity * LIMITS.max_position_size_percent / 100 + cent, (symbol, value, equity)
    assert sum(committed.values()) <= equity * LIMITS.max_total_exposure_percent / 100 + cent
