"""A record no one can edit unnoticed: a hash chain over ``ai_decisions`` and ``trades``.

Every write to one of those rows is one link of the chain, written in the
same transaction as the write: an insert, an update (a fill, a span
extension: store/spans.py) and a deletion (a prune, a replay asked again) alike.
A link is one row of ``chain_links``, except the extensions of one moment,
which share one (a *run*, below):

    seq        1, 2, 3, ...: the link's place in the chain (a run: its first link's)
    kind       1 ai_decisions, 2 trades, 0 a checkpoint, 3 a run of span extensions of ai_decisions
    row_id     the row's id (None for a checkpoint; a run: its first row's)
    linked_at  when it was linked (Unix seconds)
    content    the first 16 bytes of SHA-256 over the row's canonical content as the
               write left it (None: the write deleted the row); a run: the first 8
               bytes of SHA-256 over the span's new end, ``[last_seen_at, last_cycle_id]``
               as compact JSON (``span_hash``), the same for each of its links
    hash       the link's hash: SHA-256 of the text
               "<previous link's hash, hex>|<seq>|<table>|<row_id>|<linked_at>|<content, hex>"
               (the first link's previous hash is 64 zeros; <table> is ``ai_decisions+``
               for an extension). Stored only on every 32nd link (``HASH_STRIDE``) and on
               checkpoints (a run that holds a 32nd link: its last link's); the others are
               recomputed from the stored one before them, so a link costs half the bytes
    detail     a checkpoint's record (below); a run: its further rows, each as the
               difference from the row before it (row_id 9 and ``"1,1,-10,7"``: rows 9,
               10, 11, 1, 8), its links numbered seq, seq + 1, ...

A row's canonical content is its columns as compact JSON with sorted keys
(``{"action":"hold","created_at":...}``), leaving out NULLs and values equal
to the column's declared default, so that a migration adding a column (NULL or
with a default) changes no old row's content.

A span extension (a hold that repeats the one of the cycle before: ``repeats``
one more, a new ``last_seen_at`` and ``last_cycle_id``) changes nothing else, so
its link records only the span's new end: ``verify`` counts the extensions
since the row's insert and expects the row's content, with ``repeats`` less
that many and no span end, to be what the insert's link recorded. That holds
while a row's links are its insert and extensions; a row linked in full since
(a database linked before this format, 2026-12, linked every extension in
full: those links verify as they are) keeps getting full links
(``append_extension``). The extensions of a cycle (same second, same span end)
are packed in one run of up to ``MAX_RUN`` links: a hold extended every minute
costs about 45 bytes a cycle for all symbols, not about 37 a symbol. Older
links are read as they were written: the format needs no migration.

The newest link's hash, the *head*, stands for every write before it: change
a row, delete one without a link, reorder two, or edit a link, and the hashes
no longer follow (``tradecycle verify`` names the first row that differs,
store/verify.py). Someone who rewrites the chain itself from some link on can
make it consistent again, but not with the same head: a copy of the head kept
anywhere else (the daily summary alert carries it, the report shows it)
proves every write up to it (``verify --head``). A link packed into a run later
changes no earlier link: a head kept mid-cycle stays a link of the chain.

Cost: one extra small insert per write (about 40 bytes: the content hash and a
few integers), or a few bytes more in the cycle's run for an extension, in the
transaction the write needed anyway; finding the head to link from reads at
most 31 links back.

Pruning (``database.keep_days``, store/retention.py) deletes rows with a
deletion link each, then drops the oldest links in batches of
``CHAIN_BATCH_LINKS`` (a run that reaches past a batch goes whole), once the
last of a batch is older than the horizon. Each batch leaves a *checkpoint*: a
link whose ``detail`` holds the hash of the last link dropped (the next link
follows from it) and what the dropped links recorded for every row that they
still vouch for (an order still open, a row deleted without a link):
``[seq, content]``, or ``[seq, content at insert, extensions, span end]``.
Verification starts from the newest checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from tradecycle.store.db import Database

CHAINED = {"ai_decisions": 1, "trades": 2}
CHECKPOINT = 0
EXTENDED = 3  # a run of span extensions of ai_decisions rows (store/spans.py), packed in one chain_links row
TABLES = {0: "checkpoint", 1: "ai_decisions", 2: "trades", 3: "ai_decisions"}  # the table a link's row_id is in
LABELS = {0: "checkpoint", 1: "ai_decisions", 2: "trades", 3: "ai_decisions+"}  # the table as a link's hash names it
GENESIS = "0" * 64
CONTENT_BYTES = 16
SPAN_BYTES = 8  # an extension's content: the first 8 bytes of SHA-256 over the span's end
SPAN_COLUMNS = ("repeats", "last_seen_at", "last_cycle_id")
MAX_RUN = 32  # extensions packed in one chain_links row at most
RUN_SCAN_ROWS = 64  # how far back (chain_links rows) a writer looks for a row's previous extension
HASH_STRIDE = 32  # every 32nd link (and every checkpoint) stores its hash; the rest are recomputed
CHAIN_BATCH_LINKS = 2000  # links dropped per prune transaction (tens of milliseconds)

_Entry = tuple[int, int | None, bytes | None]  # (kind, row_id, content)


# -- hashing -------------------------------------------------------------------------


def canonical(row: dict[str, Any], defaults: dict[str, Any]) -> str:
    """The row as the chain sees it: compact JSON, sorted keys, NULLs and declared defaults left out."""
    kept = {k: v for k, v in row.items()
            if v is not None and (k not in defaults or v != defaults[k] or type(v) is not type(defaults[k]))}
    return json.dumps(kept, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_bytes_hex)


def content_hash(row: dict[str, Any], defaults: dict[str, Any]) -> bytes:
    return hashlib.sha256(canonical(row, defaults).encode("utf-8")).digest()[:CONTENT_BYTES]


def link_hash(prev_hex: str, seq: int, kind: int, row_id: int | None, linked_at: int, content: bytes | None) -> str:
    """The hash of one link (hex), from the previous link's hash and what it records."""
    text = f"{prev_hex}|{seq}|{LABELS[kind]}|{'' if row_id is None else row_id}|{linked_at}|{content.hex() if content else ''}"
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def span_hash(row: dict[str, Any]) -> bytes:
    """What an extension link records: the span's end (``last_seen_at``, ``last_cycle_id``)."""
    text = json.dumps([row.get("last_seen_at"), row.get("last_cycle_id")], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).digest()[:SPAN_BYTES]


