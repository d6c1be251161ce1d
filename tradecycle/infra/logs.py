"""JSON-lines event log: one event a line, ISO-8601 UTC time, level, event
name, the cycle id, and the event's fields. Secrets are redacted from every
value before it is written. Rotates by size (5 files of 5 MB)."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from tradecycle.infra.errors import ConfigError
from tradecycle.infra.logline import LEVELS, event_line, os_reason
MAX_BYTES = 5_000_000
BACKUPS = 5


class JsonLog:
    """Callable as ``log(event, level="info", **fields)`` (the ``EventLog`` port).
    A ``path`` that cannot be opened for appending is a ConfigError naming ``log.path``."""

    def __init__(self, path: Path | None, level: str = "INFO", secrets: list[str] | None = None, watch=None,
                 max_bytes: int = MAX_BYTES):
        self.threshold = LEVELS[level.lower()]
        self.secrets = list(secrets or [])
        self._logger = logging.getLogger(f"tradecycle.events.{id(self)}")
        self._logger.propagate = False
        self._logger.setLevel(logging.DEBUG)
        self.path = path
        self.watch = watch  # called with every event, whatever the level (live terminal view)
        self.context: dict = {}
        if path is not None:
            try:
                handler = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=BACKUPS, encoding="utf-8")
            except OSError as exc:  # a folder, a read-only file system, a folder we may not write
                raise ConfigError(f"log.path {path}: {os_reason(exc)}: set log.path to a file you can write") from None
            handler.setFormatter(logging.Formatter("%(message)s"))
            self._logger.addHandler(handler)

    def __call__(self, event: str, level: str = "info", **fields) -> None:
        if self.watch is not None:
            self.watch(event, fields)
        number = LEVELS.get(level, logging.INFO)
        if number < self.threshold or self.path is None:
            return
        self._logger.log(number, event_line(event, level, fields, self.context, self.secrets))

    def bind(self, **context) -> None:
        self.context.update(context)

    def close(self) -> None:
        for handler in list(self._logger.handlers):
            handler.close()
            self._logger.removeHandler(handler)


class MemoryLog:
    """An EventLog that keeps events in a list (for tests and for `--json` reports)."""

    def __init__(self):
        self.events: list[dict] = []
        self.context: dict = {}

    def __call__(self, event: str, level: str = "info", **fields) -> None:
        self.events.append({"event": event, "level": level, **self.context, **fields})

    def bind(self, **context) -> None:
        self.context.update(context)
