"""The portfolio as risk sees it (and as the analyst is shown it): what the
broker reported, with what open orders may still do counted, and the
broker's minimum order per symbol."""

from __future__ import annotations

from decimal import Decimal

from tradecycle.rules import risk
from tradecycle.cycle.state import Cycle
from tradecycle.models import Decision
from tradecycle.infra.parallel import gather


def current_portfolio(cycle: Cycle) -> risk.Portfolio:
    """The portfolio risk checks against (kept on the cycle, and shown to the
    analyst): account and positions as fetched, with what open orders may
    still do counted (open buys as if filled; open sells cover their quantity)."""
    if cycle.portfolio is None:
        market = cycle.market
        portfolio = risk.Portfolio(
            equity=market.account.equity,
            cash=min(market.account.cash, market.account.buying_power),
            holdings={s: risk.Holding(p.qty, p.market_value) for s, p in market.positions.items()},
        )
        cycle.portfolio = risk.with_open_orders(portfolio, [_unfilled(t) for t in cycle.open_orders])
    return cycle.portfolio


def _unfilled(trade: dict) -> risk.OpenOrder:
    """What an open order from its trades row may still do: USD a buy may still
    spend, or the quantity a sell may still sell."""
    price = Decimal(trade["price"] or 0)
    filled_qty = Decimal(trade["filled_qty"] or 0)
    if trade["side"] == "sell":
        return risk.OpenOrder(trade["symbol"], "sell", qty=max(Decimal(trade["quantity"] or 0) - filled_qty, Decimal(0)))
    ordered = Decimal(trade["notional_usd"]) if trade["notional_usd"] else Decimal(trade["quantity"] or 0) * price
    filled = filled_qty * Decimal(trade["filled_avg_price"] or trade["price"] or 0)
    return risk.OpenOrder(trade["symbol"], "buy", usd=max(ordered - filled, Decimal(0)))


def order_minimums(cycle: Cycle, buys: list[Decision]) -> dict[str, Decimal]:
    """The broker's minimum order value per symbol, asked for all buys at once.
    A broker that cannot say falls back to $1 (the broker refuses what is
    too small anyway, and the refusal is recorded)."""
    broker, inputs = cycle.services.broker, cycle.inputs
    found = gather({d.symbol: (lambda s=d.symbol: broker.min_order_notional(s, inputs[s].quote.price)) for d in buys})
    return {s: (Decimal(1) if isinstance(v, Exception) else v) for s, v in found.items()}
