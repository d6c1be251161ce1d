"""Migrations of the record's integrity (issue 25): the provenance of every
decision and the hash chain over ``ai_decisions`` and ``trades``. Kept beside
schema.py (whose ``MIGRATIONS`` lists them) so that each file stays short;
like every migration, never edited once shipped."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite_utils

# decisions_v as store/views.py makes it, plus the provenance of each answer.
def _provenance_view() -> str:
    from tradecycle.store.views import EVERY_MONEY_COLUMN

    return EVERY_MONEY_COLUMN["decisions_v"].replace(
        " FROM ai_decisions", ", served_model, system_fingerprint, temperature, seed, training_cutoff, contaminated FROM ai_decisions")


def _m_decision_provenance(db: sqlite_utils.Database) -> None:
    """Under what terms each analyst answered: the model the server
    says answered (``served_model``: the reply's ``model``, often a dated
    snapshot of the one asked for), its ``system_fingerprint`` where the server
    sends one, the ``temperature`` and ``seed`` the request carried, the model's
    declared ``training_cutoff``, and ``contaminated`` (1: the decision is about
    a moment on or before that cutoff, so the model may have known what came next;
    left out of ``score`` unless ``--include-contaminated``)."""
    for column, kind in [("served_model", str), ("system_fingerprint", str), ("temperature", float), ("seed", int),
                         ("training_cutoff", str)]:
        db["ai_decisions"].add_column(column, kind)
    db.execute("ALTER TABLE ai_decisions ADD COLUMN contaminated INTEGER NOT NULL DEFAULT 0")
    db.execute("DROP VIEW IF EXISTS decisions_v")
    db.execute(f"CREATE VIEW decisions_v AS {_provenance_view()}")


def _m_record_chain(db: sqlite_utils.Database) -> None:
    """The hash chain over ``ai_decisions`` and ``trades`` (store/chain.py):
    one link per write, a partial index for the deletion links and one for the
    checkpoints (each a handful of rows a day). Every row already there is linked
    now, oldest first (about 3.5 s per 100,000 rows on a busy 2-core machine, once)."""
    from tradecycle.store import chain

    db.execute(
        """CREATE TABLE chain_links (seq INTEGER PRIMARY KEY, kind INTEGER NOT NULL, row_id INTEGER,
           linked_at INTEGER NOT NULL, content BLOB, hash BLOB, detail TEXT)"""
    )
    db.execute("CREATE INDEX idx_chain_links_deletions ON chain_links (kind, row_id, seq) WHERE content IS NULL")
    db.execute("CREATE INDEX idx_chain_links_checkpoints ON chain_links (seq) WHERE kind = 0")
    chain.link_existing(db.conn)
