"""A local fake of every service tradecycle talks to, in one process.

Alpaca paper trading, Alpaca market data, Finnhub, CoinGecko and an
OpenAI-compatible chat server behind one ``ThreadingHTTPServer`` on 127.0.0.1, standard library only, so that
end-to-end tests can run the real ``tradecycle`` CLI in a subprocess against it
and benchmarks can add latency.  Response shapes follow the contract's notes
on the real services (API_NOTES.md in the shared design folder): string numbers
for Alpaca, the all-zero Finnhub quote for an unknown symbol, ``{}`` from
CoinGecko for unknown ids, ...

    with FakeServices() as fake:
        fake.llm_decide = {"AAPL": ("buy", 0.9, "breakout")}
        fake.fail("alpaca", "status", times=1, status=429, headers={"Retry-After": "1"})
        config = fake.config_toml(tmp_path, universe={"stocks": ["AAPL"]})
        subprocess.run(["tradecycle", "run", "--config", str(config)], env={**os.environ, **fake.env()})
        assert fake.count("alpaca", "POST", "/v2/orders") == 1

The OpenAI-compatible part imitates the servers people point it at
(``llm_flavor``: OpenAI, Ollama, vLLM, llama.cpp, DeepSeek: reply envelope,
``/models`` listing, error bodies, unknown-model behaviour), how models dress
their answer (``llm_wrap``, ``llm_reasoning``, ``llm_content_parts``) and what
they refuse (``llm_refuse_params`` for reasoning models' temperature,
``llm_json_schema``, ``llm_quota_exhausted``).

State lives in plain attributes (``account``, ``clock``, ``positions``,
``orders``, ``assets``, ``prices``, ``quotes``, ``news``, ``coins``,
``daily_bars``, ``day_volumes``, ...): set
or inspect them from the test; hold ``fake.lock`` while mutating them in place
when requests may be in flight.

Run it standalone with ``python -m tests.fakeserver --port 8765 --latency 0.3``
(or ``python tests/fakeserver.py ...``).
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import re
import socket
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlsplit

try:  # the market's own time zone for the Alpaca clock; a fixed offset if tzdata is missing
    from zoneinfo import ZoneInfo

    NEW_YORK: Any = ZoneInfo("America/New_York")
except Exception:  # pragma: no cover
    NEW_YORK = timezone(timedelta(hours=-5), "EST")

SERVICES = ("alpaca", "alpaca_data", "finnhub", "coingecko", "openai", "alerts")
PREFIXES = {"alpaca": "/alpaca", "alpaca_data": "/alpaca-data", "finnhub": "/finnhub", "coingecko": "/coingecko",
            "openai": "/openai/v1", "alerts": "/alerts"}
SIP_REFUSAL = "subscription does not permit querying recent SIP data"  # Alpaca's free plan, feed=sip
DEFAULT_BAR_DAYS = 80
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

# Realistic error bodies, per service and status.
_ALPACA_ERRORS = {
    400: (40010000, "request body format is invalid"),
    401: (40110000, "request is not authorized"),
    403: (40310000, "insufficient buying power"),
    404: (40410000, "resource not found"),
    422: (42210000, "invalid order"),
    429: (42910000, "rate limit exceeded"),
    500: (50010000, "internal server error occurred"),
    502: (50010000, "bad gateway"),
    503: (50310000, "service unavailable"),
    504: (50410000, "gateway timeout"),
}
_FINNHUB_ERRORS = {
    401: "Invalid API key",
    403: "You don't have access to this resource.",
    422: "Wrong symbol",
    429: "API limit reached. Please try again later. Remaining Limit: 0",
    500: "Internal server error",
}
_COINGECKO_ERRORS = {
    401: "Unauthorized",
    403: "Forbidden",
    429: (
        "You've exceeded the Rate Limit. Please visit https://www.coingecko.com/en/api/pricing "
        "to subscribe to our API plans for higher rate limits."
    ),
    500: "Internal Server Error",
    503: "Service Unavailable",
}
PRO_KEY_HEADER = "x-cg-pro-api-key"
COINGECKO_PRO_KEY_ON_PUBLIC_HOST = {"status": {
    "error_code": 10010,
    "error_message": "If you are using Pro API key, please change your root URL from api.coingecko.com to pro-api.coingecko.com",
}}
# OpenAI's 429 when the account has no credit left: not a rate limit, waiting does not help.
OPENAI_INSUFFICIENT_QUOTA = {"error": {
    "message": "You exceeded your current quota, please check your plan and billing details. For more information "
               "on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
    "type": "insufficient_quota", "param": None, "code": "insufficient_quota"}}
# What each OpenAI-compatible server sends (reply envelope, /models listing, errors, unknown model):
#   openai    usage with *_tokens_details, service_tier, refusal/annotations; unknown model 404 model_not_found
#   ollama    system_fingerprint "fp_ollama", plain usage, thinking in message.reasoning; "x" finds "x:latest"
#   vllm      reasoning_content (null unless a reasoning parser runs), tool_calls [], stop_reason, prompt_logprobs,
#             kv_transfer_params; errors carry an integer code; /models rows have root, max_model_len, permission
#   llamacpp  timings, integer error code; /models lists its one model by file name (or --alias) with meta,
#             plus an Ollama-style "models" list, and the completion is served whatever model is asked for
#   deepseek  reasoning_content (deepseek-reasoner), prompt_cache_hit/miss_tokens; unknown model 400 "Model Not Exist"
LLM_FLAVORS = ("openai", "ollama", "vllm", "llamacpp", "deepseek")
LLAMACPP_MODEL_ID = "models/Qwen3-8B-Q4_K_M.gguf"  # llama-server -m models/Qwen3-8B-Q4_K_M.gguf, no --alias
# How models dress the answer text: None (bare), "fence" (```json ... ```), "prose" (sentences around it),
# "prose_fence" (a fence inside prose), "think" (<think>...</think> first: R1 distills on older Ollama),
# "think_close_only" (thinking, then only </think>: the chat template opened the block, llama.cpp
# with --reasoning-format none).
LLM_WRAPS = (None, "fence", "prose", "prose_fence", "think", "think_close_only")
DEFAULT_THINKING = "Okay, the user wants one decision per symbol. Let me weigh the price move against the headlines."

_OPENAI_ERRORS = {
    400: ("invalid_request_error", "invalid_request", "Invalid request"),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("permission_error", "unsupported_country_region_territory", "Country, region, or territory not supported"),
    404: ("invalid_request_error", "model_not_found", "The model does not exist or you do not have access to it."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again in 1s."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


# --------------------------------------------------------------------------- small helpers


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

    service: str  # "alpaca" | "finnhub" | "coingecko" | "openai" | "" (unknown prefix)
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


# --------------------------------------------------------------------------- the fake


class FakeServices:
    """Alpaca paper + Finnhub + CoinGecko + OpenAI-compatible chat on one local port."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_seconds: float = 0.0,
        fill_orders: bool = False,
        require_auth: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        self.lock = threading.RLock()
        self.latency_seconds = latency_seconds
        self.fill_orders = fill_orders
        self.require_auth = require_auth

        # Expected credentials. None: any non-empty value passes (when require_auth).
        self.alpaca_key_id: str | None = None
        self.alpaca_secret_key: str | None = None
        self.finnhub_token: str | None = None
        self.openai_api_key: str | None = None  # None: no Authorization needed (like a local Ollama)

        # --- Alpaca
        self.prices: dict[str, str] = dict(DEFAULT_PRICES)  # order symbol -> price used for fills
        self.account: dict[str, Any] = self._default_account()
        self.clock: dict[str, Any] = {}
        self.set_market_open(True)
        self.positions: list[dict[str, Any]] = []
        self.orders: dict[str, dict[str, Any]] = {}  # client_order_id -> order
        # The status every new order gets, when set: e.g. "pending_review" (Alpaca holds an
        # order for review; it is neither open in the usual sense nor final) or a state
        # Alpaca adds later. Such orders are not filled.
        self.new_order_status: str | None = None
        self.assets: dict[str, dict[str, Any]] = {}
        for symbol in DEFAULT_STOCKS + DEFAULT_CRYPTO:
            self.add_asset(symbol)
        self.allow_short = False  # stock sells beyond the position are refused (403) unless True
        self.crypto_fee_bps = 0  # Alpaca takes crypto buy fees from the coins received

        # --- Finnhub (t=None is served as "now", so default quotes never go stale)
        self.quotes: dict[str, dict[str, Any]] = {s: self._quote_from_price(s, DEFAULT_PRICES[s]) for s in DEFAULT_STOCKS}
        self.news: dict[str, list[dict[str, Any]]] = {}
        self._news_ids = 7_000_000
        for symbol in DEFAULT_STOCKS:
            self.add_news(symbol, f"{symbol} shares edge higher ahead of earnings", hours_ago=2)
            self.add_news(symbol, f"Analysts weigh in on {symbol} outlook", hours_ago=20, source="MarketWatch")

        # --- CoinGecko (last_updated_at=None is served as "now"). It is the public
        # (demo) host: a Pro key header is refused as api.coingecko.com refuses it.
        self.coin_ids: dict[str, str] = dict(DEFAULT_COIN_IDS)
        self.coins: dict[str, dict[str, Any]] = {
            self.coin_ids[s]: {"usd": float(DEFAULT_PRICES[s]), "usd_24h_change": 1.25, "last_updated_at": None}
            for s in DEFAULT_CRYPTO
        }

        # --- Alpaca market data (snapshots are built from ``prices`` and the quote/coin times)
        self.daily_bars: dict[str, list[dict[str, Any]]] = {}  # symbol -> Alpaca-shaped bars, oldest first
        self.day_volumes: dict[str, float] = {}  # symbol -> today's volume so far (the snapshot's dailyBar.v)
        self.bars_page_size: int | None = None  # page the bars replies at fewer bars than `limit` asks
        for symbol in DEFAULT_STOCKS + DEFAULT_CRYPTO:
            self.set_daily_bars(symbol, _default_bars(symbol, DEFAULT_PRICES[symbol]))

        # --- OpenAI-compatible (see LLM_FLAVORS and LLM_WRAPS for the shapes)
        self.llm_model = "gpt-4o-mini"
        self.llm_reply: str | dict | Callable[[dict], str | dict] | None = None  # None: built from llm_decide
        self.llm_decide: dict[str, Any] = {}
        # A second model on the same server (a shadow, a replay) deciding its own way:
        # model -> decisions like llm_decide; a model not named here answers llm_decide.
        self.llm_decide_by_model: dict[str, dict[str, Any]] = {}
        self.llm_finish_reason = "stop"
        self.llm_flavor = "openai"  # whose reply, /models and error shapes to imitate
        self.llm_models: list[str] | None = None  # ids GET /models lists; None: the flavour's default
        self.llm_wrap: str | None = None  # how the answer text is dressed (prose, fences, <think>...)
        self.llm_reasoning: str | None = None  # a reasoning model's thinking, sent beside the answer
        self.llm_content_parts = False  # content as [{"type": "text", "text": ...}] instead of a string
        # OpenAI reasoning models: {"temperature": "unsupported_value"} (gpt-5, o3, o4-mini: only 1)
        # or {"temperature": "unsupported_parameter"} (o1-mini, o3-mini: none at all) -> their 400.
        self.llm_refuse_params: dict[str, str] = {}
        self.llm_json_schema = True  # False: response_format json_schema refused (400), json_object served
        self.llm_quota_exhausted = False  # True: every completion answers OpenAI's insufficient_quota 429

        # "Now" for quote and coin times (unix seconds). A test that runs cycles on a
        # simulated clock points this at that clock, so prices are as fresh as it says.
        self.time_source: Callable[[], float] = time.time

        # --- recording, faults, errors inside the fake itself
        self.requests: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        self.errors: list[str] = []  # tracebacks of bugs in the fake (answered 500)

        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "FakeServices":
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server((self.host, self.port), _Handler)
        server.fake = self
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
                                        name=f"fakeserver:{self.port}")
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes every sleeping handler, which then hangs up
        server.shutdown()
        server.server_close()
        with self.lock:
            connections = list(self._connections)
        for conn in connections:  # idle keep-alive connections
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    close = stop

    def __enter__(self) -> "FakeServices":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ URLs

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def alpaca_url(self) -> str:
        return self.base_url + PREFIXES["alpaca"]

    @property
    def alpaca_data_url(self) -> str:
        return self.base_url + PREFIXES["alpaca_data"]

    @property
    def finnhub_url(self) -> str:
        return self.base_url + PREFIXES["finnhub"]

    @property
    def coingecko_url(self) -> str:
        return self.base_url + PREFIXES["coingecko"]

    @property
    def openai_url(self) -> str:
        return self.base_url + PREFIXES["openai"]

    @property
    def alerts_url(self) -> str:
        """A JSON webhook receiver (any path below it): ``alert_url()`` is its apprise URL."""
        return self.base_url + PREFIXES["alerts"]

    def alert_url(self, token: str = "s3cr3t-alert-token") -> str:
        """An apprise ``json://`` URL to this fake, with a token in its path (as
        webhooks carry theirs): what ``TRADECYCLE_ALERT_URLS`` holds in a test."""
        return f"json://{self.host}:{self.port}{PREFIXES['alerts']}/{token}"

    def alerts(self) -> list[dict[str, Any]]:
        """The JSON bodies of every alert received (apprise's json:// shape:
        ``version``, ``title``, ``message``, ``type``, ``attachments``), oldest first."""
        with self.lock:
            return [r.json for r in self.requests if r.service == "alerts" and r.method == "POST" and r.fault is None]

    def urls(self) -> dict[str, str]:
        return {s: getattr(self, f"{s}_url") for s in SERVICES}

    def env(self, **overrides: str) -> dict[str, str]:
        """Credentials the fake accepts, as environment variables for the CLI subprocess."""
        env = {
            "APCA_API_KEY_ID": self.alpaca_key_id or "FAKEKEYID",
            "APCA_API_SECRET_KEY": self.alpaca_secret_key or "FAKESECRET",
            "FINNHUB_API_KEY": self.finnhub_token or "FAKEFINNHUB",
        }
        if self.openai_api_key:
            env["OPENAI_API_KEY"] = self.openai_api_key
        env.update(overrides)
        return env

    # ------------------------------------------------------------------ state helpers

    @staticmethod
    def _default_account() -> dict[str, Any]:
        return {
            "id": str(uuid.uuid4()),
            "admin_configurations": {},
            "user_configurations": None,
            "account_number": "PA3FAKE0001",
            "status": "ACTIVE",
            "crypto_status": "ACTIVE",
            "options_approved_level": 0,
            "options_trading_level": 0,
            "currency": "USD",
            "buying_power": "200000",
            "regt_buying_power": "200000",
            "daytrading_buying_power": "0",
            "effective_buying_power": "200000",
            "non_marginable_buying_power": "100000",
            "options_buying_power": "100000",
            "bod_dtbp": "0",
            "cash": "100000",
            "accrued_fees": "0",
            "portfolio_value": "100000",
            "multiplier": "2",
            "equity": "100000",
            "last_equity": "100000",
            "long_market_value": "0",
            "short_market_value": "0",
            "position_market_value": "0",
            "initial_margin": "0",
            "maintenance_margin": "0",
            "last_maintenance_margin": "0",
            "sma": "100000",
            "daytrade_count": 0,
            "balance_asof": date.today().isoformat(),
            "crypto_tier": 1,
            "intraday_adjustments": "0",
            "pending_reg_taf_fees": "0",
            "trading_blocked": False,
            "transfers_blocked": False,
            "account_blocked": False,
            "created_at": "2024-01-02T15:04:05.99658Z",
            "trade_suspended_by_user": False,
            "shorting_enabled": True,
        }

    def set_market_open(self, is_open: bool) -> None:
        """Rebuild ``clock``: open now (closes today 16:00 ET) or closed (opens next weekday 09:30 ET)."""
        now = datetime.now(NEW_YORK)
        close_today = now.replace(hour=16, minute=0, second=0, microsecond=0)
        next_day = now + timedelta(days=1)
        while next_day.weekday() >= 5:
            next_day += timedelta(days=1)
        next_open = next_day.replace(hour=9, minute=30, second=0, microsecond=0)
        if is_open:
            next_close = close_today if close_today > now else next_day.replace(hour=16, minute=0, second=0, microsecond=0)
        else:
            next_close = next_open.replace(hour=16, minute=0)
        with self.lock:
            self.clock = {
                "timestamp": None,  # served as "now" (nanosecond precision, ET offset, like Alpaca)
                "is_open": bool(is_open),
                "next_open": next_open.isoformat(timespec="seconds"),
                "next_close": next_close.isoformat(timespec="seconds"),
            }

    def add_asset(self, symbol: str, *, min_order_size: str | None = None, min_trade_increment: str | None = None,
                  tradable: bool = True, fractionable: bool = True) -> dict[str, Any]:
        """Add (or replace) an entry of ``assets``, keyed by the order symbol ("AAPL", "BTC/USD")."""
        crypto = _is_crypto(symbol)
        asset: dict[str, Any] = {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "fake-asset:" + symbol)),
            "class": "crypto" if crypto else "us_equity",
            "exchange": "CRYPTO" if crypto else "NASDAQ",
            "symbol": symbol,
            "name": f"{symbol.split('/')[0]} / US Dollar" if crypto else f"{symbol} Inc. Common Stock",
            "status": "active",
            "tradable": tradable,
            "marginable": not crypto,
            "maintenance_margin_requirement": 100 if crypto else 30,
            "margin_requirement_long": "100" if crypto else "30",
            "margin_requirement_short": "100" if crypto else "30",
            "shortable": not crypto,
            "easy_to_borrow": not crypto,
            "fractionable": fractionable,
            "attributes": [] if crypto else ["fractional_eh_enabled", "has_options"],
        }
        if crypto:
            minimum = min_order_size or DEFAULT_CRYPTO_MINIMUMS.get(symbol, "0.0001")
            asset["min_order_size"] = minimum
            asset["min_trade_increment"] = min_trade_increment or minimum
            asset["price_increment"] = "0.1" if symbol.startswith("BTC") else "0.01"
        with self.lock:
            self.assets[symbol] = asset
        return asset

    @staticmethod
    def _quote_from_price(symbol: str, price: Any, t: int | None = None) -> dict[str, Any]:
        c = _dec(price)
        pc = (c / Decimal("1.01")).quantize(Decimal("0.01"))
        d = c - pc
        return {
            "c": float(c),
            "d": float(d),
            "dp": round(float(d / pc * 100), 4) if pc else None,
            "h": float((c * Decimal("1.005")).quantize(Decimal("0.01"))),
            "l": float((pc * Decimal("0.995")).quantize(Decimal("0.01"))),
            "o": float(pc),
            "pc": float(pc),
            "t": t,
        }

    def set_price(self, symbol: str, price: Any, *, change_pct: float | None = None, t: int | None = None) -> None:
        """One price everywhere: fills (``prices``), the Finnhub quote or CoinGecko coin,
        and open positions' current_price/market_value. Adds the asset if unknown.
        ``t`` (unix seconds) pins the quote/coin time; None means "now" at every request."""
        with self.lock:
            self.prices[symbol] = str(price)
            if symbol not in self.assets:
                self.add_asset(symbol)
            if _is_crypto(symbol):
                coin_id = self.coin_ids.setdefault(symbol, symbol.split("/")[0].lower())
                coin = self.coins.setdefault(coin_id, {"usd": 0.0, "usd_24h_change": 0.0, "last_updated_at": None})
                coin["usd"] = float(price)
                coin["last_updated_at"] = t
                if change_pct is not None:
                    coin["usd_24h_change"] = float(change_pct)
            else:
                quote = self._quote_from_price(symbol, price, t)
                if change_pct is not None:
                    pc = _dec(price) / (1 + _dec(change_pct) / 100)
                    quote.update(pc=round(float(pc), 2), o=round(float(pc), 2), d=round(float(_dec(price) - pc), 4),
                                 dp=float(change_pct))
                self.quotes[symbol] = quote
            for pos in self.positions:
                if pos["symbol"] == position_symbol(symbol):
                    self._reprice_position(pos, _dec(price))
            self._recompute_account()

    def add_position(self, symbol: str, qty: Any, avg_entry_price: Any, current_price: Any = None) -> dict[str, Any]:
        """Add an Alpaca-shaped long position (crypto as ``BTCUSD``). Cash is left alone."""
        current = _dec(current_price if current_price is not None else self.prices.get(symbol, avg_entry_price))
        pos = self._new_position(symbol, _dec(qty), _dec(avg_entry_price), current)
        with self.lock:
            self.positions = [p for p in self.positions if p["symbol"] != pos["symbol"]] + [pos]
            self._recompute_account()
        return pos

    def _new_position(self, symbol: str, qty: Decimal, avg: Decimal, current: Decimal) -> dict[str, Any]:
        crypto = _is_crypto(symbol)
        asset = self.assets.get(symbol) or {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, "fake-asset:" + symbol))}
        pos = {
            "asset_id": asset["id"],
            "symbol": position_symbol(symbol),
            "exchange": "CRYPTO" if crypto else "NASDAQ",
            "asset_class": "crypto" if crypto else "us_equity",
            "asset_marginable": not crypto,
            "qty": _qty(qty),
            "qty_available": _qty(qty),
            "avg_entry_price": _money(avg),
            "side": "long",
            "cost_basis": _usd(qty * avg),
            "lastday_price": _money(current),
            "change_today": "0",
        }
        self._reprice_position(pos, current)
        return pos

    @staticmethod
    def _reprice_position(pos: dict[str, Any], current: Decimal) -> None:
        qty, avg = _dec(pos["qty"]), _dec(pos["avg_entry_price"])
        market_value = qty * current
        cost = qty * avg
        lastday = _dec(pos.get("lastday_price") or current)
        pos.update(
            current_price=_money(current),
            market_value=_usd(market_value),
            cost_basis=_usd(cost),
            unrealized_pl=_usd(market_value - cost),
            unrealized_plpc=_ratio((market_value - cost) / cost) if cost else "0",
            unrealized_intraday_pl=_usd(qty * (current - lastday)),
            unrealized_intraday_plpc=_ratio((current - lastday) / lastday) if lastday else "0",
            change_today=_ratio((current - lastday) / lastday) if lastday else "0",
        )

    def _recompute_account(self) -> None:
        """equity = cash + positions; buying power = cash x multiplier (non-marginable: cash)."""
        acct = self.account
        try:
            cash = _dec(acct["cash"])
            multiplier = _dec(acct.get("multiplier") or "1")
        except (KeyError, InvalidOperation):
            return
        long_value = sum((_dec(p["market_value"]) for p in self.positions), Decimal(0))
        equity = cash + long_value
        buying_power = _usd(max(cash * multiplier, Decimal(0)))
        acct.update(
            long_market_value=_usd(long_value),
            position_market_value=_usd(long_value),
            equity=_usd(equity),
            portfolio_value=_usd(equity),
            buying_power=buying_power,
            regt_buying_power=buying_power,
            effective_buying_power=buying_power,
            non_marginable_buying_power=_usd(max(cash, Decimal(0))),
        )

    def set_daily_bars(self, symbol: str, rows: list[tuple[Any, Any, Any, Any, Any]], *,
                       last_day: date | None = None) -> list[dict[str, Any]]:
        """Serve these (open, high, low, close, volume) rows as ``symbol``'s daily bars, oldest
        first, the newest dated ``last_day`` (default: yesterday, New York time). Stock bars fall
        on weekdays and start at midnight New York time; crypto bars on every day."""
        day = last_day or (datetime.now(NEW_YORK).date() - timedelta(days=1))
        crypto = _is_crypto(symbol)
        days: list[date] = []
        while len(days) < len(rows):
            if crypto or day.weekday() < 5:
                days.append(day)
            day -= timedelta(days=1)
        bars = []
        for on, (o, h, l, c, v) in zip(reversed(days), rows):
            midnight = datetime(on.year, on.month, on.day, tzinfo=NEW_YORK if not crypto else timezone.utc)
            bars.append({"t": _rfc3339(midnight), "o": float(o), "h": float(h), "l": float(l), "c": float(c),
                         "v": float(v) if crypto else int(v), "n": 1000 + len(bars), "vw": float(c)})
        with self.lock:
            self.daily_bars[symbol] = bars
        return bars

    def add_news(self, symbol: str, headline: str, *, summary: str | None = None, hours_ago: float = 1.0,
                 datetime_: int | None = None, source: str = "Reuters", url: str | None = None,
                 category: str = "company") -> dict[str, Any]:
        """Add a Finnhub company-news item (``datetime`` in unix seconds; newest served first)."""
        with self.lock:
            self._news_ids += 1
            item = {
                "category": category,
                "datetime": int(datetime_ if datetime_ is not None else time.time() - hours_ago * 3600),
                "headline": headline,
                "id": self._news_ids,
                "image": "",
                "related": symbol,
                "source": source,
                "summary": summary if summary is not None else f"{headline}. More details inside.",
                "url": url or f"https://news.example.com/{symbol.lower()}/{self._news_ids}",
            }
            self.news.setdefault(symbol, []).append(item)
        return item

    def fill(self, client_order_id: str, price: Any = None, qty: Any = None) -> dict[str, Any]:
        """Fill an open order now (``qty`` < ordered: partially_filled) and update positions/cash."""
        with self.lock:
            order = self.orders[client_order_id]
            self._fill(order, _dec(price) if price is not None else None, _dec(qty) if qty is not None else None)
            return order

    def set_order_status(self, client_order_id: str, status: str, **fields: Any) -> dict[str, Any]:
        """Move an order to any status (canceled, expired, rejected, ...) without touching positions."""
        with self.lock:
            order = self.orders[client_order_id]
            now = _rfc3339()
            order.update(status=status, updated_at=now, **fields)
            stamp = {"canceled": "canceled_at", "expired": "expired_at", "rejected": "failed_at", "filled": "filled_at"}
            if status in stamp and not order.get(stamp[status]):
                order[stamp[status]] = now
            return order

    # ------------------------------------------------------------------ recording

    def calls(self, service: str | None = None, method: str | None = None,
              path_prefix: str | None = None) -> list[RecordedRequest]:
        """Recorded requests, filtered. ``path_prefix`` matches the full path ("/alpaca/v2/orders")
        or the path below the service's base URL ("/v2/orders")."""
        with self.lock:
            found = list(self.requests)
        if service:
            found = [r for r in found if r.service == service]
        if method:
            found = [r for r in found if r.method == method.upper()]
        if path_prefix:
            found = [r for r in found if r.path.startswith(path_prefix) or r.subpath.startswith(path_prefix)]
        return found

    def count(self, service: str | None = None, method: str | None = None, path_prefix: str | None = None) -> int:
        return len(self.calls(service, method, path_prefix))

    def orders_posted(self) -> list[Any]:
        """The JSON bodies of every POST /v2/orders, in arrival order (refused ones included)."""
        return [r.json for r in self.calls("alpaca", "POST", "/v2/orders") if r.subpath == "/v2/orders"]

    def clear_requests(self) -> None:
        with self.lock:
            self.requests.clear()

    # ------------------------------------------------------------------ faults

    def fail(self, target: str, kind: str, times: int | None = None, *, method: str | None = None,
             **params: Any) -> Fault:
        """Script a fault for requests to a service ("alpaca", ...) or under a path prefix
        ("/alpaca/v2/orders" or "/v2/orders"). Faults are consumed in the order they were
        added: a request takes the first matching fault that has uses left. ``times=None``: forever.

        kinds and their params:
          status       status=500 (int), headers={}, body=<realistic per service>
          delay        seconds=1.0: wait, then answer normally
          drop         close the connection with no reply; accept=True first does the work
                       (e.g. records the order at the broker)
          late_accept  seconds=1.0: do the work (record the order), wait, then reply
          garbage      200 with a non-JSON body; body=..., content_type="application/json"
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {FAULT_KINDS}")
        if not target.startswith("/") and target not in SERVICES:
            raise ValueError(f"fault target must be one of {SERVICES} or a path prefix, not {target!r}")
        if kind == "status" and "status" not in params:
            params["status"] = 500
        fault = Fault(target=target, kind=kind, times=times, params=params, method=method)
        with self.lock:
            self.faults.append(fault)
        return fault

    def reset_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def _take_fault(self, service: str, method: str, path: str, subpath: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if not fault.exhausted and fault.matches(service, method, path, subpath):
                    fault.used += 1
                    return fault
        return None

    def _sleep(self, seconds: float) -> None:
        if seconds and seconds > 0 and self._stopping.wait(seconds):
            raise _Stopping()

    def _error_reply(self, service: str, status: int, message: str | None = None,
                     headers: dict[str, str] | None = None, body: Any = None) -> Reply:
        if body is None:
            body = self._error_body(service, status, message)
        return Reply(status, body, dict(headers or {}))

    @staticmethod
    def _error_body(service: str, status: int, message: str | None = None) -> Any:
        if service in ("alpaca", "alpaca_data"):
            code, default = _ALPACA_ERRORS.get(status, (status * 100000, "error"))
            return {"code": code, "message": message or default}
        if service == "finnhub":
            return {"error": message or _FINNHUB_ERRORS.get(status, "Internal server error")}
        if service == "coingecko":
            return {"status": {"error_code": status,
                               "error_message": message or _COINGECKO_ERRORS.get(status, "Internal Server Error")}}
        if service == "openai":
            kind, code, default = _OPENAI_ERRORS.get(status, ("server_error", None, "Internal server error"))
            return {"error": {"message": message or default, "type": kind, "param": None, "code": code}}
        return {"error": message or "not found"}

    # ------------------------------------------------------------------ dispatch

    def _dispatch(self, req: RecordedRequest) -> Reply:
        handler = {
            "alpaca": self._alpaca,
            "alpaca_data": self._alpaca_data,
            "finnhub": self._finnhub,
            "coingecko": self._coingecko,
            "openai": self._openai,
            "alerts": lambda r: Reply(200, {}),  # a webhook: any 2xx is delivered
        }.get(req.service)
        if handler is None:
            return Reply(404, {"error": f"no fake service at {req.path}"})
        return handler(req)

    # ----- Alpaca

    def _alpaca_error(self, status: int, message: str, code: int | None = None) -> Reply:
        body = self._error_body("alpaca", status, message)
        if code is not None:
            body["code"] = code
        return Reply(status, body)

    def _alpaca(self, req: RecordedRequest) -> Reply:
        if self.require_auth:
            key, secret = req.headers.get("APCA-API-KEY-ID"), req.headers.get("APCA-API-SECRET-KEY")
            if (not key or not secret or (self.alpaca_key_id and key != self.alpaca_key_id)
                    or (self.alpaca_secret_key and secret != self.alpaca_secret_key)):
                return Reply(401, {"code": 40110000, "message": "request is not authorized"})
        parts = req.subpath.split("/")  # ["", "v2", "orders", ...], still URL-encoded
        method = req.method
        reply: Reply
        with self.lock:
            if parts[:2] != ["", "v2"] or len(parts) < 3:
                reply = self._alpaca_error(404, "endpoint not found", 40410000)
            elif parts[2] == "account" and len(parts) == 3 and method == "GET":
                reply = Reply(200, dict(self.account))
            elif parts[2] == "clock" and len(parts) == 3 and method == "GET":
                clock = dict(self.clock)
                if clock.get("timestamp") is None:
                    now = datetime.now(NEW_YORK)  # "2026-05-11T10:21:34.123456123-04:00"
                    offset = now.isoformat()[-6:]
                    clock["timestamp"] = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond:06d}123" + offset
                reply = Reply(200, {"timestamp": clock.pop("timestamp"), **clock})
            elif parts[2] == "positions" and method == "GET":
                if len(parts) == 3:
                    reply = Reply(200, [dict(p) for p in self.positions])
                else:
                    wanted = position_symbol(unquote(parts[3]).upper())
                    pos = next((p for p in self.positions if p["symbol"] == wanted), None)
                    reply = Reply(200, dict(pos)) if pos else self._alpaca_error(404, "position does not exist", 40410000)
            elif parts[2] == "assets" and len(parts) == 4 and method == "GET":
                symbol = unquote(parts[3]).upper()
                asset = self.assets.get(symbol) or next(
                    (a for s, a in self.assets.items() if position_symbol(s) == symbol), None)
                reply = Reply(200, dict(asset)) if asset else self._alpaca_error(
                    404, f"asset not found for {symbol}", 40410000)
            elif parts[2] == "orders" and len(parts) == 3 and method == "POST":
                reply = self._alpaca_post_order(req)
            elif parts[2] == "orders" and len(parts) == 3 and method == "GET":
                reply = self._alpaca_list_orders(req)
            elif parts[2] == "orders:by_client_order_id" and len(parts) == 3 and method == "GET":
                coid = req.query.get("client_order_id", "")
                order = self.orders.get(coid)
                reply = Reply(200, dict(order)) if order else self._alpaca_error(404, "order not found", 40410000)
            elif parts[2] == "orders" and len(parts) == 4 and method in ("GET", "DELETE"):
                order_id = unquote(parts[3])
                order = next((o for o in self.orders.values() if o["id"] == order_id), None)
                if order is None:
                    reply = self._alpaca_error(404, f"order not found for {order_id}", 40410000)
                elif method == "GET":
                    reply = Reply(200, dict(order))
                elif order["status"] in ("filled", "canceled", "expired", "rejected"):
                    reply = self._alpaca_error(422, f"order is already in \"{order['status']}\" state", 42210000)
                else:
                    self.set_order_status(order["client_order_id"], "canceled")
                    reply = Reply(204, None)
            else:
                reply = self._alpaca_error(404, "endpoint not found", 40410000)
        reply.headers.setdefault("X-Ratelimit-Limit", "200")
        reply.headers.setdefault("X-Ratelimit-Remaining", "199")
        return reply

    def _alpaca_list_orders(self, req: RecordedRequest) -> Reply:
        status = req.query.get("status", "open")
        open_states = {"new", "accepted", "partially_filled", "pending_new", "accepted_for_bidding", "held", "pending_review"}
        orders = list(self.orders.values())
        if status == "open":
            orders = [o for o in orders if o["status"] in open_states]
        elif status == "closed":
            orders = [o for o in orders if o["status"] not in open_states]
        if req.query.get("symbols"):
            wanted = {s.strip().upper() for s in req.query["symbols"].split(",")}
            orders = [o for o in orders if o["symbol"] in wanted or position_symbol(o["symbol"]) in wanted]
        orders.sort(key=lambda o: o["submitted_at"], reverse=req.query.get("direction", "desc") != "asc")
        try:
            limit = min(int(req.query.get("limit", "50")), 500)
        except ValueError:
            return self._alpaca_error(422, "invalid limit", 42210000)
        return Reply(200, [dict(o) for o in orders[:limit]])

    def _alpaca_post_order(self, req: RecordedRequest) -> Reply:
        body = req.json
        if not isinstance(body, dict):
            return self._alpaca_error(400, "request body format is invalid", 40010000)
        coid = body.get("client_order_id") or str(uuid.uuid4())
        if not isinstance(coid, str) or len(coid) > 128:
            return self._alpaca_error(422, "client_order_id must be no more than 128 characters", 40010001)
        if coid in self.orders:
            return self._alpaca_error(422, "client_order_id must be unique", 40010001)
        if self.account.get("trading_blocked") or self.account.get("account_blocked") \
                or self.account.get("status") != "ACTIVE":
            return self._alpaca_error(403, "account is not allowed to trade", 40310000)

        symbol = str(body.get("symbol") or "").upper()
        if not symbol:
            return self._alpaca_error(422, "symbol is required", 40010001)
        asset = self.assets.get(symbol)
        if asset is None:
            return self._alpaca_error(422, f'asset "{symbol}" not found', 40010001)
        if not asset.get("tradable", True):
            return self._alpaca_error(422, f"asset {symbol} is not tradable", 42210000)
        crypto = asset["class"] == "crypto"
        side = body.get("side")
        if side not in ("buy", "sell"):
            return self._alpaca_error(422, "invalid side", 40010001)
        order_type = body.get("type", body.get("order_type"))
        if order_type != "market":
            return self._alpaca_error(422, f"this fake takes market orders only, not {order_type!r}", 42210000)
        tif = body.get("time_in_force")
        if (body.get("qty") is None) == (body.get("notional") is None):
            return self._alpaca_error(422, "qty or notional is required, but not both", 40010001)
        try:
            qty = _dec(body["qty"]) if body.get("qty") is not None else None
            notional = _dec(body["notional"]) if body.get("notional") is not None else None
        except InvalidOperation:
            return self._alpaca_error(422, "invalid qty or notional", 40010001)
        amount = qty if qty is not None else notional
        assert amount is not None
        if not amount.is_finite() or amount <= 0:
            return self._alpaca_error(422, "qty or notional must be > 0", 40010001)
        if amount.as_tuple().exponent < -9:  # type: ignore[operator]
            return self._alpaca_error(422, "qty or notional must have at most 9 decimal places", 40010001)
        fractional = notional is not None or (qty is not None and qty != qty.to_integral_value())
        if crypto:
            if tif not in ("gtc", "ioc"):
                return self._alpaca_error(422, "invalid crypto time_in_force", 42210000)
        elif tif not in ("day", "gtc", "opg", "cls", "ioc", "fok"):
            return self._alpaca_error(422, "invalid time_in_force", 40010001)
        elif fractional and tif != "day":
            return self._alpaca_error(422, "fractional orders must be DAY orders", 42210000)
        if fractional and not asset.get("fractionable", True):
            return self._alpaca_error(422, f"asset {symbol} is not fractionable", 42210000)

        price = _dec(self.prices[symbol]) if self.prices.get(symbol) else None
        est_qty = qty if qty is not None else (notional / price if price else None)
        est_value = notional if notional is not None else (qty * price if price else None)
        if crypto:
            minimum = _dec(asset.get("min_order_size") or "0")
            increment = _dec(asset.get("min_trade_increment") or "0")
            if est_qty is not None and est_qty < minimum:
                return self._alpaca_error(422, f"qty must be >= {asset['min_order_size']}", 42210000)
            if qty is not None and increment and qty % increment != 0:
                return self._alpaca_error(
                    422, f"qty must be in increments of {asset['min_trade_increment']}", 42210000)
        elif est_value is not None and est_value < 1 and fractional:
            return self._alpaca_error(422, "cost basis must be >= 1", 42210000)

        if side == "buy" and est_value is not None:
            available = _dec(self.account["non_marginable_buying_power" if crypto else "buying_power"])
            if est_value > available:
                return self._alpaca_error(403, "insufficient buying power", 40310000)
        if side == "sell":
            pos = next((p for p in self.positions if p["symbol"] == position_symbol(symbol)), None)
            held = _dec(pos["qty_available"]) if pos else Decimal(0)
            if est_qty is not None and (crypto or fractional or not self.allow_short) and est_qty > held:
                message = ("insufficient balance for " + symbol.split("/")[0]) if crypto else \
                    f"insufficient qty available for order (requested: {_qty(est_qty)}, available: {_qty(held)})"
                return self._alpaca_error(403, message, 40310000)

        now = _rfc3339()
        order = {
            "id": str(uuid.uuid4()),
            "client_order_id": coid,
            "created_at": now,
            "updated_at": now,
            "submitted_at": now,
            "filled_at": None,
            "expired_at": None,
            "canceled_at": None,
            "failed_at": None,
            "replaced_at": None,
            "replaced_by": None,
            "replaces": None,
            "asset_id": asset["id"],
            "symbol": symbol,
            "asset_class": asset["class"],
            "notional": _money(notional) if notional is not None else None,
            "qty": _qty(qty) if qty is not None else None,
            "filled_qty": "0",
            "filled_avg_price": None,
            "order_class": "",
            "order_type": "market",
            "type": "market",
            "side": side,
            "position_intent": "buy_to_open" if side == "buy" else "sell_to_close",
            "time_in_force": tif,
            "limit_price": None,
            "stop_price": None,
            "status": "new" if crypto or self.clock.get("is_open") else "accepted",  # stocks queue while closed
            "extended_hours": bool(body.get("extended_hours", False)),
            "legs": None,
            "trail_percent": None,
            "trail_price": None,
            "hwm": None,
            "subtag": None,
            "source": None,
            "expires_at": None,
        }
        if self.new_order_status:
            order["status"] = self.new_order_status
        self.orders[coid] = order
        if self.fill_orders and not self.new_order_status and price is not None and (crypto or self.clock.get("is_open")):
            self._fill(order, price, None)
        return Reply(200, dict(order))

    def _fill(self, order: dict[str, Any], price: Decimal | None, qty: Decimal | None) -> None:
        symbol = order["symbol"]
        if price is None:
            price = _dec(self.prices[symbol])
        ordered = _dec(order["qty"]) if order.get("qty") is not None else \
            (_dec(order["notional"]) / price).quantize(QTY_PLACES, rounding=ROUND_DOWN)
        already = _dec(order.get("filled_qty") or "0")
        fill_qty = min(qty if qty is not None else ordered - already, ordered - already)
        if fill_qty <= 0:
            return
        total = already + fill_qty
        prev_avg = _dec(order["filled_avg_price"]) if order.get("filled_avg_price") else price
        avg = (prev_avg * already + price * fill_qty) / total
        now = _rfc3339()
        order.update(filled_qty=_qty(total), filled_avg_price=_money(avg.quantize(Decimal("0.0001"))),
                     updated_at=now, status="filled" if total >= ordered else "partially_filled")
        if order["status"] == "filled":
            order["filled_at"] = now
        crypto = _is_crypto(symbol)
        cash = _dec(self.account["cash"])
        pos = next((p for p in self.positions if p["symbol"] == position_symbol(symbol)), None)
        if order["side"] == "buy":
            cash -= fill_qty * price
            received = fill_qty * (1 - Decimal(self.crypto_fee_bps) / 10000) if crypto else fill_qty
            if pos is None:
                self.positions.append(self._new_position(symbol, received, price, price))
            else:
                old_qty, old_avg = _dec(pos["qty"]), _dec(pos["avg_entry_price"])
                new_qty = old_qty + received
                pos.update(qty=_qty(new_qty), qty_available=_qty(new_qty),
                           avg_entry_price=_money(((old_qty * old_avg + received * price) / new_qty)
                                                  .quantize(Decimal("0.0001"))))
                self._reprice_position(pos, price)
        else:
            cash += fill_qty * price
            if pos is not None:
                new_qty = _dec(pos["qty"]) - fill_qty
                if new_qty <= 0:
                    self.positions.remove(pos)
                else:
                    pos.update(qty=_qty(new_qty), qty_available=_qty(new_qty))
                    self._reprice_position(pos, price)
        self.account["cash"] = _usd(cash)
        self._recompute_account()

    # ----- Alpaca market data

    def _alpaca_data(self, req: RecordedRequest) -> Reply:
        """Snapshots and daily bars, stocks (``/v2/stocks/...``, keys required, IEX feed on the
        free plan) and crypto (``/v1beta3/crypto/us/...``, no key needed)."""
        stocks = req.subpath.startswith("/v2/stocks/")
        if stocks and self.require_auth:
            key, secret = req.headers.get("APCA-API-KEY-ID"), req.headers.get("APCA-API-SECRET-KEY")
            if (not key or not secret or (self.alpaca_key_id and key != self.alpaca_key_id)
                    or (self.alpaca_secret_key and secret != self.alpaca_secret_key)):
                return Reply(401, {"code": 40110000, "message": "request is not authorized"})
        if req.method != "GET":
            return self._alpaca_error(405, "method not allowed", 40510000)
        symbols = [s.strip().upper() for s in req.query.get("symbols", "").split(",") if s.strip()]
        feed = req.query.get("feed")
        if stocks and (feed == "sip" or (feed is None and req.subpath == "/v2/stocks/bars")):
            # The free plan: SIP data of the last 15 minutes is refused (bars default to SIP, up to now).
            return Reply(403, {"message": SIP_REFUSAL})
        if stocks and feed not in (None, "iex", "sip", "delayed_sip", "otc"):
            return Reply(400, {"code": 40010001, "message": f"invalid feed: {feed}"})
        if req.subpath in ("/v2/stocks/snapshots", "/v1beta3/crypto/us/snapshots"):
            if not symbols:
                return Reply(400, {"code": 40010001, "message": "missing symbols"})
            with self.lock:
                found = {s: self.snapshot(s) for s in symbols if s in self.prices and _is_crypto(s) != stocks}
            return Reply(200, found if stocks else {"snapshots": found})
        if req.subpath in ("/v2/stocks/bars", "/v1beta3/crypto/us/bars"):
            return self._alpaca_bars(req, symbols, stocks)
        return self._alpaca_error(404, "endpoint not found", 40410000)

    def snapshot(self, symbol: str) -> dict[str, Any]:
        """Alpaca's snapshot of one symbol: latest trade and quote at ``prices[symbol]`` (as of the
        Finnhub quote's or CoinGecko coin's pinned time, else now), the minute bar, today's bar
        (volume ``day_volumes``) and the previous daily bar (the last of ``daily_bars``)."""
        price = _dec(self.prices[symbol])
        crypto = _is_crypto(symbol)
        pinned = (self.coins.get(self.coin_ids.get(symbol, ""), {}).get("last_updated_at") if crypto
                  else (self.quotes.get(symbol) or {}).get("t"))
        now = datetime.fromtimestamp(pinned, timezone.utc) if pinned else datetime.now(timezone.utc)
        bars = self.daily_bars.get(symbol) or []
        previous = dict(bars[-1]) if bars else None
        day_open = _dec(previous["c"]) if previous else price
        today = now.astimezone(timezone.utc if crypto else NEW_YORK).date()
        midnight = datetime(today.year, today.month, today.day, tzinfo=timezone.utc if crypto else NEW_YORK)
        volume = self.day_volumes.get(symbol, 1_000.0 if crypto else 1_500_000)
        spread = price * Decimal("0.0002")
        trade = {"t": _rfc3339(now), "p": float(price), "s": 0.0125 if crypto else 100, "i": 52983525029461}
        quote = {"t": _rfc3339(now), "bp": float(price - spread), "bs": 1.2 if crypto else 2,
                 "ap": float(price + spread), "as": 0.8 if crypto else 3}
        if not crypto:
            trade.update(x="V", c=["@"], z="C")
            quote.update(bx="V", ax="V", c=["R"], z="C")
        else:
            trade["tks"] = "B"
        minute = now.replace(second=0, microsecond=0) - timedelta(minutes=1)
        return {
            "latestTrade": trade,
            "latestQuote": quote,
            "minuteBar": {"t": _rfc3339(minute), "o": float(price), "h": float(price), "l": float(price), "c": float(price),
                          "v": 0.5 if crypto else 1200, "n": 14, "vw": float(price)},
            "dailyBar": {"t": _rfc3339(midnight), "o": float(day_open), "h": float(max(day_open, price)),
                         "l": float(min(day_open, price)), "c": float(price), "v": volume, "n": 8123, "vw": float(price)},
            "prevDailyBar": previous,
        }

    def _alpaca_bars(self, req: RecordedRequest, symbols: list[str], stocks: bool) -> Reply:
        if req.query.get("timeframe") != "1Day":
            return self._alpaca_error(422, f"invalid timeframe: {req.query.get('timeframe')} (the fake serves 1Day)", 42210000)
        if not symbols:
            return Reply(400, {"code": 40010001, "message": "missing symbols"})
        try:
            limit = int(req.query.get("limit", "1000"))
            start = req.query.get("start", "1970-01-01")[:10]
            date.fromisoformat(start)
            offset = int(base64.b64decode(req.query["page_token"]).decode()) if req.query.get("page_token") else 0
        except (ValueError, TypeError):
            return Reply(400, {"code": 40010001, "message": "invalid limit, start or page_token"})
        if not 1 <= limit <= 10000:
            return self._alpaca_error(422, "invalid limit: must be between 1 and 10000", 42210000)
        with self.lock:  # Alpaca sorts by symbol, then time; the limit counts across symbols
            rows = [(s, dict(b)) for s in sorted(symbols) if _is_crypto(s) != stocks
                    for b in self.daily_bars.get(s, []) if b["t"][:10] >= start]
        page = rows[offset: offset + min(limit, self.bars_page_size or limit)]
        body: dict[str, Any] = {}
        for symbol, bar in page:
            body.setdefault(symbol, []).append(bar)
        more = offset + len(page) < len(rows)
        token = base64.b64encode(str(offset + len(page)).encode()).decode() if more else None
        return Reply(200, {"bars": body, "next_page_token": token})

    # ----- Finnhub

    def _finnhub(self, req: RecordedRequest) -> Reply:
        header_token = req.headers.get("X-Finnhub-Token")
        query_token = req.query.get("token")
        req.token_via = "header" if header_token else ("query" if query_token else None)
        if self.require_auth:
            token = header_token or query_token
            if not token or (self.finnhub_token and token != self.finnhub_token):
                return Reply(401, {"error": "Invalid API key" if token else "Please use an API key."})
        if req.method != "GET":
            return Reply(405, {"error": "Method not allowed"})
        if req.subpath == "/quote":
            symbol = req.query.get("symbol", "").upper()
            if not symbol:
                return Reply(422, {"error": "Symbol required"})
            with self.lock:
                quote = self.quotes.get(symbol)
                quote = dict(quote) if quote else None
            if quote is None:
                return Reply(200, {"c": 0, "d": None, "dp": None, "h": 0, "l": 0, "o": 0, "pc": 0, "t": 0})
            if quote.get("t") is None:
                quote["t"] = int(self.time_source())
            return Reply(200, quote)
        if req.subpath == "/company-news":
            symbol = req.query.get("symbol", "").upper()
            try:
                start = date.fromisoformat(req.query["from"])
                end = date.fromisoformat(req.query["to"])
            except (KeyError, ValueError):
                return Reply(422, {"error": "Wrong date format. Please use YYYY-MM-DD."})
            # one day of slack each side: clients compute "today" in their own time zone
            lo = datetime.combine(start - timedelta(days=1), datetime.min.time(), timezone.utc).timestamp()
            hi = datetime.combine(end + timedelta(days=2), datetime.min.time(), timezone.utc).timestamp()
            with self.lock:
                items = [dict(i) for i in self.news.get(symbol, []) if lo <= i["datetime"] < hi]
            items.sort(key=lambda i: i["datetime"], reverse=True)
            return Reply(200, items)
        if req.subpath.startswith("/stock/candle"):
            return Reply(403, {"error": "You don't have access to this resource."})
        return Reply(404, {"error": "Not found"})

    # ----- CoinGecko

    def _coingecko(self, req: RecordedRequest) -> Reply:
        if req.method != "GET":
            return Reply(405, self._error_body("coingecko", 405, "Method not allowed"))
        if PRO_KEY_HEADER in req.headers:  # the public host answers a Pro key with a 400 naming the right root URL
            return Reply(400, COINGECKO_PRO_KEY_ON_PUBLIC_HOST)
        if req.subpath == "/ping":
            return Reply(200, {"gecko_says": "(V3) To the Moon!"})
        if req.subpath != "/simple/price":
            return Reply(404, self._error_body("coingecko", 404, "Not found"))
        ids = [i.strip() for i in req.query.get("ids", "").split(",") if i.strip()]
        currencies = [c.strip().lower() for c in req.query.get("vs_currencies", "").split(",") if c.strip()]
        if not ids:
            return Reply(400, {"error": "Missing parameter ids"})
        if not currencies:
            return Reply(400, {"error": "Missing parameter vs_currencies"})
        with_change = req.query.get("include_24hr_change", "").lower() == "true"
        with_time = req.query.get("include_last_updated_at", "").lower() == "true"
        result: dict[str, Any] = {}
        with self.lock:
            for coin_id in ids:
                coin = self.coins.get(coin_id)
                if coin is None:
                    continue
                entry: dict[str, Any] = {}
                for cur in currencies:
                    if cur in coin:
                        entry[cur] = coin[cur]
                        if with_change and f"{cur}_24h_change" in coin:
                            entry[f"{cur}_24h_change"] = coin[f"{cur}_24h_change"]
                if with_time:
                    entry["last_updated_at"] = coin.get("last_updated_at") or int(self.time_source())
                result[coin_id] = entry
        return Reply(200, result)

    # ----- OpenAI-compatible

    def _openai(self, req: RecordedRequest) -> Reply:
        if self.openai_api_key is not None:
            auth = req.headers.get("Authorization", "")
            if auth != f"Bearer {self.openai_api_key}":
                return Reply(401, self._error_body("openai", 401))
        if req.subpath == "/models" and req.method == "GET":
            return Reply(200, self._llm_listing())
        if req.subpath != "/chat/completions":
            return Reply(404, self._error_body("openai", 404, f"Unknown request URL: {req.method} {req.subpath}"))
        if req.method != "POST":
            return Reply(405, self._error_body("openai", 405, "Method not allowed"))
        body = req.json
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return Reply(400, self._error_body("openai", 400, "'messages' is a required property"))
        if not body.get("model"):
            return Reply(400, self._error_body("openai", 400, "you must provide a model parameter"))
        refusal = self._llm_refusal(body)
        if refusal is not None:
            return refusal

        reply = self.llm_reply
        if reply is None:
            reply = self.default_llm_reply
        if callable(reply):
            reply = reply(body)
        if isinstance(reply, dict):  # a full response override
            status = int(reply.get("status", 200))
            payload = reply["body"] if "body" in reply else {k: v for k, v in reply.items()
                                                            if k not in ("status", "headers")}
            if not payload and "body" not in reply and status >= 400:
                payload = self._error_body("openai", status)
            return Reply(status, payload, dict(reply.get("headers") or {}))
        return Reply(200, self._llm_completion(body, self._llm_dress(str(reply))))

    # The shapes below follow each server's documentation and recorded replies (openai-python's
    # tests, llama.cpp's server README, vLLM's protocol, DeepSeek's and Ollama's API docs).

    def _llm_listing(self) -> dict[str, Any]:
        """GET /models as the imitated server lists its models."""
        flavor, created = self.llm_flavor, 1735142223
        rows: list[dict[str, Any]] = []
        for model in self._llm_listed():
            row: dict[str, Any] = {"id": model, "object": "model", "created": created,
                                   "owned_by": {"openai": "system", "ollama": "library", "vllm": "vllm",
                                                "llamacpp": "llamacpp", "deepseek": "deepseek"}[flavor]}
            if flavor == "vllm":
                row.update(root=model, parent=None, max_model_len=32768, permission=[{
                    "id": "modelperm-" + uuid.uuid4().hex, "object": "model_permission", "created": created,
                    "allow_create_engine": False, "allow_sampling": True, "allow_logprobs": True,
                    "allow_search_indices": False, "allow_view": True, "allow_fine_tuning": False,
                    "organization": "*", "group": None, "is_blocking": False}])
            elif flavor == "llamacpp":
                row.update(aliases=[model], tags=[], architecture={"input_modalities": ["text"], "output_modalities": ["text"]},
                           meta={"vocab_type": 2, "n_vocab": 151936, "n_ctx_train": 40960, "n_embd": 4096,
                                 "n_params": 8190735360, "size": 5027783488})
            elif flavor == "deepseek":
                del row["created"]
            rows.append(row)
        listing: dict[str, Any] = {"object": "list", "data": rows}
        if flavor == "llamacpp":  # llama.cpp also answers Ollama's /api/tags shape in the same body
            listing["models"] = [{"name": m, "model": m, "modified_at": "", "size": "", "digest": "", "type": "model",
                                  "description": "", "tags": [""], "capabilities": ["completion"], "parameters": "",
                                  "details": {"parent_model": "", "format": "gguf", "family": "", "families": [""],
                                              "parameter_size": "", "quantization_level": ""}}
                                 for m in self._llm_listed()]
        return listing

    def _llm_listed(self) -> list[str]:
        if self.llm_models is not None:
            return list(self.llm_models)
        return [LLAMACPP_MODEL_ID] if self.llm_flavor == "llamacpp" else [self.llm_model]

    def _llm_error(self, status: int, message: str, kind: str = "invalid_request_error",
                   code: Any = None, param: str | None = None) -> Reply:
        """An error in the imitated server's shape (llama.cpp and vLLM: an integer code)."""
        if self.llm_flavor == "llamacpp":
            return Reply(status, {"error": {"code": status, "message": message, "type": kind}})
        if self.llm_flavor == "vllm":
            return Reply(status, {"error": {"message": message, "type": kind, "param": param, "code": status}})
        return Reply(status, {"error": {"message": message, "type": kind, "param": param, "code": code}})

    def _llm_refusal(self, body: dict[str, Any]) -> Reply | None:
        """What the imitated server refuses before generating anything, or None."""
        if self.llm_quota_exhausted:
            return Reply(429, json.loads(json.dumps(OPENAI_INSUFFICIENT_QUOTA)))
        model, flavor = str(body["model"]), self.llm_flavor
        listed = self._llm_listed()
        if flavor != "llamacpp" and model not in listed and not (flavor == "ollama" and f"{model}:latest" in listed):
            if flavor == "ollama":
                return self._llm_error(404, f'model "{model}" not found, try pulling it first', "api_error")
            if flavor == "vllm":
                return self._llm_error(404, f"The model `{model}` does not exist.", "NotFoundError", param="model")
            if flavor == "deepseek":
                return self._llm_error(400, "Model Not Exist", code="invalid_request_error")
            return self._llm_error(404, f"The model `{model}` does not exist or you do not have access to it.",
                                   code="model_not_found")
        for name, kind in self.llm_refuse_params.items():
            if name not in body:
                continue
            if kind == "unsupported_parameter":
                return self._llm_error(400, f"Unsupported parameter: '{name}' is not supported with this model.",
                                       code=kind, param=name)
            if body[name] != 1:
                return self._llm_error(400, f"Unsupported value: '{name}' does not support {body[name]} with this model. "
                                            "Only the default (1) value is supported.", code=kind, param=name)
        response_format = body.get("response_format")
        if not self.llm_json_schema and isinstance(response_format, dict) and response_format.get("type") == "json_schema":
            return self._llm_error(400, "Invalid parameter: 'response_format' of type 'json_schema' is not supported "
                                        "with this model.", param="response_format")
        return None

    def _llm_dress(self, answer: str) -> str:
        """The answer text as the model writes it around (``llm_wrap``)."""
        thinking = self.llm_reasoning or DEFAULT_THINKING
        return {
            None: answer,
            "fence": f"```json\n{answer}\n```",
            "prose": f"Here is my analysis of the market data you provided.\n\n{answer}\n\nThis is not financial advice.",
            "prose_fence": f"Sure! Here is the JSON you asked for:\n\n```json\n{answer}\n```\n\nLet me know if you need more.",
            "think": f"<think>\n{thinking}\n</think>\n\n{answer}",
            "think_close_only": f"{thinking}\n</think>\n\n{answer}",
        }[self.llm_wrap]

    def _llm_completion(self, body: dict[str, Any], content: str) -> dict[str, Any]:
        """A 200 chat completion in the imitated server's shape."""
        flavor, model, created = self.llm_flavor, body["model"], _now_epoch()
        prompt_chars = sum(len(str(m.get("content", ""))) for m in body["messages"] if isinstance(m, dict))
        prompt_tokens, completion_tokens = max(1, prompt_chars // 4), max(1, len(content) // 4)
        reasoning = self.llm_reasoning if self.llm_wrap not in ("think", "think_close_only") else None
        reasoning_tokens = len(reasoning) // 4 if reasoning else 0
        completion_tokens += reasoning_tokens
        message: dict[str, Any] = {"role": "assistant",
                                   "content": [{"type": "text", "text": content}] if self.llm_content_parts else content}
        usage: dict[str, Any] = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                 "total_tokens": prompt_tokens + completion_tokens}
        choice: dict[str, Any] = {"index": 0, "message": message, "logprobs": None, "finish_reason": self.llm_finish_reason}
        reply: dict[str, Any] = {"id": "chatcmpl-" + uuid.uuid4().hex[:24], "object": "chat.completion",
                                 "created": created, "model": model, "choices": [choice], "usage": usage}
        if flavor == "openai":  # OpenAI keeps a reasoning model's thinking to itself: only its token count shows
            message.update(refusal=None, annotations=[])
            usage.update(prompt_tokens_details={"cached_tokens": 0, "audio_tokens": 0},
                         completion_tokens_details={"reasoning_tokens": reasoning_tokens, "audio_tokens": 0,
                                                    "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0})
            reply.update(service_tier="default", system_fingerprint=None if reasoning else "fp_fake")
        elif flavor == "ollama":
            del choice["logprobs"]
            if reasoning:
                message["reasoning"] = reasoning
            reply.update(id=f"chatcmpl-{uuid.uuid4().int % 1000}", system_fingerprint="fp_ollama")
        elif flavor == "vllm":
            message.update(reasoning_content=reasoning, tool_calls=[])
            choice["stop_reason"] = None
            usage["prompt_tokens_details"] = None
            reply.update(id="chatcmpl-" + uuid.uuid4().hex, prompt_logprobs=None, kv_transfer_params=None)
        elif flavor == "llamacpp":
            del choice["logprobs"]
            if reasoning:
                message["reasoning_content"] = reasoning
            usage["prompt_tokens_details"] = {"cached_tokens": 0}
            reply.update(system_fingerprint="b6490-fake", timings={
                "cache_n": 0, "prompt_n": prompt_tokens, "prompt_ms": 30.9, "prompt_per_token_ms": 0.5,
                "prompt_per_second": 2000.0, "predicted_n": completion_tokens, "predicted_ms": 661.0,
                "predicted_per_token_ms": 18.9, "predicted_per_second": 52.9})
        elif flavor == "deepseek":
            if reasoning:
                message["reasoning_content"] = reasoning
                usage["completion_tokens_details"] = {"reasoning_tokens": reasoning_tokens}
            usage.update(prompt_tokens_details={"cached_tokens": 0}, prompt_cache_hit_tokens=0,
                         prompt_cache_miss_tokens=prompt_tokens)
            reply.update(id=str(uuid.uuid4()), system_fingerprint="fp_fake_prod0820")
        else:
            raise ValueError(f"unknown llm_flavor {flavor!r}; one of {LLM_FLAVORS}")
        return reply

    def default_llm_reply(self, request_json: dict) -> str:
        """``{"decisions": [...]}`` from ``llm_decide`` (symbol -> (action, confidence, reasoning)
        or a dict). Only the symbols that the user messages mention are answered, so that
        per-symbol requests get their own symbol; when none is mentioned, all of them."""
        with self.lock:
            decide = dict(self.llm_decide_by_model.get(str(request_json.get("model")), self.llm_decide))
        text = " ".join(
            m["content"] if isinstance(m.get("content"), str) else json.dumps(m.get("content"))
            for m in request_json.get("messages", [])
            if isinstance(m, dict) and m.get("role") == "user"
        )
        mentioned = [s for s in decide if re.search(rf"(?<![A-Za-z0-9/]){re.escape(s)}(?![A-Za-z0-9/])", text)]
        decisions = []
        for symbol in mentioned or list(decide):
            value = decide[symbol]
            if isinstance(value, dict):
                decisions.append({"symbol": symbol, **value})
                continue
            action, confidence, reasoning = (list(value) + [0.9, "fake analyst"])[:3] if isinstance(
                value, (tuple, list)) else (value, 0.9, "fake analyst")
            decisions.append({"symbol": symbol, "action": action, "confidence": confidence, "reasoning": reasoning})
        return json.dumps({"decisions": decisions})

    # ------------------------------------------------------------------ config.toml

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


def _default_bars(symbol: str, price: str, days: int = DEFAULT_BAR_DAYS) -> list[tuple[Decimal, ...]]:
    """A gentle, deterministic daily history whose last close is the previous close the
    Finnhub quote reports (price / 1.01)."""
    last_close = _dec(price) / Decimal("1.01")
    rows = []
    for i in range(days):
        back = days - 1 - i
        close = last_close * (1 - Decimal(back) / 1000 + Decimal(str(round(math.sin(i / 3) / 100, 6))))
        close = close.quantize(Decimal("0.01"))
        volume = Decimal(2_000 if _is_crypto(symbol) else 50_000_000) * (1 + Decimal(i % 7) / 10)
        rows.append((close * Decimal("0.995"), close * Decimal("1.01"), close * Decimal("0.985"), close, volume))
    # the last close exactly the quote's previous close
    o, h, l, _c, v = rows[-1]
    rows[-1] = (o, h, l, last_close.quantize(Decimal("0.01")), v)
    return [tuple(x.quantize(Decimal("0.01")) if i < 4 else x for i, x in enumerate(row)) for row in rows]


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


# --------------------------------------------------------------------------- HTTP plumbing


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # never join handler threads that sleep in a fault
    allow_reuse_address = True
    request_queue_size = 128  # bursts of concurrent connections from benchmarks
    fake: FakeServices

    def handle_error(self, request: Any, client_address: Any) -> None:  # no tracebacks on stderr
        exc = sys.exc_info()[1]
        if not isinstance(exc, (ConnectionError, TimeoutError, OSError, _Stopping)):
            with self.fake.lock:
                self.fake.errors.append(traceback.format_exc())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real services
    # Without this, a reply on a reused keep-alive connection waits ~40 ms for the client's
    # delayed ACK (Nagle's algorithm): benchmarks would measure the fake, not the tool.
    disable_nagle_algorithm = True
    server_version = "fakeserver/1.0"
    sys_version = ""
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # no access log
        pass

    def setup(self) -> None:
        super().setup()
        with self.server.fake.lock:
            self.server.fake._connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        with self.server.fake.lock:
            self.server.fake._connections.discard(self.connection)

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            return self.rfile.read(length)
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return b""

    def _handle(self) -> None:
        fake = self.server.fake
        try:
            self._serve(fake)
        except (_Stopping, _Drop):
            self._hang_up()
        except (ConnectionError, TimeoutError, OSError):
            self.close_connection = True  # the client went away (e.g. gave up on a late reply)
        except Exception:
            with fake.lock:
                fake.errors.append(traceback.format_exc())
            try:
                self._send(Reply(500, {"error": "fakeserver bug", "traceback": traceback.format_exc()}))
            except OSError:
                self.close_connection = True

    def _serve(self, fake: FakeServices) -> None:
        split = urlsplit(self.path)
        path = split.path
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        raw = self._read_body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        service, subpath = "", path
        for name, prefix in PREFIXES.items():
            if path == prefix or path.startswith(prefix + "/"):
                service, subpath = name, path[len(prefix):] or "/"
                break
        req = RecordedRequest(service=service, method=self.command, path=path, subpath=subpath, query=query,
                              headers=Headers(self.headers.items()), json=body, body=raw, time=time.time())
        fault = fake._take_fault(service, self.command, path, subpath)
        req.fault = fault.kind if fault else None
        with fake.lock:
            fake.requests.append(req)

        fake._sleep(fake.latency_seconds)
        if fault is None:
            self._send(fake._dispatch(req))
            return
        params = fault.params
        if fault.kind == "status":
            self._send(fake._error_reply(service, int(params["status"]), params.get("message"),
                                         params.get("headers"), params.get("body")))
        elif fault.kind == "delay":
            fake._sleep(float(params.get("seconds", 1.0)))
            self._send(fake._dispatch(req))
        elif fault.kind == "drop":
            if params.get("accept"):
                fake._dispatch(req)
            raise _Drop()
        elif fault.kind == "late_accept":
            reply = fake._dispatch(req)  # the broker has the order now...
            fake._sleep(float(params.get("seconds", 1.0)))  # ...but the client hears of it late
            self._send(reply)
        elif fault.kind == "garbage":
            self._send(Reply(200, params.get("body", "<html><body>502 Bad Gateway</body></html>"),
                             dict(params.get("headers") or {}), params.get("content_type", "application/json")))

    def _send(self, reply: Reply) -> None:
        payload = reply.encode()
        self.send_response(reply.status)
        headers = {k.lower(): (k, v) for k, v in reply.headers.items()}
        if reply.status != 204 or payload:
            if "content-type" not in headers:
                self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.values():
            self.send_header(name, str(value))
        self.end_headers()
        if payload and self.command != "HEAD":
            self.wfile.write(payload)
        self.wfile.flush()

    def _hang_up(self) -> None:
        self.close_connection = True
        try:
            self.wfile.flush()
        except OSError:
            pass
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


# --------------------------------------------------------------------------- standalone


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakeserver",
                                     description="Fake Alpaca paper + Finnhub + CoinGecko + OpenAI on one port.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added before every reply")
    parser.add_argument("--fill-orders", action="store_true", help="fill market orders at once")
    parser.add_argument("--no-auth", action="store_true", help="do not require Alpaca/Finnhub credentials")
    parser.add_argument("--market-closed", action="store_true", help="the Alpaca clock says closed")
    parser.add_argument("--decide", action="append", default=[], metavar="SYMBOL=ACTION[:CONFIDENCE]",
                        help="the fake LLM's decision for a symbol, e.g. AAPL=buy:0.9 (repeatable)")
    parser.add_argument("--config", metavar="PATH", help="also write a config.toml pointing at the fake")
    args = parser.parse_args(argv)

    fake = FakeServices(host=args.host, port=args.port, latency_seconds=args.latency,
                        fill_orders=args.fill_orders, require_auth=not args.no_auth)
    if args.market_closed:
        fake.set_market_open(False)
    for item in args.decide:
        symbol, _, rest = item.partition("=")
        action, _, confidence = rest.partition(":")
        fake.llm_decide[symbol.strip().upper()] = (action.strip() or "hold", float(confidence or 0.9), "fakeserver")
    with fake:
        for name, url in fake.urls().items():
            print(f"{name:<10} {url}")
        if args.config:
            print(f"config     {fake.config_toml(args.config)}")
        print("env        " + " ".join(f"{k}={v}" for k, v in fake.env().items()), flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