def base_of(row: dict[str, Any], extensions: int) -> dict[str, Any] | None:
    """The row as it was inserted, before ``extensions`` span extensions (None: it cannot have been)."""
    repeats = row.get("repeats")
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < extensions:
        return None
    return {**row, "repeats": repeats - extensions, "last_seen_at": None, "last_cycle_id": None}


def matches(row: dict[str, Any], defaults: dict[str, Any], recorded: Sequence) -> bool:
    """Whether ``row`` is what its links recorded: ``[seq, content hex]`` (its last full link), or
    ``[seq, content hex, extensions, span hex]`` (a full link of the row as inserted, then that many
    extensions, the last of them recording ``span``)."""
    extensions = recorded[2] if len(recorded) > 2 else 0
    if not extensions:
        return recorded[1] is not None and content_hash(row, defaults).hex() == recorded[1]
    base = base_of(row, extensions)
    return (base is not None and recorded[1] is not None and span_hash(row).hex() == recorded[3]
            and content_hash(base, defaults).hex() == recorded[1])


def record(state: dict[str, list], seq: int, kind: int, row_id: int, content: bytes | None) -> None:
    """What link ``seq`` says of its row, into ``state`` ("table:id" -> what ``matches`` takes)."""
    key = f"{TABLES[kind]}:{row_id}"
    if kind == EXTENDED:
        before = state.get(key)
        base, extensions = (before[1], before[2] if len(before) > 2 else 0) if before else (None, 0)
        state[key] = [seq, base, extensions + 1, content.hex() if content else None]
    elif content is None:
        state.pop(key, None)
    else:
        state[key] = [seq, content.hex()]


def run_ids(row_id: int, detail: str | None) -> list[int]:
    """The rows of an extension run: ``row_id``, then each next one as a difference from the one before."""
    ids = [row_id]
    if not isinstance(row_id, int):  # an edited run (its hashes then differ)
        return ids
    for step in str(detail).split(",") if detail is not None else ():
        if _STEP.match(step):  # anything else was never written: an edited run, whose hashes then differ
            ids.append(ids[-1] + int(step))
    return ids


_STEP = re.compile(r"^-?\d{1,12}$")


def expand(seq: int, kind: int, row_id: int | None, linked_at: int, content: bytes | None, stored: bytes | None,
           detail: str | None):
    """The links a chain_links row holds, each ``(seq, kind, row_id, linked_at, content, stored hash)``: one, or
    an extension run's (its stored hash, if any, is its last link's)."""
    if kind != EXTENDED:
        yield seq, kind, row_id, linked_at, content, stored
        return
    ids = run_ids(row_id, detail)
    for i, rid in enumerate(ids):
        yield seq + i, kind, rid, linked_at, content, stored if i == len(ids) - 1 else None


