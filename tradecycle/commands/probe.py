"""``check --online``: reach each configured service once and say what answered.

Every live probe is one or two requests, sent once (no retries), all probes at
once, inside one shared budget (``PROBE_BUDGET_SECONDS``): a check finishes in
about the time of its slowest service, and never much later than the budget.
The one exception is the model's answer: the AI probe asks for one real
decision, as a cycle would, and waits for it as long as a cycle would
(``cycle.analysis_timeout_seconds``), since reasoning models think for a while.
Offline providers (the simulator, the rules analyst) pass without a call.
Nothing here raises for a service problem: each probe ends as a ``Probe``
with ``ok`` False and the reason, secrets redacted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tradecycle.config import Config, Secrets
from tradecycle.infra.errors import BadResponse, ServiceError, TradecycleError
from tradecycle.models import AnalysisInput, Quote
from tradecycle.infra.parallel import gather
from tradecycle.infra.redact import redact

PROBE_BUDGET_SECONDS = 5.0
NEWS_LOOKBACK_DAYS = 3
OFFLINE = "simulator, offline"


@dataclass(frozen=True)
class Probe:
    """What one service said. ``elapsed_ms`` is None for offline providers."""

    service: str  # "broker", "market data (stocks)", "market data (crypto)", "news", "ai", "heartbeat"
    provider: str  # "alpaca", "finnhub", "coingecko", "openai", "sim", "rules", "none"
    ok: bool
    detail: str
    elapsed_ms: int | None = None

    @property
    def label(self) -> str:
        return f"{self.service} [{self.provider}]"

    def as_dict(self) -> dict:
        return asdict(self)


class ProbeFailed(TradecycleError):
    """The service answered, but with something a cycle could not work with."""


def probe_services(config: Config, secrets: Secrets, budget_seconds: float = PROBE_BUDGET_SECONDS) -> list[Probe]:
    """One ``Probe`` per service, in a fixed order: broker, market data
    (stocks, crypto), news, ai. Call only when ``check_environment`` passes."""
    from tradecycle.commands.wiring import probe_factory

    live = probe_factory(config, secrets, budget_seconds)
    checks: list[tuple[str, str, Callable[[], str] | None, str]] = [
        _broker(config, live),
        *_market_data(config, live),
        _news(config, live),
        _ai(config, live, budget_seconds),
        *_heartbeat(secrets),
    ]
    online = {service: _timed(call) for service, _, call, _ in checks if call is not None}
    answers = gather(online)
    results = []
    for service, provider, call, offline_detail in checks:
        if call is None:
            results.append(Probe(service, provider, True, offline_detail))
            continue
        answer, elapsed_ms = answers[service]
        if isinstance(answer, Exception):
            detail = _reason(answer) + _key_hint(service, answer)
            results.append(Probe(service, provider, False, redact(detail, secrets.values()), elapsed_ms))
        else:
            results.append(Probe(service, provider, True, redact(answer, secrets.values()), elapsed_ms))
    return results


def _timed(call: Callable[[], str]) -> Callable[[], tuple[str | Exception, int]]:
    def run() -> tuple[str | Exception, int]:
        started = time.monotonic()
        try:
            answer: str | Exception = call()
        except Exception as exc:  # reported as this service's failure, never raised
            answer = exc
        return answer, int((time.monotonic() - started) * 1000)

    return run


# The variables to look at when a service refuses us with 401 or 403.
_KEYS = {
    "broker": "APCA_API_KEY_ID and APCA_API_SECRET_KEY",
    "market data (stocks)": "FINNHUB_API_KEY",
    "market data (crypto)": "COINGECKO_API_KEY",
    "news": "FINNHUB_API_KEY",
    "ai": "OPENAI_API_KEY",
}


def _key_hint(service: str, exc: Exception) -> str:
    if isinstance(exc, BadResponse) and exc.status_code in (401, 403):
        return f" (check {_KEYS[service]})"
    return ""


def _reason(exc: Exception) -> str:
    if isinstance(exc, ServiceError):
        return exc.message
    if isinstance(exc, TradecycleError):
        return str(exc)
    return f"unexpected error: {type(exc).__name__}: {exc}"


# -- one builder per service: (service, provider, call or None when offline, detail when offline)


def _heartbeat(secrets: Secrets) -> list[tuple]:
    """One ping of ``TRADECYCLE_HEARTBEAT_URL`` (as a cycle that completed would send), when it is set."""
    from tradecycle.commands.wiring import heartbeat

    pinger = heartbeat(secrets)
    if pinger is None:
        return []

    def call() -> str:
        return f"pinged: HTTP {pinger.ping(False, 'tradecycle check --online')}"

    return [("heartbeat", "http", call, "")]


def _broker(config: Config, live) -> tuple:
    if config.broker.provider == "sim":
        return "broker", "sim", None, OFFLINE

    def call() -> str:
        broker = live.alpaca()
        account = broker.get_account()
        clock = broker.get_clock()
        if account.account_blocked or account.trading_blocked:
            raise ProbeFailed("account is blocked for trading (a cycle would trip the kill switch)")
        if account.status.upper() != "ACTIVE":
            raise ProbeFailed(f"account status is {account.status or 'unknown'}, not ACTIVE (a cycle would trip the kill switch)")
        market = "market open" if clock.is_open else f"market closed (opens {clock.next_open or 'later'})"
        return f"account {account.status}, equity {account.equity} USD; {market}"

    return "broker", "alpaca", call, ""


def _market_data(config: Config, live) -> list[tuple]:
    if config.market_data.provider == "sim":
        return [("market data (stocks)", "sim", None, OFFLINE), ("market data (crypto)", "sim", None, OFFLINE)]
    if config.market_data.provider == "csv":
        return [("market data", "csv", None, f"files in {config.csv_path}, for `tradecycle backtest` only: no call")]
    stocks, crypto = config.universe.stocks, config.universe.crypto
    if config.market_data.provider == "alpaca":
        return [
            ("market data (stocks)", "alpaca", _batched_call(live.alpaca_data, stocks) if stocks else None, "no stocks configured: no call"),
            ("market data (crypto)", "alpaca", _batched_call(live.alpaca_data, crypto) if crypto else None, "no crypto configured: no call"),
        ]

    def stock_call() -> str:
        symbol = stocks[0]
        answer = live.finnhub_quotes().get_quotes([symbol])[symbol]
        if isinstance(answer, Exception):
            raise answer
        return f"{symbol} {answer.price} as of {answer.as_of:%Y-%m-%d %H:%M:%S}Z"

    return [
        ("market data (stocks)", "finnhub", stock_call if stocks else None, "no stocks configured: no call"),
        ("market data (crypto)", "coingecko", _batched_call(live.coingecko, crypto) if crypto else None,
         "no crypto configured: no call"),
    ]


def _batched_call(source, symbols: list[str]):
    """One batched quotes call for all ``symbols`` (what a cycle sends)."""

    def call() -> str:
        answers = source().get_quotes(symbols)
        # When the one call fails, every symbol carries the same error: say it once.
        reasons = dict.fromkeys(_reason(a) for a in answers.values() if isinstance(a, Exception))
        if reasons:
            raise ProbeFailed("; ".join(reasons))
        return ", ".join(f"{symbol} {a.price}" for symbol, a in answers.items())

    return call


def _news(config: Config, live) -> tuple:
    provider = config.news.provider
    if provider == "sim":
        return "news", "sim", None, OFFLINE
    if provider == "none":
        return "news", "none", None, 'off (news.provider = "none")'
    stocks = config.universe.stocks

    def call() -> str:
        symbol = stocks[0]
        since = datetime.now(UTC) - timedelta(days=NEWS_LOOKBACK_DAYS)
        items = live.finnhub_news().get_news(symbol, since)
        return f"{len(items)} headline{'s' if len(items) != 1 else ''} for {symbol} in the last {NEWS_LOOKBACK_DAYS} days"

    return "news", "finnhub", call if stocks else None, "no stocks configured: Finnhub news is for stocks only"


CHECK_PRICE_USD = Decimal(100)  # the made-up price of the AI probe's one question


def _ai(config: Config, live, budget_seconds: float) -> tuple:
    """GET /models (a hint only), then one real decision asked as a cycle asks it, with the
    configured model and parameters: the answer, not the listing, decides. llama.cpp lists its
    one model by file name and answers to any name; a gateway may serve models it does not list."""
    if config.ai.provider == "rules":
        return "ai", "rules", None, "rules analyst, offline"
    model = config.ai.model

    def call() -> str:
        analyst = live.openai()
        try:
            models: list[str] | None = analyst.list_models(budget_seconds)
            listing_error = ""
        except ServiceError as exc:
            models, listing_error = None, exc.message
        decision, notes = analyst.check(_check_input(config), config.cycle.analysis_timeout_seconds)
        listed = models is None or not models or model in models or f"{model}:latest" in models
        if decision.failure is not None:
            hint = ""
            if not listed and len(models or []) == 1:  # llama.cpp: not by itself a reason to fail
                hint = f"; the server lists one model, {models[0]!r}"
            elif not listed:
                hint = f"; the server does not offer model {model!r} (it lists {_sample(models)}): check ai.model"
            raise ProbeFailed(f"{decision.reasoning}{hint}")
        answer = f"{model} answered one decision ({decision.symbol} {decision.action} {decision.confidence:g})"
        if listing_error:
            notes.append(f"GET /models failed ({listing_error})")
        elif models is None:
            notes.append("the server has no /models")
        elif not models:
            notes.append("the server lists no models")
        elif len(models) == 1 and not listed:
            notes.append(f"the server lists one model, {models[0]!r}, and serves it as {model!r}")
        elif not listed:
            notes.append(f"{model!r} is not among the {len(models)} models listed ({_sample(models)}), but it answered")
        return "; ".join([answer, *notes])

    return "ai", "openai", call, ""


def _check_input(config: Config) -> AnalysisInput:
    """What the AI probe asks about: the first symbol of the universe at a made-up price."""
    symbol = (config.universe.symbols or ["AAPL"])[0]
    quote = Quote(symbol, CHECK_PRICE_USD, datetime.now(UTC), source="check")
    return AnalysisInput(symbol, quote, 0.0, None, (), (), config.risk.limits())


def _sample(models: list[str] | None) -> str:
    models = models or []
    return ", ".join(models[:5]) + (", ..." if len(models) > 5 else "")
