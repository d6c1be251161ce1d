"""What every command shares: the config and database they read, the time now,
and ``--since`` as the stored times are written. Imports stay local to each
function so that ``killswitch`` and ``status`` load neither pydantic's full
config, nor requests, nor the connectors.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from tradecycle.infra import paths


def now() -> datetime:
    return datetime.now(UTC)


def open_db(db_path: Path):
    from tradecycle.store import open_database

    return open_database(db_path)


@contextmanager
def reading(db_path: Path, *, write: bool = False):
    """The database for a read command, or None when there is none yet: reading
    never creates one (a mistyped path must not quietly make a new database).
    A database this user may only read is opened read-only (``store.open_read_only``);
    ``write`` (replay records its answers) opens it for writing all the same."""
    from tradecycle.store import can_write, open_read_only

    if not db_path.exists():
        yield None
        return
    db = open_db(db_path) if write or can_write(db_path) else open_read_only(db_path)
    try:
        yield db
    finally:
        db.close()


def load(config_option: str | None):
    """The validated config and the environment's secrets (ConfigError -> exit 2)."""
    from tradecycle.config import Secrets, check_environment, load_config, shadow_key_names

    config = load_config(paths.config_path(config_option))
    secrets = Secrets(extra_names=shadow_key_names(config))
    check_environment(config, secrets)
    return config, secrets


def database_path(config_option: str | None, db_option: str | None) -> Path:
    """``--db``, else ``database.path`` from the config (read without full validation)."""
    if db_option:
        return Path(db_option).expanduser()
    return paths.load_database_path(paths.config_path(config_option))


def since_utc(text: str) -> str:
    """``--since`` as the stored times are written (ISO-8601 UTC with a Z, so
    that they compare as text): an offset is honoured (``23:07+01:00`` is
    ``22:07Z``); a time without one is UTC. Not an ISO time: UsageError (exit 2)."""
    from tradecycle.infra.errors import UsageError
    from tradecycle.infra.times import iso

    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--since {text!r}: not an ISO time (e.g. 2026-11-25, 2026-11-25T14:00 (UTC) or 2026-11-25T15:00+01:00)") from None
    return iso((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC))


def iso_now() -> str:
    from tradecycle.infra.times import iso

    return iso(now())
