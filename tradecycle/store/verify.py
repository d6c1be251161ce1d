"""``tradecycle verify``: recompute the hash chain (store/chain.py) and compare
it with the rows.

Three passes, each streaming in pages (a year's chain never sits in memory):

1. the links from the newest checkpoint on, each hash recomputed from the one
   before: no gap in ``seq``, every stored hash (every ``HASH_STRIDE``-th link,
   every checkpoint) as recomputed, a checkpoint's ``detail`` as its content
   recorded;
2. what the links say each row is now (its last link; a deletion link: gone;
   span extensions, store/chain.py: how many since its insert, and the end
   the last one recorded);
3. every row of ``ai_decisions`` and ``trades``: its canonical content must be
   what its last link recorded (an extended row: its span's end as the last
   extension recorded, and the rest, ``repeats`` less the extensions, as its
   insert recorded); a row with no link was written around the chain; a row a
   link recorded that is gone without a deletion link was deleted.

The problems are ordered by the link they concern (a row: its last link), so
the first one named is the earliest place where the record differs.
"""

from __future__ import annotations

import hashlib
from typing import Any

from tradecycle.store import chain
from tradecycle.store.db import Database

PAGE = 5000
SHOWN_PROBLEMS = 20
MIN_HEAD_CHARS = 12  # a kept head may be a prefix, as git's short hashes are
_UNLINKED = float("inf")  # a row in no link sorts after every link


def verify_chain(db: Database, kept_head: str | None = None) -> dict[str, Any]:
    """``_verify`` on one snapshot of the database (a read transaction: a cycle
    writing meanwhile is neither waited for nor half seen)."""
    db.execute("BEGIN")
    try:
        return _verify(db, kept_head)
    finally:
        db.execute("ROLLBACK")


def _verify(db: Database, kept_head: str | None) -> dict[str, Any]:
    """The verdict on the chain: ``ok``, ``head`` (``hash``, ``seq``, ``linked_at``:
    what to keep elsewhere), ``links`` checked, ``rows`` per table, ``checkpoint``
    (the newest: ``seq``, ``upto``), ``problems`` (the first ``SHOWN_PROBLEMS``,
    earliest first, each ``table``, ``row_id``, ``seq``, ``message``) and
    ``problem_count``; with ``kept_head``, ``kept_head`` (``hash``, ``found``,
    ``seq``): whether that hash is a link of this chain."""
    problems: list[tuple[float, str, int, dict[str, Any]]] = []
    checkpoint = chain.latest_checkpoint(db.conn)
    state: dict[str, list] = {}
    prev, expected = chain.GENESIS, 1
    if checkpoint is not None:
        prev, expected = checkpoint["hash"], checkpoint["upto"] + 1
        state = {key: list(recorded) for key, recorded in checkpoint["rows"].items()}
    kept = kept_head.strip().lower() if kept_head is not None else None
    usable = kept is not None and len(kept) >= MIN_HEAD_CHARS
    found_kept: int | None = None
    links, last, window = 0, None, expected  # window: the first link since the last stored hash that followed
    for link in _links(db, expected):
        links += 1
        seq, kind, row_id = link["seq"], link["kind"], link["row_id"]
        table = chain.TABLES.get(kind, f"kind {kind}")
        if seq != expected:
            _add(problems, expected, None, None, f"links {expected} to {seq - 1} are missing: the chain was cut here")
        content = link["content"]
        recomputed = chain.link_hash(prev, seq, kind, row_id, link["linked_at"], content) if kind in chain.TABLES else ""
        stored = link["hash"].hex() if link["hash"] is not None else None
        if stored is not None and recomputed != stored:
            where = f"link {seq}" if window == seq else f"links {window} to {seq}"
            _add(problems, window, None, None, f"{where}: the chain was edited here (the hash stored at link {seq}"
                                               " does not follow from the links before it)")
        elif kind == chain.CHECKPOINT and hashlib.sha256((link["detail"] or "").encode("utf-8")).digest()[:chain.CONTENT_BYTES] != content:
            _add(problems, seq, None, None, f"link {seq} (a checkpoint): its detail was edited")
        if usable and found_kept is None and recomputed.startswith(kept):
            found_kept = seq
        if stored is not None:
            window = seq + 1
        if kind in (1, 2, chain.EXTENDED) and not isinstance(row_id, int):
            _add(problems, seq, None, None, f"link {seq}: it names no row (the chain was edited here)")
        elif kind in (1, 2, chain.EXTENDED):
            chain.record(state, seq, kind, row_id, content)
        prev, expected, last = stored or recomputed, seq + 1, link
    counts = {}
    for table in chain.CHAINED:
        counts[table] = _check_rows(db, table, state, problems)
    for key, (seq, *_recorded) in state.items():  # recorded, never deleted by a link, and not there
        table, row_id = key.split(":")
        _add(problems, seq, table, int(row_id), f"{table} row {row_id} was deleted without a trace (its last link is {seq})")
    problems.sort(key=lambda p: (p[0], p[1], p[2]))
    result: dict[str, Any] = {
        "ok": not problems and (kept is None or found_kept is not None),
        "head": None if last is None else {"hash": prev, "seq": last["seq"],
                                           "linked_at": chain.iso_seconds(last["linked_at"])},
        "links": links, "rows": counts,
        "checkpoint": None if checkpoint is None else {"seq": checkpoint["seq"], "upto": checkpoint["upto"]},
        "problems": [p[3] for p in problems[:SHOWN_PROBLEMS]], "problem_count": len(problems),
    }
    if kept is not None:
        result["kept_head"] = {"hash": kept, "found": found_kept is not None, "seq": found_kept}
    return result


