"""The kill switch's second home: a file beside the database,
``<database.path>.killswitch``, so that deleting or replacing the database
never turns the switch off.

``killswitch on`` (and the tool's own trips) write it, ``killswitch off``
removes it; a cycle trades only when neither the file nor the database says
on. A file that exists says on whatever it holds: the JSON this tool writes
gives the reason and the time, and a file made by hand (``touch
tradecycle.db.killswitch``), even empty or unreadable, stops trading too.
Standard library only: ``killswitch`` must start fast.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tradecycle.infra.errors import DatabaseUnusable
from tradecycle.store.flags import KillSwitch

SUFFIX = ".killswitch"


def switch_file(db_path: Path) -> Path:
    """``tradecycle.db`` -> ``tradecycle.db.killswitch``, in the same folder."""
    db_path = Path(db_path)
    return db_path.with_name(db_path.name + SUFFIX)


def read_switch_file(db_path: Path) -> KillSwitch | None:
    """The switch as the file says it (always on), or None when there is no file."""
    path = switch_file(db_path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:  # it is there: unreadable still means stop
        return KillSwitch(True, f"kill switch file {path} (unreadable: {getattr(exc, 'strerror', None) or exc})", None)
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return KillSwitch(True, f"kill switch file {path}", None)
    reason, changed_at = data.get("reason"), data.get("changed_at")
    return KillSwitch(True, str(reason) if reason else f"kill switch file {path}",
                      str(changed_at) if changed_at else None, bool(data.get("flatten")))


def write_switch_file(db_path: Path, switch: KillSwitch) -> None:
    """Write the file (atomically: a reader sees the old file or the new one).
    Raises DatabaseUnusable naming the file when it cannot be written."""
    path = switch_file(db_path)
    body = {"active": True, "reason": switch.reason, "changed_at": switch.changed_at, "flatten": switch.flatten,
            "note": "tradecycle kill switch: no cycle trades while this file exists; `tradecycle killswitch off` removes it"}
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
        os.replace(partial, path)
    except OSError as exc:
        raise DatabaseUnusable(f"could not write the kill switch file {path}: {exc.strerror or exc}") from None


def remove_switch_file(db_path: Path) -> None:
    """Remove the file (gone already is fine). Raises DatabaseUnusable when it
    stays: the switch is then still on."""
    path = switch_file(db_path)
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise DatabaseUnusable(f"could not remove the kill switch file {path} ({exc.strerror or exc}): "
                               "the kill switch stays on until it is gone") from None


def combined(in_database: KillSwitch, on_file: KillSwitch | None) -> KillSwitch:
    """On when either says on: the database's switch when it is on, else the file's."""
    if in_database.active or on_file is None:
        return in_database
    return on_file