def _bytes_hex(value: Any) -> str:
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"cannot chain a value of type {type(value).__name__}")


_LITERAL = re.compile(r"^(?:(?P<int>-?\d+)|(?P<float>-?\d+\.\d*(?:[eE][-+]?\d+)?)|'(?P<text>(?:[^']|'')*)')$")
_DEFAULTS: dict[tuple, dict[str, Any]] = {}  # PRAGMA table_info rows -> their constant defaults


def column_defaults(conn: sqlite3.Connection, table: str) -> dict[str, Any]:
    """column -> its declared constant default (only literal numbers and strings; an
    expression such as CURRENT_TIMESTAMP is no constant and is never left out)."""
    info = tuple(conn.execute(f"PRAGMA table_info({table})"))
    if info not in _DEFAULTS:
        defaults = {}
        for _cid, name, _type, _notnull, default, _pk in info:
            found = _LITERAL.match(default.strip()) if isinstance(default, str) else None
            if found and found["int"] is not None:
                defaults[name] = int(found["int"])
            elif found and found["float"] is not None:
                defaults[name] = float(found["float"])
            elif found:
                defaults[name] = found["text"].replace("''", "'")
        _DEFAULTS[info] = defaults
    return _DEFAULTS[info]


# -- writing links (inside the transaction of the write) -------------------------------


def append_rows(conn: sqlite3.Connection, table: str, row_ids: Iterable[int], at: datetime | str | None = None) -> str:
    """Append one link per row of ``table`` as it is now (a row that is gone: a deletion
    link), on a connection inside the write transaction that wrote them. Returns the new head."""
    defaults = column_defaults(conn, table)
    entries = []
    for row_id in row_ids:
        row = _fetch_row(conn, table, row_id)
        entries.append((CHAINED[table], row_id, None if row is None else content_hash(row, defaults)))
    return append(conn, entries, at)


def append_deletions(conn: sqlite3.Connection, table: str, row_ids: Iterable[int], at: datetime | str | None = None) -> str:
    """One deletion link per row id (inside the transaction that deletes them)."""
    return append(conn, [(CHAINED[table], row_id, None) for row_id in row_ids], at)


def append(conn: sqlite3.Connection, entries: Sequence[_Entry], at: datetime | str | None = None,
           detail: str | None = None) -> str:
    """Append ``entries`` after the head; returns the new head (hex). The caller holds the write lock."""
    seq, prev = head_of(conn)
    linked_at = _seconds(at)
    for kind, row_id, content in entries:
        seq += 1
        prev = link_hash(prev, seq, kind, row_id, linked_at, content)
        stored = bytes.fromhex(prev) if stores_hash(seq, kind) else None
        conn.execute(
            "INSERT INTO chain_links (seq, kind, row_id, linked_at, content, hash, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (seq, kind, row_id, linked_at, content, stored, detail),
        )
    return prev


def stores_hash(seq: int, kind: int) -> bool:
    """Whether a link keeps its hash in ``chain_links.hash``: every ``HASH_STRIDE``-th and every checkpoint."""
    return seq % HASH_STRIDE == 0 or kind == CHECKPOINT


def head_of(conn: sqlite3.Connection) -> tuple[int, str]:
    """(seq, hash hex) of the newest link: the newest stored hash (at most
    ``HASH_STRIDE`` links back) carried forward over the links after it; (0, GENESIS)
    before the first link."""
    anchor = conn.execute("SELECT seq, kind, row_id, detail, hash FROM chain_links WHERE hash IS NOT NULL"
                          " ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (anchor[0] + len(run_ids(anchor[2], anchor[3])) - 1 if anchor[1] == EXTENDED else anchor[0],
                 anchor[4].hex()) if anchor else (0, GENESIS)
    for row in conn.execute("SELECT seq, kind, row_id, linked_at, content, hash, detail FROM chain_links WHERE seq > ?"
                            " ORDER BY seq", (anchor[0] if anchor else 0,)):
        for seq, kind, row_id, linked_at, content, _stored in expand(*row):
            prev = link_hash(prev, seq, kind, row_id, linked_at, content)
    return seq, prev


