"""Everything that touches SQLite: the connection, the versioned schema, the
audit trail, the read-side queries and the simulator's books. No SQL lives
anywhere else."""

from __future__ import annotations

from pathlib import Path

from .audit import KillSwitch, Store, iso, parse_iso
from .db import Database
from .schema import LATEST_VERSION, migrate, schema_version
from .sim import SimLedger


def open_database(path: Path) -> Database:
    """Open (creating if needed) and migrate. Raises DatabaseUnusable."""
    db = Database(path)
    migrate(db)
    return db


__all__ = [
    "Database",
    "KillSwitch",
    "LATEST_VERSION",
    "SimLedger",
    "Store",
    "iso",
    "migrate",
    "open_database",
    "parse_iso",
    "schema_version",
]
