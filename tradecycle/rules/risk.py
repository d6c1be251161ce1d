"""Risk rules as pure functions: the tool, never the AI, decides how much.

``plan_order`` turns one decision into an approved ``OrderIntent`` or a
``Verdict`` naming the outcome word of the contract. ``check_order`` re-checks
an intent against the limits on its own, so that no sizing bug can slip an
order past a limit. ``Portfolio.after`` applies an approved order so the next
symbol in the same cycle is checked against the new exposure.

Buys are sized by notional (USD, whole cents, rounded down) to the smallest of
the room under the position limit, the room under the exposure limit, and
cash; a buy smaller than ``min_order_percent`` of equity is not worth sending
(``below_minimum``). With ``risk.sizing = "volatility"`` the buy is also no
larger than the notional at which a move of one daily ATR(14) costs
``risk.risk_per_trade_percent`` of equity (``volatility_target``): a calm
stock gets a bigger position than a wild coin, and every limit still caps it. Sells close the whole position (quantity), less what
open sells already cover. Nothing here shorts.

Exposure is gross: a short position (only a person can open one) adds its
absolute value and never frees room. Orders still open count as if they had
filled for buys (room used) and never free room for sells until they fill.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal

from tradecycle.models import Account, Decision, OrderIntent, RiskLimits, to_cents

HUNDRED = Decimal(100)


@dataclass(frozen=True)
class Holding:
    qty: Decimal  # owned now
    market_value: Decimal
    open_buy_usd: Decimal = Decimal(0)  # what open buy orders may still add
    open_sell_qty: Decimal = Decimal(0)  # what open sell orders may still sell

    @property
    def exposure_usd(self) -> Decimal:
        return abs(self.market_value) + self.open_buy_usd

    @property
    def sellable_qty(self) -> Decimal:
        """What a new sell may sell: the long quantity not already covered by an open sell."""
        return max(self.qty - self.open_sell_qty, Decimal(0))


@dataclass(frozen=True)
class OpenOrder:
    """What an order sent earlier may still do: ``usd`` a buy may spend, ``qty`` a sell may sell."""

    symbol: str
    side: str
    usd: Decimal = Decimal(0)
    qty: Decimal = Decimal(0)


@dataclass(frozen=True)
class Portfolio:
    equity: Decimal
    cash: Decimal
    holdings: dict[str, Holding] = field(default_factory=dict)

    @property
    def exposure(self) -> Decimal:
        return sum((h.exposure_usd for h in self.holdings.values()), Decimal(0))

    def value_of(self, symbol: str) -> Decimal:
        holding = self.holdings.get(symbol)
        return holding.exposure_usd if holding else Decimal(0)

    def after(self, intent: OrderIntent) -> "Portfolio":
        """The portfolio as it would be once ``intent`` fills at its price."""
        holdings = dict(self.holdings)
        current = holdings.get(intent.symbol, Holding(Decimal(0), Decimal(0)))
        if intent.side == "buy":
            value = intent.estimated_value
            qty = value / intent.price if intent.price else Decimal(0)
            holdings[intent.symbol] = replace(current, qty=current.qty + qty, market_value=current.market_value + value)
            return replace(self, cash=self.cash - value, holdings=holdings)
        sold_qty = min(intent.qty or Decimal(0), current.qty)
        remaining_qty = current.qty - sold_qty
        proceeds = current.market_value * sold_qty / current.qty if current.qty else Decimal(0)
        if remaining_qty > 0 or current.open_buy_usd > 0:
            holdings[intent.symbol] = replace(current, qty=remaining_qty, market_value=current.market_value - proceeds)
        else:
            holdings.pop(intent.symbol, None)
        return replace(self, cash=self.cash + proceeds, holdings=holdings)


def with_open_orders(portfolio: Portfolio, orders: list[OpenOrder]) -> Portfolio:
    """The portfolio as risk must see it while earlier orders are still open: an
    open buy counts against every limit as if filled; an open sell covers part
    of the position (it is not sold twice) but frees nothing until it fills."""
    holdings = dict(portfolio.holdings)
    cash = portfolio.cash
    for order in orders:
        current = holdings.get(order.symbol, Holding(Decimal(0), Decimal(0)))
        if order.side == "buy" and order.usd > 0:
            holdings[order.symbol] = replace(current, open_buy_usd=current.open_buy_usd + order.usd)
            cash -= order.usd
        elif order.side == "sell" and order.qty > 0 and order.symbol in holdings:
            holdings[order.symbol] = replace(current, open_sell_qty=current.open_sell_qty + order.qty)
    return replace(portfolio, cash=max(cash, Decimal(0)), holdings=holdings)


@dataclass(frozen=True)
class Verdict:
    """``reason`` is "approved" or one of the contract's ``ai_decisions.outcome`` words."""

    allowed: bool
    reason: str
    detail: str = ""
    intent: OrderIntent | None = None
    room: dict[str, str] | None = None  # for a buy refused by a limit: the room it saw (kept for reuse.py)
    sizing: str = ""  # volatility sizing's arithmetic (or why fixed sizing stood in), for the audit trail