def append_extension(conn: sqlite3.Connection, row_id: int, at: datetime | str | None = None) -> str:
    """Link a span extension of ai_decisions row ``row_id`` (store/spans.py: ``repeats`` one more, a new
    ``last_seen_at`` and ``last_cycle_id``), inside its write transaction; returns the new head.

    The link records only the span's new end (``span_hash``); ``verify`` counts the extensions since the
    row's insert to know ``repeats``. That holds when the row's earlier links are its insert (a full link of
    the row as inserted) and extensions: otherwise (a row linked in full since, as a database linked before
    this format did at every extension) this is a full link, as any write's. Extensions of one moment with
    the same end go in one chain_links row (a run: ``row_id`` the first, ``detail`` the next ones as
    differences), up to ``MAX_RUN``."""
    row = _fetch_row(conn, "ai_decisions", row_id)
    if row is None or not _extends_a_run(conn, row_id, row):
        return append_rows(conn, "ai_decisions", [row_id], at)
    seq, prev = head_of(conn)
    linked_at, content = _seconds(at), span_hash(row)
    seq += 1
    head_hash = link_hash(prev, seq, EXTENDED, row_id, linked_at, content)
    last = conn.execute("SELECT seq, kind, row_id, linked_at, content, detail FROM chain_links ORDER BY seq DESC LIMIT 1").fetchone()
    if last is not None and last[1] == EXTENDED and last[3] == linked_at and last[4] == content:
        ids = run_ids(last[2], last[5])
        if len(ids) < MAX_RUN:
            detail = f"{last[5]},{row_id - ids[-1]}" if last[5] else str(row_id - ids[-1])
            stored = bytes.fromhex(head_hash) if (last[0] - 1) // HASH_STRIDE != seq // HASH_STRIDE else None
            conn.execute("UPDATE chain_links SET detail = ?, hash = ? WHERE seq = ?", (detail, stored, last[0]))
            return head_hash
    conn.execute("INSERT INTO chain_links (seq, kind, row_id, linked_at, content, hash) VALUES (?, ?, ?, ?, ?, ?)",
                 (seq, EXTENDED, row_id, linked_at, content, bytes.fromhex(head_hash) if stores_hash(seq, EXTENDED) else None))
    return head_hash


def _extends_a_run(conn: sqlite3.Connection, row_id: int, row: dict[str, Any]) -> bool:
    """Whether the row's links so far are its insert and extensions: this is its first extension, or
    its last link (found among the newest ``RUN_SCAN_ROWS`` chain_links rows) is an extension."""
    if row.get("repeats") == 1:
        return True
    for kind, rid, detail in conn.execute("SELECT kind, row_id, detail FROM chain_links ORDER BY seq DESC LIMIT ?",
                                          (RUN_SCAN_ROWS,)):
        if kind == EXTENDED and row_id in run_ids(rid, detail):
            return True
        if kind == CHAINED["ai_decisions"] and rid == row_id:
            return False
    return False


def link_existing(conn: sqlite3.Connection) -> None:
    """Link every row already there, oldest id first (the migration that adds the chain)."""
    for table in CHAINED:
        defaults = column_defaults(conn, table)
        cursor = conn.execute(f"SELECT * FROM {table} ORDER BY id")
        names = [c[0] for c in cursor.description]
        while page := cursor.fetchmany(1000):
            append(conn, [(CHAINED[table], values[0], content_hash(dict(zip(names, values)), defaults)) for values in page])


def _fetch_row(conn: sqlite3.Connection, table: str, row_id: int) -> dict[str, Any] | None:
    cursor = conn.execute(f"SELECT * FROM {table} WHERE id = ?", (row_id,))
    values = cursor.fetchone()
    return None if values is None else dict(zip((c[0] for c in cursor.description), values))


def _seconds(at: datetime | str | None) -> int:
    if at is None:
        return int(time.time())
    if isinstance(at, str):
        at = datetime.fromisoformat(at.replace("Z", "+00:00"))
    return int(at.timestamp())


# -- reading -----------------------------------------------------------------------------


def chain_head(db: Database) -> dict[str, Any] | None:
    """The newest link: ``{"hash", "seq", "linked_at"}`` (hash in hex, time ISO UTC); None before the first write."""
    row = db.one("SELECT seq, linked_at FROM chain_links ORDER BY seq DESC LIMIT 1")
    if row is None:
        return None
    own = not db.conn.in_transaction
    if own:
        db.execute("BEGIN")  # one snapshot: a link written meanwhile is not half seen
    try:
        seq, head = head_of(db.conn)
        linked_at = db.one("SELECT linked_at FROM chain_links WHERE seq <= ? ORDER BY seq DESC LIMIT 1", (seq,))["linked_at"]
    finally:
        if own:
            db.execute("ROLLBACK")
    return {"hash": head, "seq": seq, "linked_at": iso_seconds(linked_at)}


