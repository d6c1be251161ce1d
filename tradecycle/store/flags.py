"""The kill switch flag.

Kept apart from the audit trail so that ``tradecycle killswitch`` imports only
this, the connection and the schema: an emergency stop starts fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..times import iso, parse_iso  # noqa: F401  (re-exported for the store)
from .db import Database


@dataclass(frozen=True)
class KillSwitch:
    active: bool
    reason: str | None
    changed_at: str | None


def read_kill_switch(db: Database) -> KillSwitch:
    row = db.one("SELECT kill_switch_active, kill_switch_reason, kill_switch_changed_at FROM agent_status WHERE id = 1")
    if row is None:
        return KillSwitch(False, None, None)
    return KillSwitch(bool(row["kill_switch_active"]), row["kill_switch_reason"], row["kill_switch_changed_at"])


def write_kill_switch(db: Database, active: bool, reason: str | None, now: datetime) -> KillSwitch:
    """One short statement: never waits on a running cycle beyond SQLite's busy timeout."""
    db.execute(
        "UPDATE agent_status SET kill_switch_active = ?, kill_switch_reason = ?, kill_switch_changed_at = ? WHERE id = 1",
        (int(active), reason, iso(now)),
    )
    return read_kill_switch(db)
