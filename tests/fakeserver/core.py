"""``FakeServices``: the state of every faked service, credentials, lifecycle,
URLs, request recording, scripted faults with each service's realistic error
body (API_NOTES.md), and dispatch of a request to its service's mixin."""

from __future__ import annotations

import socket
import threading
import time
from http.server import ThreadingHTTPServer
from typing import Any, Callable

from .common import (
    DEFAULT_COIN_IDS, DEFAULT_CRYPTO, DEFAULT_PRICES, DEFAULT_STOCKS, FAULT_KINDS, PREFIXES, SERVICES, Fault,
    RecordedRequest, Reply, _dec, _is_crypto, _Stopping, position_symbol,
)
from .alerts import AlertsMixin
from .alpaca import _ALPACA_ERRORS, AlpacaMixin
from .alpaca_data import AlpacaDataMixin, _default_bars
from .alpaca_orders import AlpacaOrdersMixin
from .alpaca_stops import AlpacaStopsMixin
from .coingecko import _COINGECKO_ERRORS, CoinGeckoMixin
from .config import ConfigMixin
from .finnhub import _FINNHUB_ERRORS, FinnhubMixin
from .heartbeat import HeartbeatMixin
from .llm import _OPENAI_ERRORS, LLMMixin
from .server import _Server, _Handler


class FakeServices(AlpacaMixin, AlpacaOrdersMixin, AlpacaStopsMixin, AlpacaDataMixin, FinnhubMixin, CoinGeckoMixin, LLMMixin,
                   AlertsMixin, HeartbeatMixin, ConfigMixin):
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
        self._init_stops()  # stop orders: refusals, cancels that pass through pending_cancel

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
        # Keys CoinGecko knows as Pro keys: sent to this (public) host, even in the demo header, refused (10010).
        self.coingecko_pro_keys: set[str] = set()
        self.coins: dict[str, dict[str, Any]] = {
            self.coin_ids[s]: {"usd": float(DEFAULT_PRICES[s]), "usd_24h_change": 1.25, "last_updated_at": None}
            for s in DEFAULT_CRYPTO
        }

        # --- Alpaca market data (snapshots are built from ``prices`` and the quote/coin times)
        self.daily_bars: dict[str, list[dict[str, Any]]] = {}  # symbol -> Alpaca-shaped bars, oldest first
        self.day_volumes: dict[str, float] = {}  # symbol -> today's volume so far (the snapshot's dailyBar.v)
        self.bars_page_size: int | None = None  # page the bars replies at fewer bars than `limit` asks
        # Historical bars at any timeframe, (symbol, "1Hour") -> Alpaca-shaped bars (1Day falls back to
        # daily_bars), and Alpaca's news (GET /v1beta1/news): set with set_history_bars / add_alpaca_news.
        self.history_bars: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.alpaca_news: list[dict[str, Any]] = []
        self.news_page_size: int | None = None  # page the news replies at fewer items than `limit` asks
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
        # The reply's "model": what the server says answered. None: as the flavour does (OpenAI names the dated
        # snapshot behind an alias, OPENAI_SNAPSHOTS; the others echo the request); a dict: asked -> served.
        self.llm_served_model: dict[str, str] | None = None
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

    # ------------------------------------------------------------------ one price for every service

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
            self._trigger_stops(symbol)  # a sell stop the price reached fills now

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
          hook         before=fn(req) runs before the reply is made, after=fn(req, reply) once it
                       is made and before it is sent (outside ``lock``): the test decides what
                       happens between two replies (a fill, a file removed, a process killed)
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

            "alerts": self._alerts,
            "heartbeat": self._heartbeat,
        }.get(req.service)
        if handler is None:
            return Reply(404, {"error": f"no fake service at {req.path}"})
        return handler(req)