def latest_checkpoint(conn: sqlite3.Connection) -> dict[str, Any] | None:
    """The newest checkpoint's ``detail`` (``upto``, ``hash``, ``rows``) with its own ``seq``; None if there is none."""
    row = conn.execute("SELECT seq, detail FROM chain_links WHERE kind = 0 ORDER BY seq DESC LIMIT 1").fetchone()
    return None if row is None else {**json.loads(row[1]), "seq": row[0]}


def iso_seconds(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat().replace("+00:00", "Z")


# -- pruning -------------------------------------------------------------------------------


class ChainBroken(Exception):
    """The links to be pruned do not follow from each other: they are kept for ``verify`` to report."""


def prune_batch(db: Database, before: datetime | str, batch: int = CHAIN_BATCH_LINKS) -> int:
    """Drop the oldest ``batch`` links if they are due (``prune_due``), leaving a
    checkpoint, in one write transaction. Returns how many were dropped (0: no
    full batch is that old yet, or the batch was edited: a prune never drops the
    evidence of an edit, so the chain is then pruned no further)."""
    if not prune_due(db, before, batch):  # a read: the write lock is taken only when there is work
        return 0
    try:
        with db.transaction():
            conn = db.conn
            first = conn.execute("SELECT MIN(seq) FROM chain_links").fetchone()[0]
            checkpoint = latest_checkpoint(conn)
            rows: dict[str, list] = dict(checkpoint["rows"]) if checkpoint else {}
            prev, last, count = checkpoint["hash"] if checkpoint else GENESIS, first - 1, 0
            for stored_row in conn.execute("SELECT seq, kind, row_id, linked_at, content, hash, detail FROM chain_links"
                                           " WHERE seq BETWEEN ? AND ? ORDER BY seq", (first, first + batch - 1)).fetchall():
                for seq, kind, row_id, linked_at, content, stored in expand(*stored_row):
                    prev, last, count = link_hash(prev, seq, kind, row_id, linked_at, content), seq, count + 1
                    if stored is not None and stored.hex() != prev:
                        raise ChainBroken(f"link {seq}: its stored hash does not follow from the links before it")
                    if kind != CHECKPOINT:  # an older checkpoint: what it vouched for is in the newest one
                        record(rows, seq, kind, row_id, content)
            rows = {key: value for key, value in rows.items() if _still_vouched(conn, key, value[0])}
            detail = json.dumps({"upto": last, "hash": prev, "rows": rows}, sort_keys=True, separators=(",", ":"))
            # The checkpoint first (its own hash is stored: the links after it start from it), then the links go.
            append(conn, [(CHECKPOINT, None, hashlib.sha256(detail.encode("utf-8")).digest()[:CONTENT_BYTES])], detail=detail)
            conn.execute("DELETE FROM chain_links WHERE seq <= ?", (last,))
    except ChainBroken:
        return 0
    return count


def prune_due(db: Database, before: datetime | str, batch: int = CHAIN_BATCH_LINKS) -> bool:
    """Whether the oldest ``batch`` links are due: the last of them was linked before
    ``before`` (two reads on the primary key). Links are linked in time order; one
    stamped later than its place (a clock set wrong for a while) goes with its batch
    all the same, and a row it stands for is carried by the checkpoint."""
    first = db.one("SELECT MIN(seq) AS seq FROM chain_links")["seq"]
    if first is None:
        return False
    last = db.one("SELECT seq, kind, row_id, linked_at, detail FROM chain_links WHERE seq < ? ORDER BY seq DESC LIMIT 1",
                  (first + batch,))  # the batch's last row: an extension run reaching past it goes whole
    if last["kind"] == EXTENDED:
        end = last["seq"] + len(run_ids(last["row_id"], last["detail"])) - 1
    else:
        end = last["seq"]
    return end >= first + batch - 1 and last["linked_at"] < _seconds(before)


def _still_vouched(conn: sqlite3.Connection, key: str, seq: int) -> bool:
    """Whether a checkpoint must carry this row's content: the row is still there, or
    it is gone with no deletion link after ``seq`` (so ``verify`` still reports it)."""
    table, row_id = key.split(":")
    if conn.execute(f"SELECT 1 FROM {table} WHERE id = ?", (int(row_id),)).fetchone():
        return True
    deleted = conn.execute(
        "SELECT 1 FROM chain_links WHERE content IS NULL AND kind = ? AND row_id = ? AND seq > ? LIMIT 1",
        (CHAINED[table], int(row_id), seq),
    ).fetchone()
    return deleted is None
