"""``tradecycle vacuum``: rewrite the database once so that pruning shrinks it."""

from __future__ import annotations

from typing import Any

from tradecycle.commands.common import database_path, open_db


def vacuum(config_option: str | None, db_option: str | None) -> dict[str, Any]:
    """Rewrite the database once (``VACUUM``) so that it shrinks as history is
    pruned (``auto_vacuum = INCREMENTAL``, see store/retention.py). Takes the
    run lock, so no cycle runs meanwhile; ``killswitch`` waits for it (and
    gives up after 5 s: turn it on first if you may need it). A UsageError
    (exit 2) when there is no database; DatabaseUnusable (exit 1) when a
    cycle holds the lock."""
    import time

    from tradecycle.infra.errors import DatabaseUnusable, UsageError
    from tradecycle.infra.lock import FileLock, lock_path_for
    from tradecycle.store import retention

    path = database_path(config_option, db_option)
    if not path.exists():
        raise UsageError(f"there is no database at {path}")
    lock = FileLock(lock_path_for(path))
    if not lock.acquire():
        raise DatabaseUnusable(f"a cycle is running on {path}; try again in a minute")
    db = open_db(path)
    try:
        before = path.stat().st_size
        started = time.monotonic()
        retention.switch_to_incremental(db)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return {"database": str(path), "bytes_before": before, "bytes_after": path.stat().st_size,
                "seconds": round(time.monotonic() - started, 1)}
    finally:
        db.close()
        lock.release()
