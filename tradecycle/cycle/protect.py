"""The cycle's side of the protective exits (``exits.py`` holds the rules):
the highest price seen of each position, and the sell a hit level becomes.

``Guard`` is made at the start of the analysis, asked once per analysed
symbol, and saved at the end, so that a symbol that is not analysed this
cycle (a stock while the market is closed) keeps its mark.
"""

from __future__ import annotations

from decimal import Decimal

from tradecycle.rules import exits
from tradecycle.cycle.state import Cycle
from tradecycle.models import Decision, Quote

EXIT_MODEL = "protective-exit"  # ai_decisions.model of a sell the tool decided on its own


class Guard:
    def __init__(self, cycle: Cycle):
        self.cycle = cycle
        self.marks: dict[str, tuple[Decimal, Decimal]] = cycle.store.position_marks()

    def exit_for(self, symbol: str, quote: Quote) -> Decision | None:
        """The sell of the whole position if ``quote`` hits one of its levels, else None.
        Records ``quote`` as seen (the trailing stop's high) either way."""
        position = self.cycle.market.positions.get(symbol)
        if position is None or position.qty <= 0:
            return None
        entry = position.avg_entry_price
        _, previous_high = self.marks.get(symbol, (entry, None))
        high = exits.new_high(previous_high, entry, quote.price)
        self.marks[symbol] = (entry, high)
        hit = exits.triggered(self.cycle.settings.exits, entry, high, quote.price)
        if hit is None:
            return None
        word, reason = hit
        self.cycle.log("exit.triggered", "warning", symbol=symbol, exit=word, price=str(quote.price), entry=str(entry), high=str(high))
        return Decision(symbol, "sell", 1.0, reason, EXIT_MODEL, exit=word)

    def save(self) -> None:
        """Keep one mark per long position held now; a closed position's mark goes."""
        held = {s: p for s, p in self.cycle.market.positions.items() if p.qty > 0}
        marks = {
            s: self.marks.get(s, (p.avg_entry_price, exits.new_high(None, p.avg_entry_price, p.current_price)))
            for s, p in held.items()
        }
        self.cycle.store.save_position_marks(marks, self.cycle.services.clock.now())
