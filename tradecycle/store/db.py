"""The SQLite connection: WAL, short busy timeout, one lock, errors translated.

Every statement goes through ``Database.execute``/``query`` so that any
``sqlite3`` failure becomes ``DatabaseUnusable`` (exit 1, before any order).
Statements run in autocommit mode; ``transaction()`` groups a few writes into
one short ``BEGIN IMMEDIATE`` so that ``killswitch on`` never waits long.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tradecycle.infra.errors import DatabaseUnusable

BUSY_TIMEOUT_SECONDS = 5.0
# How many ``?`` one statement may carry: SQLite's default SQLITE_MAX_VARIABLE_NUMBER (999 before 3.32).
MAX_PARAMETERS = 32_766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999


class Database:
    def __init__(self, path: Path, *, busy_timeout_seconds: float = BUSY_TIMEOUT_SECONDS, read_only: bool = False):
        """Open (creating it, unless ``read_only``) the database at ``path``.

        ``read_only`` opens it as a user who may only read it does (SQLite's
        ``mode=ro``): nothing is ever written, not even the WAL switch. When
        the folder cannot hold the ``-shm`` file a reader needs and no writer
        left one, the file is read as it stands (``immutable``): no cycle is
        writing it then, or its ``-wal`` would be there."""
        self.path = Path(path)
        self.read_only = read_only
        self._lock = threading.RLock()
        try:
            if not self.path.parent.is_dir():
                raise DatabaseUnusable(f"database folder does not exist: {self.path.parent}")
            if read_only:
                conn = _connect_read_only(self.path, busy_timeout_seconds)
                mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            else:
                conn = sqlite3.connect(
                    self.path, timeout=busy_timeout_seconds, isolation_level=None, check_same_thread=False
                )
                conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_seconds * 1000)}")
                # Takes effect only on a new, empty file, and only before WAL is set: pruned pages
                # then go back to the file system a few at a time (store/retention.py).
                conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
                mode = _enable_wal(conn, busy_timeout_seconds)
                conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error as exc:
            raise DatabaseUnusable(_describe(self.path, exc)) from None
        self.journal_mode = mode
        self.conn = conn
        self._utils = None

    @property
    def utils(self):
        """sqlite-utils over the same connection, for schema work (imported on
        first use: ``killswitch`` and ``status`` never need it)."""
        if self._utils is None:
            import sys

            # sqlite-utils imports pandas when it is installed (arch brings it, for score); the
            # schema work never uses it, so a migrating cycle does not pay for it: a None in
            # sys.modules makes that import fail as if pandas were absent, which sqlite-utils handles.
            blocked = "pandas" not in sys.modules
            if blocked:
                sys.modules["pandas"] = None  # type: ignore[assignment]
            try:
                import sqlite_utils
            finally:
                if blocked and sys.modules.get("pandas", 0) is None:
                    del sys.modules["pandas"]
            self._utils = sqlite_utils.Database(self.conn)
        return self._utils

    def execute(self, sql: str, params: tuple | dict = ()) -> sqlite3.Cursor:
        with self._guard():
            return self.conn.execute(sql, params)

    def query(self, sql: str, params: tuple | dict = ()) -> list[dict[str, Any]]:
        with self._guard():
            cursor = self.conn.execute(sql, params)
            names = [c[0] for c in cursor.description or ()]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

    def query_in_one_step(self, sql: str, params: tuple | dict = (),
                          key: Callable[[dict[str, Any]], Any] | None = None) -> list[dict[str, Any]]:
        """``query``, for a statement of many rows that another thread overlaps
        (``score`` loads scipy and arch meanwhile). Python's sqlite3 lets go of the
        GIL only inside each step and takes it back for every row, so two busy
        threads take turns row by row; here SQLite gathers every row into one JSON
        array in a single step, outside the GIL, and ``json.loads`` (C) reads it.

        Values come back as ``query``'s do: text, integers and NULL exactly; a REAL
        to 15 significant digits (SQLite's JSON text); BLOBs are not allowed.
        SQLite does not promise that its aggregate keeps ``sql``'s ``ORDER BY``:
        ``key`` sorts the rows (stable). Needs SQLite's JSON functions: built in
        since 3.38, and in the usual builds before it."""
        import json

        with self._guard():
            names = [c[0] for c in self.conn.execute(f"SELECT * FROM ({sql}) LIMIT 0", params).description or ()]
            columns = ", ".join(f'"{name}"' for name in names)
            text = self.conn.execute(f"SELECT json_group_array(json_array({columns})) FROM ({sql})", params).fetchone()[0]
        rows = [dict(zip(names, row)) for row in json.loads(text)]
        if key is not None:
            rows.sort(key=key)
        return rows

    def run_to_completion(self, sql: str) -> None:
        """One statement stepped until it is done, as its own transaction (Python's
        ``execute`` steps ``PRAGMA incremental_vacuum(N)`` once: one page, not N)."""
        with self._guard():
            self.conn.executescript(sql)

    def one(self, sql: str, params: tuple | dict = ()) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A short write transaction; rolled back on any error. Inside another one
        (a write that chains its row, store/chain.py, called from a transaction)
        it joins it: the outer one commits or rolls back."""
        with self._guard():
            if self.conn.in_transaction:
                yield
                return
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    @contextmanager
    def _guard(self) -> Iterator[None]:
        with self._lock:
            try:
                yield
            except sqlite3.Error as exc:
                raise DatabaseUnusable(_describe(self.path, exc)) from None

    def close(self) -> None:
        with self._lock:
            self.conn.close()


def _enable_wal(conn: sqlite3.Connection, timeout_seconds: float) -> str:
    """``PRAGMA journal_mode = WAL``, retried while another process holds the lock.

    SQLite does not call the busy handler for this pragma, so two processes
    opening a new database at once (two cron runs, a run and ``killswitch``)
    would otherwise fail at once with "database is locked".
    """
    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            return conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def _connect_read_only(path: Path, timeout_seconds: float) -> sqlite3.Connection:
    for extra in ("", "&immutable=1"):
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro{extra}", uri=True, timeout=timeout_seconds,
                               isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(timeout_seconds * 1000)}")
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # reads the header (and the -shm)
            return conn
        except sqlite3.OperationalError as exc:
            conn.close()
            # No -shm to read through, and none can be made: "unable to open", or (SQLite's
            # READONLY_CANTINIT) "attempt to write a readonly database".
            if extra or not any(word in str(exc) for word in ("unable to open", "readonly")):
                raise
    raise AssertionError("unreachable")


