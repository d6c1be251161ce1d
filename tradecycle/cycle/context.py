"""The market context a careful trader would look at, gathered for the analyst:
daily bars (fetched at most once a day per symbol, cached in the database),
today's bar from the quote, the indicators computed from them, the recent
prices with their times, and the portfolio with the room left under each limit.

Two entry points, both called from ``cycle.py``:

- ``DailyBarRefresh``: in the fetch step, which symbols' bars are due (one
  bars call per asset class, in the same round trip as the quotes), then what
  came back is stored. A bars call that fails is noted; the analyst works
  with the bars already stored, and it is tried again no sooner than
  ``RETRY_FAILED_BARS``.
- ``market_context``: in the analysis step, one symbol's ``MarketContext``.
  Without bars it says "indicators unavailable" and why; it never raises for
  missing data.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Callable

from tradecycle.rules import risk  # indicators imports numpy/talib only when it computes
from tradecycle.rules import indicators
from tradecycle.models import MarketContext, PortfolioView, Quote, is_crypto

if TYPE_CHECKING:
    from tradecycle.cycle.state import Cycle

HISTORY_DAYS = 60  # daily bars kept in view: enough for SMA 50 and a 20-day window
RETRY_FAILED_BARS = timedelta(minutes=30)
RECENT_PRICES = 10


class DailyBarRefresh:
    """The daily bars due in this cycle: at most one call per asset class, once a day per symbol."""

    def __init__(self, cycle: "Cycle"):
        self.cycle = cycle
        self.source = cycle.services.bars
        self.now = cycle.services.clock.now()
        symbols = cycle.settings.symbols if self.source else ()
        due = cycle.store.bars_due(list(symbols), self.now, RETRY_FAILED_BARS) if symbols else []
        self.groups = {
            "bars:stocks": [s for s in due if not is_crypto(s)],
            "bars:crypto": [s for s in due if is_crypto(s)],
        }

    def tasks(self) -> dict[str, Callable]:
        """One task per asset class with symbols due (none once they are fetched today)."""
        fetches = {
            key: (lambda symbols=symbols: self.source.get_daily_bars(symbols, HISTORY_DAYS, self.now))
            for key, symbols in self.groups.items()
            if symbols
        }
        return fetches

    def preload(self) -> dict[str, Callable]:
        """With a bar source, a task that imports numpy and TA-Lib while the fetch waits
        on the network (put it last: the requests go out first), so that computing the
        indicators later costs no import."""
        return {"indicators:preload": indicators.preload} if self.source else {}

    def record(self, results: dict) -> None:
        """Store what came back; a failed call is noted and leaves the stored bars as they are."""
        store = self.cycle.store
        for key, symbols in self.groups.items():
            if not symbols:
                continue
            result = results[key]
            if isinstance(result, Exception):
                store.record_bars_attempt(symbols, self.now)
                self.cycle.note(f"daily bars unavailable ({result}); indicators from the bars already stored")
                continue
            store.record_daily_bars({s: result.get(s, []) for s in symbols}, self.source.name, self.now)
            self.cycle.log("bars.fetched", asset_class=key.split(":")[1], symbols=len(symbols),
                           bars=sum(len(result.get(s, [])) for s in symbols))


def market_context(cycle: "Cycle", symbol: str, quote: Quote) -> MarketContext:
    """Everything besides the quote that the analyst is shown about ``symbol``."""
    store = cycle.store
    bars = store.daily_bars(symbol, HISTORY_DAYS + 1)  # one more: it may be today's, replaced by the quote's
    portfolio = _portfolio(cycle)
    view = _portfolio_view(portfolio, cycle)
    room = max(risk.limit_usd(portfolio.equity, cycle.settings.limits.max_position_size_percent) - portfolio.value_of(symbol),
               Decimal(0))
    common = {
        "today": quote.today,
        "recent": tuple(store.recent_price_points(symbol, RECENT_PRICES)),
        "portfolio": view,
        "position_room_usd": room.quantize(Decimal("0.01")),
    }
    completed = indicators.series(bars, quote.today, quote.price)[0][-HISTORY_DAYS:]
    if not completed:
        reason = "no daily bars from this market data source" if cycle.services.bars is None else "no daily bars stored yet"
        return MarketContext(None, unavailable_reason=reason, **common)
    return MarketContext(
        indicators.compute(completed, quote.today, quote.price),
        first_bar_day=completed[0].day if completed else None,
        last_bar_day=completed[-1].day if completed else None,
        **common,
    )


def _portfolio(cycle: "Cycle") -> risk.Portfolio:
    """The portfolio exactly as the risk step will see it (open orders counted)."""
    from tradecycle.cycle.portfolio import current_portfolio

    return current_portfolio(cycle)


def _portfolio_view(portfolio: risk.Portfolio, cycle: "Cycle") -> PortfolioView:
    limits, account = cycle.settings.limits, cycle.market.account
    cent = Decimal("0.01")
    equity = portfolio.equity
    exposure = portfolio.exposure
    day_change = None if account.last_equity <= 0 else (account.equity / account.last_equity - 1) * 100
    return PortfolioView(
        equity=equity.quantize(cent),
        cash=portfolio.cash.quantize(cent),
        exposure_usd=exposure.quantize(cent),
        exposure_percent=(exposure / equity * 100).quantize(cent) if equity > 0 else Decimal(0),
        exposure_room_usd=max(risk.limit_usd(equity, limits.max_total_exposure_percent) - exposure, Decimal(0)).quantize(cent),
        positions_count=len(portfolio.holdings),
        positions_room=max(limits.max_positions_count - len(portfolio.holdings), 0),
        day_change_percent=None if day_change is None else day_change.quantize(cent),
        daily_loss_room_percent=None if day_change is None else max(limits.daily_loss_limit_percent + day_change, Decimal(0)).quantize(cent),
    )
