"""One event as one JSON line, secrets masked: the format of the log.

Apart from ``logs.py`` (which adds rotation through ``logging``) so that
``killswitch`` can append its event without importing ``logging``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from tradecycle.infra.redact import redact


def event_line(event: str, level: str, fields: dict, context: dict | None = None, secrets: Iterable[str] = ()) -> str:
    """``{"time", "level", "event", <context>, <fields>}`` on one line; None values left out."""
    record = {"time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"), "level": level, "event": event}
    record.update(context or {})
    record.update({k: v for k, v in fields.items() if v is not None})
    return redact(json.dumps(record, default=str, ensure_ascii=False), secrets)


def append_event(path: Path, event: str, level: str, fields: dict, secrets: Iterable[str] = ()) -> None:
    """Append one event to the log file (one ``write`` in append mode, so a line
    never interleaves with a cycle's). Raises OSError when the file cannot be written."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(event_line(event, level, fields, secrets=secrets) + "\n")


LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}  # the ``logging`` module's numbers


def os_reason(exc: OSError) -> str:
    """What the file system said, as a user reads it: "is a directory", "permission denied"."""
    return (exc.strerror or str(exc)).lower()


class EventFile:
    """The ``EventLog`` of a command that writes an event or two (``killswitch``):
    each appended as it happens. A file that cannot be written loses the event,
    never the command's work: ``error`` then says why."""

    def __init__(self, path: Path | None, level: str = "INFO", secrets: Iterable[str] = ()):
        self.path = path
        self.threshold = LEVELS.get(level.lower(), LEVELS["info"])
        self.secrets = list(secrets)
        self.context: dict = {}
        self.error: str | None = None

    def __call__(self, event: str, level: str = "info", **fields) -> None:
        if self.path is None or LEVELS.get(level, LEVELS["info"]) < self.threshold:
            return
        try:
            append_event(self.path, event, level, {**self.context, **fields}, self.secrets)
        except OSError as exc:
            self.error = f"could not write the log (log.path {self.path}): {os_reason(exc)}"

    def bind(self, **context) -> None:
        self.context.update(context)
