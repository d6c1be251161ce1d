"""A quote source called at most every ``refresh_seconds``, stored prices in between.

CoinGecko's demo key allows 10,000 calls a month; a cycle a minute would use
43,200. ``ThrottledQuotes`` wraps the real source: when the last fetch that
brought prices is younger than ``refresh_seconds``, it answers with the
prices stored then (``source = "cache"``, ``as_of`` still the source's own
time) and sends nothing. Whether such a price may still drive a trade is the
cycle's usual rule, ``cycle.max_quote_age_seconds``: its age grows honestly.

Only a fetch that brought prices counts: CoinGecko charges successful calls
only, so after a failure the next cycle tries again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from tradecycle.infra.errors import ServiceError
from tradecycle.models import Quote
from tradecycle.ports import Clock, EventLog, QuoteSource
from tradecycle.infra.times import iso

# Cron does not start cycles exactly a minute apart, and a fetch is stamped when
# the whole fetch step ends: a fetch this much early still counts as on time,
# so that 360 s means every sixth one-minute cycle, not every seventh.
SLACK_SECONDS = 10.0


class StoredQuotes(Protocol):
    def last_fetch(self, symbol: str, source: str) -> tuple[Quote, datetime] | None:
        """The newest price ``source`` gave for ``symbol`` (a ``cache`` quote) and when it was fetched."""


class NotFetchedYet(ServiceError):
    """Between fetches, a symbol that has no stored price from the source."""


class ThrottledQuotes:
    """A ``QuoteSource`` that calls ``source`` at most every ``refresh_seconds``."""

    def __init__(self, source: QuoteSource, stored: StoredQuotes, clock: Clock, refresh_seconds: float,
                 log: EventLog, config_key: str = "refresh_seconds"):
        self.source, self.stored, self.clock, self.log = source, stored, clock, log
        self.refresh_seconds = refresh_seconds
        self.config_key = config_key
        self.name = source.name

    def get_quotes(self, symbols: Sequence[str]) -> dict[str, Quote | Exception]:
        """Fresh quotes from the source when a fetch is due, else the stored ones.

        Due: nothing stored yet for any of ``symbols``, the newest fetch is
        ``refresh_seconds`` old (less ``SLACK_SECONDS``), or dated after now
        (the clock was set back). Between fetches a
        symbol with no stored price maps to ``NotFetchedYet``. Never raises
        for a service problem (the source's own errors pass through)."""
        now = self.clock.now()
        stored = {symbol: self.stored.last_fetch(symbol, self.source.name) for symbol in dict.fromkeys(symbols)}
        fetched_at = [entry[1] for entry in stored.values() if entry]
        if not fetched_at:
            return self.source.get_quotes(symbols)
        last = max(fetched_at)
        elapsed_seconds = (now - last).total_seconds()
        wait_seconds = self.refresh_seconds - SLACK_SECONDS - elapsed_seconds
        if wait_seconds <= 0 or elapsed_seconds < 0:  # a clock set back must not stop the fetches
            return self.source.get_quotes(symbols)
        self.log(
            "quotes.reused",
            source=self.name,
            symbols=len(stored),
            last_fetch_at=iso(last),
            next_fetch_in_seconds=round(wait_seconds),
            message=f"{self.name} fetch not due ({self.config_key} = {self.refresh_seconds:g}): using the prices "
                    f"fetched at {last:%H:%M:%S}Z",
        )
        return {
            symbol: entry[0] if entry else NotFetchedYet(
                self.name, f"no stored price for {symbol} yet; next fetch in about {round(wait_seconds)} s ({self.config_key})")
            for symbol, entry in stored.items()
        }