def _deny(reason: str, detail: str) -> Verdict:
    return Verdict(False, reason, detail)


def limit_usd(equity: Decimal, percent: Decimal) -> Decimal:
    return equity * percent / HUNDRED


def plan_order(
    decision: Decision,
    price: Decimal,
    portfolio: Portfolio,
    limits: RiskLimits,
    *,
    client_order_id: str,
    min_notional_usd: Decimal = Decimal(1),
    atr: Decimal | None = None,
) -> Verdict:
    """Size and check one decision. Never raises; every refusal has a reason.
    ``atr``: the symbol's daily ATR(14), for volatility sizing (None: fixed sizing)."""
    symbol = decision.symbol
    if decision.action == "hold":
        return _deny("hold", "the analyst said hold")
    if decision.confidence < limits.min_confidence:
        return _deny("low_confidence", f"confidence {decision.confidence:.2f} < min_confidence {limits.min_confidence}")
    if price <= 0:
        return _deny("no_quote", "no usable price")

    if decision.action == "sell":
        holding = portfolio.holdings.get(symbol)
        if holding is None or holding.qty <= 0:
            return _deny("no_position", f"nothing to sell in {symbol}")
        if holding.sellable_qty <= 0:
            return _deny("no_position", f"an open sell order already covers the whole {symbol} position")
        intent = OrderIntent(symbol, "sell", client_order_id, price, qty=holding.sellable_qty)
        return _approve(intent, portfolio, limits)

    if portfolio.equity <= 0:
        return _deny("exposure_limit_exceeded", "account equity is not positive")
    if symbol not in portfolio.holdings and len(portfolio.holdings) >= limits.max_positions_count:
        return Verdict(False, "max_positions_reached", f"{len(portfolio.holdings)} positions open (limit {limits.max_positions_count})",
                       room={"positions_open": str(len(portfolio.holdings)), "min_notional_usd": str(min_notional_usd)})
    rooms = {
        "position_too_large": limit_usd(portfolio.equity, limits.max_position_size_percent) - portfolio.value_of(symbol),
        "exposure_limit_exceeded": limit_usd(portfolio.equity, limits.max_total_exposure_percent) - portfolio.exposure,
        "below_minimum": portfolio.cash,
    }
    target, sizing = volatility_target(decision.confidence, price, portfolio.equity, limits, atr)
    binding = min(rooms, key=rooms.get)
    notional = to_cents(max(rooms[binding], Decimal(0)))
    room = {k: str(to_cents(v)) for k, v in rooms.items()} | {"min_notional_usd": str(min_notional_usd)}
    if target is not None:
        room["volatility_usd"] = str(target)
        if target < notional:
            binding, notional = "volatility", target
        else:
            sizing += f"; capped by {_CAPS[binding]}: {notional} USD"
    if binding == "volatility" and notional < min_notional_usd:
        return Verdict(False, "below_minimum", f"{sizing}: below the {min_notional_usd} USD minimum", room=room)
    if notional < min_notional_usd:
        detail = {
            "position_too_large": f"{symbol} already at {portfolio.value_of(symbol):.2f} USD (limit {limits.max_position_size_percent}% of equity)",
            "exposure_limit_exceeded": f"exposure {portfolio.exposure:.2f} USD (limit {limits.max_total_exposure_percent}% of equity)",
            "below_minimum": f"cash {portfolio.cash:.2f} USD",
        }[binding]
        return Verdict(False, binding, f"{detail}: room {notional} USD is below the {min_notional_usd} USD minimum", room=room)
    smallest = to_cents(limit_usd(portfolio.equity, limits.min_order_percent))
    if notional < smallest:
        what = f"{sizing}: " if binding == "volatility" else f"only {notional} USD of room: "
        return Verdict(False, "below_minimum", f"{what}smaller than risk.min_order_percent "
                       f"({limits.min_order_percent}% of equity = {smallest} USD)", room=room)
    intent = OrderIntent(symbol, "buy", client_order_id, price, notional_usd=notional)
    return _approve(intent, portfolio, limits, sizing)


