"""``tradecycle cycles``, ``trades``, ``decisions`` and ``explain``: the history, newest first."""

from __future__ import annotations

from typing import Any

from tradecycle.commands.common import database_path, reading, since_utc


def history(kind: str, config_option: str | None, db_option: str | None, limit: int, since: str | None = None,
            symbol: str | None = None) -> list[dict[str, Any]]:
    """Newest-first rows of ``cycles``, ``trades`` or ``decisions``. A ``since``
    that is not an ISO time, or ``symbol`` for cycles, is a UsageError (exit 2)."""
    from tradecycle.infra.errors import UsageError
    from tradecycle.store import reads

    if symbol and kind == "cycles":
        raise UsageError("--symbol applies to trades and decisions, not to cycles")
    if since:
        since = since_utc(since)

    with reading(database_path(config_option, db_option)) as db:
        if db is None:
            return []
        if kind == "cycles":
            return reads.cycles(db, limit, since)
        return getattr(reads, kind)(db, limit, since, symbol.upper() if symbol else None)


def explain(config_option: str | None, db_option: str | None, cycle_id: str) -> dict[str, Any] | None:
    from tradecycle.store import reads

    with reading(database_path(config_option, db_option)) as db:
        return reads.cycle_story(db, cycle_id) if db else None
