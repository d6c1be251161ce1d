"""``tradecycle score``: is the analyst any good? The scorecard of the stored decisions."""

from __future__ import annotations

from typing import Any

from tradecycle.commands.common import database_path, reading, since_utc


def score(config_option: str | None, db_option: str | None, since: str | None = None, model: str | None = None,
          symbol: str | None = None, include_contaminated: bool = False) -> dict[str, Any]:
    """The scorecard (``scorecard.py``) of the decisions at or after ``since``,
    narrowed to one model and/or symbol. Before the first run: an empty scorecard.
    Decisions marked contaminated (about a moment on or before the model's training
    cutoff) count only with ``include_contaminated``; ``filters.contaminated`` says
    how many there are."""
    from tradecycle.rules import scorecard
    from tradecycle.store import scores

    since = since_utc(since) if since else None
    symbol = symbol.upper() if symbol else None
    with reading(database_path(config_option, db_option)) as db:
        if db is None:
            rows, fills, positions, equity, benchmark = [], [], [], [], ({}, {})
            contaminated = 0
        else:
            rows = scores.scored_decisions(db, scorecard.HORIZONS, since, model, symbol, include_contaminated)
            contaminated = scores.contaminated_count(db, since)
            fills = scores.fills(db, symbol)
            positions = scores.position_rows(db, symbol)
            equity = scores.equity_by_cycle(db, since)
            benchmark = scores.benchmark_prices(db, since, None)
    card = scorecard.scorecard(rows, fills, positions, equity, benchmark, since)
    filters = {"since": since, "model": model, "symbol": symbol, "include_contaminated": include_contaminated,
               "contaminated": contaminated}
    return {"filters": filters, **card}
