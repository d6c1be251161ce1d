"""The kill switch flag.

Kept apart from the audit trail so that ``tradecycle killswitch`` imports only
this, the connection and the schema: an emergency stop starts fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tradecycle.infra.times import iso, parse_iso  # noqa: F401  (re-exported for the store)
from tradecycle.store.db import Database


@dataclass(frozen=True)
class KillSwitch:
    active: bool
    reason: str | None
    changed_at: str | None
    flatten: bool = False  # turned on with --flatten: close every position too
    cleanup_at: str | None = None  # when the cycles finished cancelling (and flattening); None: still to do

    @property
    def cleanup_due(self) -> bool:
        """On, and its open orders (and, with --flatten, its positions) not yet dealt with."""
        return self.active and self.cleanup_at is None


def read_kill_switch(db: Database) -> KillSwitch:
    row = db.one(
        "SELECT kill_switch_active, kill_switch_reason, kill_switch_changed_at, kill_switch_flatten, kill_switch_cleanup_at"
        " FROM agent_status WHERE id = 1"
    )
    if row is None:
        return KillSwitch(False, None, None)
    return KillSwitch(
        bool(row["kill_switch_active"]), row["kill_switch_reason"], row["kill_switch_changed_at"],
        bool(row["kill_switch_flatten"]), row["kill_switch_cleanup_at"],
    )


def write_kill_switch(db: Database, active: bool, reason: str | None, now: datetime, flatten: bool = False, *,
                      changed_by: str = "person", cycle_id: str | None = None) -> KillSwitch:
    """Set the flag and add its row to ``kill_switch_changes``, in one short
    write transaction: never waits on a running cycle beyond SQLite's busy
    timeout. ``changed_by`` is ``person`` (the CLI) or ``tool`` (a cycle, named
    by ``cycle_id``). Every change starts the clean-up afresh (the next cycle
    cancels open buys, or with ``flatten`` every open order and every position).

    On while already on, the switch keeps the time and reason it was turned on
    with (the new reason goes to the history only); ``flatten`` is never taken back."""
    flatten = active and flatten
    with db.transaction():
        if active and read_kill_switch(db).active:
            db.execute("UPDATE agent_status SET kill_switch_flatten = MAX(kill_switch_flatten, ?), kill_switch_cleanup_at = NULL"
                       " WHERE id = 1", (int(flatten),))
        else:
            db.execute(
                "UPDATE agent_status SET kill_switch_active = ?, kill_switch_reason = ?, kill_switch_changed_at = ?,"
                " kill_switch_flatten = ?, kill_switch_cleanup_at = NULL WHERE id = 1",
                (int(active), reason, iso(now), int(flatten)),
            )
        db.execute(
            "INSERT INTO kill_switch_changes (changed_at, active, changed_by, reason, flatten, cycle_id)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (iso(now), int(active), changed_by, reason, int(flatten), cycle_id),
        )
    return read_kill_switch(db)


def kill_switch_changes(db: Database, limit: int = 5) -> list[dict]:
    """The newest ``limit`` changes, newest first (``changed_at``, ``active``,
    ``changed_by``, ``reason``, ``flatten``, ``cycle_id``)."""
    return db.query(
        "SELECT changed_at, active, changed_by, reason, flatten, cycle_id FROM kill_switch_changes ORDER BY id DESC LIMIT ?",
        (limit,),
    )


def finish_kill_switch_cleanup(db: Database, changed_at: str | None, now: datetime) -> None:
    """Record that the clean-up of the switch set at ``changed_at`` is done (a
    switch changed meanwhile keeps its own clean-up due)."""
    db.execute(
        "UPDATE agent_status SET kill_switch_cleanup_at = ? WHERE id = 1 AND kill_switch_active = 1"
        " AND kill_switch_changed_at IS ?",
        (iso(now), changed_at),
    )
