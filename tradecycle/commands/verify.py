"""``tradecycle verify``: is the record as it was written? The hash chain over
``ai_decisions`` and ``trades`` recomputed (store/chain.py, store/verify.py)."""

from __future__ import annotations

from typing import Any

from tradecycle.commands.common import database_path, reading


def verify(config_option: str | None, db_option: str | None, head: str | None = None) -> dict[str, Any]:
    """The chain's verdict (``store.verify.verify_chain``) with ``database``; with
    ``head``, also whether that kept head is a link of the chain. NotFound (exit 1)
    when there is no database."""
    from tradecycle.infra.errors import NotFound
    from tradecycle.store.verify import kept_head_note, verify_chain

    path = database_path(config_option, db_option)
    with reading(path) as db:
        if db is None:
            raise NotFound(f"there is no database at {path}: nothing to verify")
        result = verify_chain(db, head)
    return {"database": str(path), **result, "kept_head_note": kept_head_note(result)}