def _links(db: Database, start: int):
    """Every link from ``seq`` ``start`` on, a page of chain_links rows at a time (an extension run: each of its links)."""
    after = start - 1
    while True:
        page = db.query("SELECT seq, kind, row_id, linked_at, content, hash, detail FROM chain_links"
                        " WHERE seq > ? ORDER BY seq LIMIT ?", (after, PAGE))
        for row in page:
            if row["kind"] != chain.EXTENDED:
                yield row
                continue
            for seq, kind, row_id, linked_at, content, stored in chain.expand(*(row[k] for k in _COLUMNS)):
                yield {"seq": seq, "kind": kind, "row_id": row_id, "linked_at": linked_at, "content": content,
                       "hash": stored, "detail": None}
        if len(page) < PAGE:
            return
        after = page[-1]["seq"]


_COLUMNS = ("seq", "kind", "row_id", "linked_at", "content", "hash", "detail")


def _check_rows(db: Database, table: str, state: dict[str, list], problems: list) -> int:
    """Compare every row of ``table`` with its last link (removing it from ``state``); returns the row count."""
    count, after = 0, -1
    defaults = chain.column_defaults(db.conn, table)
    while True:
        page = db.query(f"SELECT * FROM {table} WHERE id > ? ORDER BY id LIMIT ?", (after, PAGE))
        for row in page:
            count += 1
            key = f"{table}:{row['id']}"
            recorded = state.pop(key, None)
            if recorded is None:
                _add(problems, _UNLINKED, table, row["id"], f"{table} row {row['id']} is in no link: it was written around the chain")
            elif not chain.matches(row, defaults, recorded):
                _add(problems, recorded[0], table, row["id"],
                     f"{table} row {row['id']} differs from what its last link ({recorded[0]}) recorded")
        if len(page) < PAGE:
            return count
        after = page[-1]["id"]


def _add(problems: list, seq: float, table: str | None, row_id: int | None, message: str) -> None:
    entry = {"seq": None if seq == _UNLINKED else int(seq), "table": table, "row_id": row_id, "message": message}
    problems.append((seq, table or "", row_id if row_id is not None else -1, entry))


def kept_head_note(result: dict[str, Any]) -> str | None:
    """One line on a kept head that is not in the chain, else None."""
    kept = result.get("kept_head")
    if not kept or kept["found"]:
        return None
    if len(kept["hash"]) < MIN_HEAD_CHARS:
        return f"--head {kept['hash']}: give at least {MIN_HEAD_CHARS} hex digits of the kept head"
    older = " or it is older than the checkpoint (link %d): pruned history" % result["checkpoint"]["upto"] if result["checkpoint"] else ""
    return (f"the kept head {kept['hash']} is not a link of this chain: the record was rewritten after it{older}")

