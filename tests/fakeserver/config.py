"""A tradecycle config.toml pointing at the fake (every base_url at it, sections
deep-merged from the test) and the tiny TOML writer behind it."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

from .common import DEFAULT_CRYPTO, DEFAULT_STOCKS


class ConfigMixin:
    """``config_sections`` and ``config_toml`` of ``FakeServices``."""

    def config_sections(self, **overrides: Any) -> dict[str, Any]:
        """The config.toml content as a dict: every base_url at this fake, plus ``overrides``
        deep-merged (a None value deletes the key)."""
        sections: dict[str, Any] = {
            "universe": {"stocks": list(DEFAULT_STOCKS), "crypto": list(DEFAULT_CRYPTO)},
            "database": {"path": "tradecycle.db"},
            "log": {"path": "tradecycle.jsonl"},
            "broker": {"provider": "alpaca", "alpaca": {"base_url": self.alpaca_url}},
            "market_data": {
                "provider": "live",
                "alpaca": {"data_url": self.alpaca_data_url},
                "finnhub": {"base_url": self.finnhub_url},
                "coingecko": {"base_url": self.coingecko_url, "ids": dict(self.coin_ids)},
            },
            "news": {"provider": "finnhub"},
            "ai": {"provider": "openai", "base_url": self.openai_url, "model": self.llm_model},
        }
        return _deep_merge(sections, overrides)

    def config_toml(self, path: str | Path, name: str = "config.toml", **overrides: Any) -> Path:
        """Write a tradecycle config.toml pointing at this fake; returns its path.
        ``path`` is a folder (the file is ``path/name``) or a file path ending in ``.toml``.
        ``overrides`` are sections, merged deeply: ``cycle={"order_timeout_seconds": 0.5}``,
        ``broker={"alpaca": {"base_url": ...}}``, ``news={"provider": "none"}``."""
        target = Path(path)
        if target.suffix != ".toml":
            target.mkdir(parents=True, exist_ok=True)
            target = target / name
        target.write_text(to_toml(self.config_sections(**overrides)), encoding="utf-8")
        return target


def _deep_merge(base: dict[str, Any], overrides: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    """Merge tables (``[section]`` and ``[section.sub]``) key by key; values, inline
    tables such as ``ids`` included, are replaced whole. None deletes a key."""
    merged = dict(base)
    for key, value in overrides.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict) and depth < 2:
            merged[key] = _deep_merge(merged[key], value, depth + 1)
        else:
            merged[key] = value
    return merged


# --------------------------------------------------------------------------- a tiny TOML writer

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _toml_str(key)


def _toml_str(value: str) -> str:
    out = []
    for ch in value:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, Decimal):
        return str(value) if value == value.to_integral_value() and "E" not in str(value) else repr(float(value))
    if isinstance(value, str):
        return _toml_str(value)
    if isinstance(value, Path):
        return _toml_str(str(value))
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def to_toml(data: dict[str, Any]) -> str:
    """Tables for the first two levels (``[broker]``, ``[broker.alpaca]``), inline tables
    below (``ids = { "BTC/USD" = "bitcoin" }``). Strings, ints, floats, bools, lists, dicts."""
    lines: list[str] = []

    def table(name: list[str], body: dict[str, Any]) -> None:
        scalars = {k: v for k, v in body.items() if not (isinstance(v, dict) and len(name) < 2)}
        subtables = {k: v for k, v in body.items() if isinstance(v, dict) and len(name) < 2}
        if name:
            lines.append(f"[{'.'.join(_toml_key(n) for n in name)}]")
        for key, value in scalars.items():
            lines.append(f"{_toml_key(str(key))} = {_toml_value(value)}")
        if name:
            lines.append("")
        for key, value in subtables.items():
            table(name + [str(key)], value)

    table([], data)
    return "\n".join(lines).rstrip("\n") + "\n"