_CAPS = {"position_too_large": "risk.max_position_size_percent", "exposure_limit_exceeded": "risk.max_total_exposure_percent",
         "below_minimum": "cash"}


def volatility_target(confidence: float, price: Decimal, equity: Decimal, limits: RiskLimits,
                      atr: Decimal | None) -> tuple[Decimal | None, str]:
    """(notional, its arithmetic) of a volatility-sized buy; (None, why not) when
    fixed sizing applies: ``risk.sizing`` is "fixed" (no text), or there is no
    daily ATR (a source without daily bars, a history too short)."""
    if limits.sizing != "volatility":
        return None, ""
    if atr is None or atr <= 0 or price <= 0:
        return None, "volatility sizing needs a daily ATR(14) and there is none (no daily bars): fixed sizing"
    percent = limits.risk_per_trade_percent
    scale = confidence_scale(confidence, limits.min_confidence) if limits.scale_by_confidence else Decimal(1)
    risk_usd = to_cents(equity * percent / HUNDRED * scale)
    qty = risk_usd / atr
    notional = to_cents(qty * price)
    scaled = f" x confidence scale {scale:.2f}" if limits.scale_by_confidence else ""
    return notional, (f"volatility sizing: {percent}% of equity {to_cents(equity)}{scaled} = {risk_usd} USD per ATR(14) "
                      f"{atr} -> {qty:.4f} x {price} = {notional} USD")


def confidence_scale(confidence: float, min_confidence: float) -> Decimal:
    """From 0.5 at ``min_confidence`` to 1 at confidence 1, straight in between."""
    if min_confidence >= 1:
        return Decimal(1)
    share = (Decimal(str(confidence)) - Decimal(str(min_confidence))) / (1 - Decimal(str(min_confidence)))
    return Decimal("0.5") + Decimal("0.5") * min(max(share, Decimal(0)), Decimal(1))


def _approve(intent: OrderIntent, portfolio: Portfolio, limits: RiskLimits, sizing: str = "") -> Verdict:
    problem = check_order(intent, portfolio, limits)
    if problem:
        return _deny(*problem)
    if intent.side == "buy":
        detail = f"buy {intent.notional_usd} USD at ~{intent.price}" + (f" ({sizing})" if sizing else "")
    else:
        detail = f"sell {intent.qty} at ~{intent.price}"
    return Verdict(True, "approved", detail, intent, sizing=sizing)


def check_order(intent: OrderIntent, portfolio: Portfolio, limits: RiskLimits) -> tuple[str, str] | None:
    """An independent check of the state after the order: (reason, detail) if a limit breaks."""
    if intent.side == "sell":
        held = portfolio.holdings.get(intent.symbol)
        if held is None or (intent.qty or 0) > held.sellable_qty:
            return ("no_position", f"cannot sell more {intent.symbol} than held (less open sells)")
        return None
    after = portfolio.after(intent)
    if intent.estimated_value > portfolio.cash:
        return ("below_minimum", f"order {intent.estimated_value} USD exceeds cash {portfolio.cash} USD")
    if intent.symbol not in portfolio.holdings and len(after.holdings) > limits.max_positions_count:
        return ("max_positions_reached", f"would hold {len(after.holdings)} positions")
    if after.value_of(intent.symbol) > limit_usd(portfolio.equity, limits.max_position_size_percent):
        return ("position_too_large", f"{intent.symbol} would exceed {limits.max_position_size_percent}% of equity")
    if after.exposure > limit_usd(portfolio.equity, limits.max_total_exposure_percent):
        return ("exposure_limit_exceeded", f"exposure would exceed {limits.max_total_exposure_percent}% of equity")
    return None


def daily_loss_breach(account: Account, limits: RiskLimits) -> str | None:
    """The kill-switch reason when today's loss vs. the previous close reaches the limit."""
    if account.last_equity <= 0:
        return None
    change_percent = (account.equity - account.last_equity) / account.last_equity * HUNDRED
    if change_percent <= -limits.daily_loss_limit_percent:
        return f"daily loss limit: {change_percent:.1f}% (limit {limits.daily_loss_limit_percent}%)"
    return None


def account_problem(account: Account) -> str | None:
    """The kill-switch reason when the account cannot trade."""
    if account.account_blocked:
        return "account blocked by the broker"
    if account.trading_blocked:
        return "trading blocked by the broker"
    if account.status != "ACTIVE":
        return f"account status is {account.status}, not ACTIVE"
    return None
