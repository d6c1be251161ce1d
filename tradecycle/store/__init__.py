"""Everything that touches SQLite: the connection, the versioned schema, the
audit trail, the kill switch flag, the read-side queries and the simulator's
books. No SQL lives anywhere else.

The heavier parts (the audit trail and the simulator's books, which import the
domain models) load on first use, so ``killswitch`` pays only for the flag.

The record no one can edit unnoticed (chain.py, verify.py): every write to
``ai_decisions`` and ``trades`` (an insert, an update such as a fill or a span
extension, a deletion) appends one link to ``chain_links`` in the same
transaction. A link holds a 16-byte hash of the row's canonical content (a
span extension: an 8-byte hash of the span's new end, the extensions of a
cycle packed in one row); its
own hash, a SHA-256 over the previous link's hash and what it records, is
stored on every 32nd link and recomputed for the others, so the newest
link, the *head*, stands for every write before it. ``tradecycle verify``
recomputes the chain and compares every row with its last link; a copy of the
head kept elsewhere (the daily summary alert carries it) proves later edits,
since rewriting the chain changes the head. Writes stay cheap: one extra small
insert (about 40 bytes) per write. Pruning deletes rows with a deletion link
each and drops the oldest links in batches, each leaving a checkpoint (the
hash the next link follows from and the content of any row the dropped links
still vouch for), so what remains stays verifiable.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from tradecycle.infra.errors import DatabaseUnusable
from tradecycle.store.db import Database, can_write
from tradecycle.store.flags import KillSwitch, iso, kill_switch_changes, parse_iso, read_kill_switch, write_kill_switch
from tradecycle.store.schema import LATEST_VERSION, migrate, schema_version

_LAZY = {"Store": ".audit", "SimLedger": ".sim"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_database(path: Path) -> Database:
    """Open (creating if needed) and migrate. Raises DatabaseUnusable."""
    db = Database(path)
    migrate(db)
    return db


def open_read_only(path: Path) -> Database:
    """Open an existing database this user may only read (``Database(read_only=True)``).
    Raises DatabaseUnusable when its schema is older than this version's: a
    reader cannot upgrade it."""
    db = Database(path, read_only=True)
    version = schema_version(db)
    if version > LATEST_VERSION:
        db.close()
        raise DatabaseUnusable(f"database {path} has schema version {version}, newer than this tradecycle ({LATEST_VERSION}):"
                               " upgrade tradecycle")
    if version < LATEST_VERSION:
        db.close()
        raise DatabaseUnusable(f"database {path} is read-only for you and has schema version {version}, older than this"
                               f" tradecycle's {LATEST_VERSION}: run `tradecycle run` once as its owner to upgrade it")
    return db


__all__ = [
    "Database",
    "can_write",
    "open_read_only",
    "KillSwitch",
    "LATEST_VERSION",
    "SimLedger",
    "Store",
    "iso",
    "kill_switch_changes",
    "migrate",
    "open_database",
    "parse_iso",
    "read_kill_switch",
    "schema_version",
    "write_kill_switch",
]
