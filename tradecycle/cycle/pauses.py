"""The cycle's side of the no-whipsaw rules (``rules/protections.py`` decides):
which buys wait, and the stop-loss guard's one log event when it trips.

``BuyPauses`` is made at the start of the analysis from the protective exits
the store recorded (one query). A symbol whose buy must wait and that is not
held is settled at once (outcome ``cooldown`` or ``stop_guard``): the
analyst is not asked, since the only thing it could do is a buy that would
be refused. A held one is still analysed, for sell or hold only (its
``sell_only``), so that a pause never keeps a position from being sold.
After the orders, ``tripped`` compares the guard with what it was when the
cycle started: a guard this cycle's stop-outs tripped is logged once
(``risk.stop_guard``) and reported, for its one alert.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from tradecycle.cycle.state import Cycle, Outcome
from tradecycle.models import AnalysisInput
from tradecycle.rules.protections import ExitRecord, Pause, buy_pause, stop_guard


class BuyPauses:
    def __init__(self, cycle: Cycle, now: datetime):
        self.cycle, self.now = cycle, now
        self.rules = rules = cycle.settings.protections
        active = rules.reentry_cooldown_minutes > 0 or (rules.stop_loss_guard_count > 0 and rules.stop_loss_guard_minutes > 0)
        self.exits: list[ExitRecord] = cycle.store.protective_exits_since(now - rules.lookback()) if active else []
        started = cycle.started_at
        self.guard_at_start = stop_guard([e for e in self.exits if e.at < started], started, rules)
        self._tripped: tuple[Pause | None] | None = None  # tripped(), once

    def apply(self, item: AnalysisInput) -> AnalysisInput | None:
        """``item`` as the analyst may see it, or None when it is settled here (a buy
        must wait and nothing is held)."""
        pause = buy_pause(item.symbol, self.exits, self.now, self.rules)
        if pause is None:
            return item
        if item.position is None or item.position.qty <= 0:
            self.cycle.settle(Outcome(item.symbol, pause.outcome, quote=item.quote, detail=pause.detail))
            self.cycle.inputs.pop(item.symbol, None)
            return None
        if item.sell_only:
            return item
        restricted = replace(item, sell_only=(pause.outcome, f"{pause.detail}: sell or hold only"))
        self.cycle.inputs[item.symbol] = restricted
        return restricted

    def tripped(self, exits_sent: bool) -> Pause | None:
        """The guard, if it tripped since the cycle started (this cycle's stop-outs, or
        stop-outs recorded by its earlier steps), or was pushed further; logged once.
        Asked once per cycle, after the sells and before the first buy."""
        if self._tripped is None:
            now = self.cycle.services.clock.now()
            exits = self.cycle.store.protective_exits_since(now - self.rules.lookback()) if exits_sent else self.exits
            guard = stop_guard(exits, now, self.rules)
            if guard is None or (self.guard_at_start is not None and guard.until <= self.guard_at_start.until):
                self._tripped = (None,)
            else:
                self.cycle.log("risk.stop_guard", "warning", until=guard.until.isoformat(), message=guard.detail)
                self._tripped = (guard,)
        return self._tripped[0]
