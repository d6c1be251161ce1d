"""What every faked service shares: the services' URL prefixes and default
universe, request records (``RecordedRequest``, case-insensitive ``Headers``),
replies, scripted faults, and Alpaca's number and time formats (string numbers
without exponent, RFC 3339 with a ``Z``; API_NOTES.md, "Alpaca paper trading")."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any


try:  # the market's own time zone for the Alpaca clock; a fixed offset if tzdata is missing
    from zoneinfo import ZoneInfo

    NEW_YORK: Any = ZoneInfo("America/New_York")
except Exception:  # pragma: no cover
    NEW_YORK = timezone(timedelta(hours=-5), "EST")

SERVICES = ("alpaca", "alpaca_data", "finnhub", "coingecko", "openai", "alerts", "heartbeat")
PREFIXES = {"alpaca": "/alpaca", "alpaca_data": "/alpaca-data", "finnhub": "/finnhub", "coingecko": "/coingecko",
            "openai": "/openai/v1", "alerts": "/alerts", "heartbeat": "/ping"}

FAULT_KINDS = ("status", "delay", "drop", "late_accept", "garbage")

DEFAULT_STOCKS = ["AAPL", "MSFT", "NVDA"]
DEFAULT_CRYPTO = ["BTC/USD", "ETH/USD"]
DEFAULT_COIN_IDS = {"BTC/USD": "bitcoin", "ETH/USD": "ethereum"}
DEFAULT_PRICES = {
    "AAPL": "187.21",
    "MSFT": "415.50",
    "NVDA": "135.40",
    "BTC/USD": "67000.10",
    "ETH/USD": "3500.25",
}
DEFAULT_CRYPTO_MINIMUMS = {"BTC/USD": "0.0001", "ETH/USD": "0.001"}
QTY_PLACES = Decimal("0.000000001")  # Alpaca takes up to 9 decimals


def _now_epoch() -> int:
    return int(time.time())


def _rfc3339(moment: datetime | None = None) -> str:
    """Go's RFC3339Nano, as Alpaca writes it: UTC ``Z`` and trailing zeros trimmed."""
    moment = (moment or datetime.now(timezone.utc)).astimezone(timezone.utc)
    fraction = f"{moment.microsecond:06d}".rstrip("0")
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


def _dec(value: Any) -> Decimal:
    return Decimal(str(value))


def _money(value: Decimal) -> str:
    """Alpaca prints money without exponent and without pointless zeros."""
    text = format(value.quantize(Decimal("0.000000001")).normalize(), "f")
    return "0" if text in ("-0", "") else text


def _usd(value: Decimal) -> str:
    """Dollar amounts (cash, equity, market value): cents."""
    return _money(value.quantize(Decimal("0.01")))


def _ratio(value: Decimal) -> str:
    return _money(value.quantize(Decimal("0.000001")))


def _qty(value: Decimal) -> str:
    return _money(value)


def _is_crypto(symbol: str) -> bool:
    return "/" in symbol


def position_symbol(symbol: str) -> str:
    """Alpaca reports crypto positions as ``BTCUSD`` while orders use ``BTC/USD``."""
    return symbol.replace("/", "")


class Headers(dict):
    """A dict of request headers (names as sent) with case-insensitive lookup."""

    def _key(self, name: str) -> str | None:
        if dict.__contains__(self, name):
            return name
        lowered = name.lower()
        for key in self.keys():
            if key.lower() == lowered:
                return key
        return None

    def __getitem__(self, name: str) -> str:
        key = self._key(name)
        if key is None:
            raise KeyError(name)
        return dict.__getitem__(self, key)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._key(name) is not None

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        key = self._key(name)
        return default if key is None else dict.__getitem__(self, key)


@dataclass
class RecordedRequest:
    """One request the fake received. Also readable as a dict: ``r["path"]``."""

    service: str  # "alpaca" | "finnhub" | "coingecko" | "openai" | "alerts" | "heartbeat" | "" (unknown prefix)
    method: str
    path: str  # full raw path as sent, without the query: "/alpaca/v2/assets/BTC%2FUSD"
    subpath: str  # path below the service's base URL: "/v2/assets/BTC%2FUSD"
    query: dict[str, str]  # last value of each query parameter
    headers: Headers
    json: Any  # the decoded JSON body, or None
    body: bytes
    time: float  # time.time() on arrival
    token_via: str | None = None  # finnhub: "header" | "query" | None
    fault: str | None = None  # the fault kind applied to this request, if any

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)


@dataclass
class Fault:
    """A scripted fault; ``used`` counts the requests it has hit."""

    target: str  # service name or path prefix
    kind: str
    times: int | None  # None: forever
    params: dict[str, Any]
    method: str | None = None
    used: int = 0

    def matches(self, service: str, method: str, path: str, subpath: str) -> bool:
        if self.method and self.method.upper() != method:
            return False
        if self.target.startswith("/"):
            return path.startswith(self.target) or subpath.startswith(self.target)
        return self.target == service

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.used >= self.times


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-able object, str or bytes
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"

    def encode(self) -> bytes:
        if self.body is None and self.status == 204:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body, default=_json_default).encode("utf-8")


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (set, tuple)):
        return list(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


class _Stopping(Exception):
    """The server is shutting down while a handler sleeps: abandon the request."""


class _Drop(Exception):
    """Close the connection without any reply."""
