"""Where the config and the database are, read without pydantic.

``killswitch`` uses only this module to find the database: an emergency stop
must work fast, and even when the rest of the config is invalid.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

from tradecycle.infra.errors import ConfigError

DEFAULT_CONFIG = "config.toml"
CONFIG_ENV = "TRADECYCLE_CONFIG"
DEFAULT_DATABASE = "tradecycle.db"
DEFAULT_LOG = "tradecycle.jsonl"


def config_path(explicit: str | os.PathLike | None) -> Path:
    """``--config``, else ``$TRADECYCLE_CONFIG``, else ``./config.toml``."""
    return Path(explicit or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG).expanduser()


def read_toml(path: Path) -> dict:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        # Set and wrong, TRADECYCLE_CONFIG is named by the CLI; unset, it is a way out.
        hint = "" if os.environ.get(CONFIG_ENV) else f" (pass --config PATH or set {CONFIG_ENV})"
        raise ConfigError(f"config file not found: {path}{hint}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def resolve_path(base_dir: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base_dir / path


def load_database_path(path: Path) -> Path:
    """Only ``database.path``, for ``killswitch`` and the read commands: an
    emergency stop must work even when the rest of the config is invalid,
    including a TOML syntax error elsewhere in the file (then the
    ``[database]`` table is read line by line)."""
    try:
        data = read_toml(path)
    except ConfigError:
        if not path.is_file():
            raise
        value = _scan_database_path(path.read_text(errors="replace"))
    else:
        section = data.get("database", {})
        value = section.get("path", DEFAULT_DATABASE) if isinstance(section, dict) else None
    if not isinstance(value, str) or not value:
        raise ConfigError("database.path: must be a file path")
    return resolve_path(path.resolve().parent, value)


def load_log_settings(path: Path) -> tuple[Path, str] | None:
    """``log.path`` and ``log.level``, for the event ``killswitch`` writes, read
    without validation. None when the file cannot say (missing, not valid
    TOML, a value of the wrong type): the event is then left out, and the
    flag is recorded all the same."""
    try:
        data = read_toml(path)
    except ConfigError:
        return None
    section = data.get("log", {})
    if not isinstance(section, dict):
        return None
    value, level = section.get("path", DEFAULT_LOG), section.get("level", "INFO")
    if not isinstance(value, str) or not value or not isinstance(level, str):
        return None
    return resolve_path(path.resolve().parent, value), level


_TABLE = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]")
_STRING = r"""(?:"([^"]*)"|'([^']*)')"""
_PATH_IN_TABLE = re.compile(rf"^\s*path\s*=\s*{_STRING}")
_DOTTED_PATH = re.compile(rf"^\s*database\s*\.\s*path\s*=\s*{_STRING}")
_INLINE_PATH = re.compile(rf"^\s*database\s*=\s*\{{.*?\bpath\s*=\s*{_STRING}")


def _scan_database_path(text: str) -> str:
    """``database.path`` from a file that is not valid TOML as a whole: in a
    ``[database]`` table, as ``database.path = ...`` or ``database = {path = ...}``
    at the top level."""
    table = None
    for line in text.splitlines():
        if header := _TABLE.match(line):
            table = header.group(1)
            continue
        key = _PATH_IN_TABLE.match(line) if table == "database" else (
            (_DOTTED_PATH.match(line) or _INLINE_PATH.match(line)) if table is None else None
        )
        if key:
            return key.group(1) if key.group(1) is not None else key.group(2)
    return DEFAULT_DATABASE


