"""No whipsaw: when a buy must wait after protective exits, as pure functions.

Two rules, after freqtrade's CooldownPeriod and StoplossGuard protections:

- **Re-entry cooldown.** After a protective exit of a symbol (``stop_loss``,
  ``take_profit``, ``trailing_stop``), no buy of that symbol for
  ``risk.reentry_cooldown_minutes``: the signal that bought it is usually
  still there a minute after the stop, and buying back the noise that just
  stopped it out is the whipsaw a trader avoids.
- **Stop-loss guard.** ``risk.stop_loss_guard_count`` stop-outs (``stop_loss``
  or ``trailing_stop``, any symbols) within ``risk.stop_loss_guard_minutes``
  pause every buy for that long, counted from the stop-out that completed the
  count: the market is against the strategy; it waits instead of paying for
  more stops.

Neither rule ever blocks a sell or an exit. The cycle gathers the exits from
the store (``Store.protective_exits_since``); this decides.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

PROTECTIVE_EXITS = ("stop_loss", "take_profit", "trailing_stop")  # start the re-entry cooldown
STOP_OUTS = ("stop_loss", "trailing_stop")  # count towards the stop-loss guard


@dataclass(frozen=True)
class Protections:
    """The settings; 0 turns a rule off."""

    reentry_cooldown_minutes: float = 240
    stop_loss_guard_count: int = 3
    stop_loss_guard_minutes: float = 1440

    def lookback(self) -> timedelta:
        """How far back the exits that may still matter go."""
        return timedelta(minutes=max(self.reentry_cooldown_minutes, 2 * self.stop_loss_guard_minutes))


@dataclass(frozen=True)
class ExitRecord:
    """One protective exit as the store recorded it."""

    symbol: str
    kind: str  # stop_loss | take_profit | trailing_stop
    at: datetime


@dataclass(frozen=True)
class Pause:
    """Why buys wait: ``outcome`` is ``cooldown`` or ``stop_guard``; buys resume at ``until``."""

    outcome: str
    until: datetime
    detail: str


def cooldown(symbol: str, exits: Iterable[ExitRecord], now: datetime, rules: Protections) -> Pause | None:
    """The re-entry cooldown of ``symbol`` at ``now``, or None when it may be bought."""
    if rules.reentry_cooldown_minutes <= 0:
        return None
    mine = [e for e in exits if e.symbol == symbol and e.kind in PROTECTIVE_EXITS and e.at <= now]
    if not mine:
        return None
    last = max(mine, key=lambda e: e.at)
    until = last.at + timedelta(minutes=rules.reentry_cooldown_minutes)
    if now >= until:
        return None
    return Pause("cooldown", until, (
        f"{last.kind.replace('_', ' ')} exit at {_hhmm(last.at)}: no buy of {symbol} until {_hhmm(until)} "
        f"(risk.reentry_cooldown_minutes = {rules.reentry_cooldown_minutes:g})"))


def stop_guard(exits: Iterable[ExitRecord], now: datetime, rules: Protections) -> Pause | None:
    """The stop-loss guard at ``now``, or None when buys may go out.

    The guard trips at the stop-out that makes ``count`` within ``minutes``
    (that one and the ``count - 1`` before it) and holds for ``minutes`` from
    it; a later trip while it holds extends it."""
    count, minutes = rules.stop_loss_guard_count, rules.stop_loss_guard_minutes
    if count <= 0 or minutes <= 0:
        return None
    window = timedelta(minutes=minutes)
    times = sorted(e.at for e in exits if e.kind in STOP_OUTS and e.at <= now)
    trip = None
    for i in range(count - 1, len(times)):
        if times[i] - times[i - count + 1] <= window and now < times[i] + window:
            trip = times[i]  # the latest trip wins: it holds the longest
    if trip is None:
        return None
    until = trip + window
    return Pause("stop_guard", until, (
        f"{count} stop-outs within {minutes:g} minutes (the last at {_hhmm(trip)}): every buy paused until {_hhmm(until)} "
        f"(risk.stop_loss_guard_count = {count}, risk.stop_loss_guard_minutes = {minutes:g})"))


def buy_pause(symbol: str, exits: Iterable[ExitRecord], now: datetime, rules: Protections) -> Pause | None:
    """What keeps a buy of ``symbol`` from going out now: the guard first (it
    pauses every symbol), then the symbol's cooldown; None when nothing does."""
    exits = list(exits)
    return stop_guard(exits, now, rules) or cooldown(symbol, exits, now, rules)


def _hhmm(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%MZ")