def can_write(path: Path) -> bool:
    """Whether this user may write ``path`` and create files beside it (SQLite's ``-wal`` and ``-shm``)."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def _cannot_write(path: Path) -> str | None:
    """Why SQLite could not open ``path``, when the cause is the file system: it
    writes the database and its ``-wal`` and ``-shm`` files, all in its folder."""
    import tempfile  # only after a failure: `killswitch` never pays for it

    folder = path.parent
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        return (f"database {path}: {reason}: cannot write in the folder {folder} (SQLite writes the database and its"
                " -wal and -shm files there): set database.path (or --db) to a folder you can write")
    try:
        if path.exists():
            with open(path, "r+b"):
                pass
    except OSError as exc:
        return f"database {path}: {(exc.strerror or str(exc)).lower()}: the file cannot be written"
    return None


def _describe(path: Path, exc: sqlite3.Error) -> str:
    text = str(exc)
    if "unable to open" in text and (denied := _cannot_write(path)):
        return denied
    if "not a database" in text or "malformed" in text:
        return f"database {path} is corrupt ({text}); move it aside or restore a backup"
    if "locked" in text or "busy" in text:
        return f"database {path} is locked by another process ({text})"
    if "readonly" in text or "read-only" in text:
        return f"database {path} is read-only ({text})"
    if "full" in text:
        return f"database {path}: disk full ({text})"
    return f"database {path} is unusable ({text})"
