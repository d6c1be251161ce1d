"""``tradecycle killswitch``: show or flip the kill switch, log the change and
alert it. Reads only ``database.path`` (and ``log.path``): an emergency stop
is never blocked by a config that is invalid elsewhere."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tradecycle.commands.common import database_path, now, open_db, reading
from tradecycle.infra import paths


KILL_SWITCH_CHANGES_SHOWN = 5


@dataclass(frozen=True)
class KillSwitchView:
    switch: Any  # store.KillSwitch
    database: Path
    changes: list[dict] = field(default_factory=list)  # the last few, newest first (when shown)
    note: str | None = None  # what the person should know besides (the log could not be written)
    exists: bool = True  # False: shown for a database that does not exist (nothing was read)
    already_on: bool = False  # `on` while it was on: the switch kept its time and reason


def kill_switch(config_option: str | None, db_option: str | None, active: bool | None, reason: str | None,
                flatten: bool = False) -> KillSwitchView:
    """Show (``active`` None: the switch and its last few changes) or set the
    kill switch. Reads only ``database.path`` (and, to log a change,
    ``log.path``). ``flatten`` asks the next cycles to cancel every open
    order and close every position (``winddown.py``). A change is a row in
    ``kill_switch_changes`` and a ``killswitch.changed`` log event.

    Raises DatabaseUnusable (exit 1) when the flag cannot be read or recorded.
    """
    from tradecycle.store import KillSwitch, kill_switch_changes, read_kill_switch, write_kill_switch

    path = database_path(config_option, db_option)
    if active is None:
        with reading(path) as db:
            if db is None:
                return KillSwitchView(KillSwitch(False, None, None), path, exists=False)
            return KillSwitchView(read_kill_switch(db), path, kill_switch_changes(db, KILL_SWITCH_CHANGES_SHOWN))
    db = open_db(path)  # an emergency stop before the first cycle must still be recorded
    try:
        if active and not reason:
            reason = "turned on by hand"
        already_on = bool(active and read_kill_switch(db).active)
        switch = write_kill_switch(db, active, reason if active else None, now(), flatten=flatten, changed_by="person")
    finally:
        db.close()
    log = command_log(config_option)
    log("killswitch.changed", "warning", active=switch.active, changed_by="person", reason=reason if active else None,
        flatten=switch.flatten, database=str(path), **({"already_on_since": switch.changed_at} if already_on else {}))
    return KillSwitchView(switch, path, note=log.error, already_on=already_on)


def command_log(config_option: str | None):
    """The event log of ``killswitch``: ``log.path`` and ``log.level`` read
    without validation, each event appended (``logging`` is never imported)."""
    from tradecycle.infra.environment import Secrets
    from tradecycle.infra.logline import EventFile

    settings = paths.load_log_settings(paths.config_path(config_option))
    return EventFile(*(settings or (None,)), secrets=Secrets().values())


def announce_kill_switch(config_option: str | None, db_option: str | None, switch) -> str | None:
    """After ``killswitch on|off`` recorded the flag: its alert, when
    ``TRADECYCLE_ALERT_URLS`` is set (None, at once and importing nothing,
    when it is not). Best effort: at most ``alerts.COMMAND_SEND_SECONDS``,
    never raises, and the flag stands whatever happens. Returns what became
    of it (``sent``, ``held back``, ``failed: ...``) for the command to say."""
    import os

    from tradecycle.infra.environment import ALERT_URLS_ENV

    if not os.environ.get(ALERT_URLS_ENV, "").strip():
        return None
    from tradecycle.commands.alerts import COMMAND_SEND_SECONDS, deliver, kill_switch_alert
    from tradecycle.connectors.apprise_sender import AppriseSender
    from tradecycle.infra.environment import Secrets
    from tradecycle.store import Database
    from tradecycle.store.alerts import AlertBook

    secrets, log = Secrets(), command_log(config_option)
    alert = kill_switch_alert(switch.active, switch.reason, "person", switch.flatten)
    try:
        db = Database(database_path(config_option, db_option), busy_timeout_seconds=1.0)
    except Exception as exc:  # the flag was recorded a moment ago: this is rare, and only the alert is lost
        log("alert.failed", "warning", kind=alert.kind, error=f"could not open the database: {exc}")
        return f"failed: could not open the database: {exc}"
    try:
        sender = AppriseSender(secrets.alert_urls(), secrets.values())
        return deliver([alert], sender, AlertBook(db), log, now(), COMMAND_SEND_SECONDS)[0]
    finally:
        db.close()
