"""``config.toml`` as pydantic models, the environment's secrets, and paper-only validation.

Loading never touches the network or the database. Every problem becomes a
``ConfigError`` whose message names the key (``risk.max_positions_count: must
be >= 1``); the CLI turns it into exit code 2.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StrictBool, ValidationError, field_validator, model_validator

from tradecycle.infra.environment import Secrets  # noqa: F401  (re-exported: the config's companion)
from tradecycle.config_errors import describe_errors  # noqa: F401  (re-exported: replay words its errors the same way)
from tradecycle.infra.errors import ConfigError
from tradecycle.models import ExitRules, RiskLimits
from tradecycle.infra.paths import read_toml, resolve_path

PAPER_URL = "https://paper-api.alpaca.markets"
ALPACA_DATA_URL = "https://data.alpaca.markets"

Percent = Annotated[Decimal, Field(gt=0, le=100)]
ExitPercent = Annotated[Decimal, Field(ge=0, lt=100)]  # 0: this exit is off
PositiveSeconds = Annotated[float, Field(gt=0)]
UsdPerMillion = Annotated[Decimal, Field(ge=0)]  # a token price: USD per million tokens
SWITCHES = frozenset({"broker_held_stops", "scale_by_confidence"})  # the keys that take true/false (and only that)


class _Section(BaseModel):
    # inf would switch a limit off (max_quote_age_seconds = inf: no price is ever stale).
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans(cls, value, info):
        # No key takes true/false but the switches named below; pydantic would read `true` as 1 (a 1-second quote age, say).
        if isinstance(value, bool) and info.field_name not in SWITCHES:
            raise ValueError("must be a number or text, not true/false")
        return value


class CycleConfig(_Section):
    analysis_timeout_seconds: PositiveSeconds = 30
    order_timeout_seconds: PositiveSeconds = 10
    max_retries: Annotated[int, Field(ge=0, le=10)] = 3
    retry_base_delay_seconds: PositiveSeconds = 1.0
    retry_max_delay_seconds: PositiveSeconds = 30.0
    retry_backoff_multiplier: Annotated[float, Field(ge=1)] = 2.0
    max_quote_age_seconds: PositiveSeconds = 300
    # Cron starts a cycle every minute: the budget plus the watchdog's grace must end inside it.
    max_cycle_seconds: Annotated[float, Field(gt=0, le=55)] = 50

    @model_validator(mode="after")
    def _timeouts_fit_the_cycle(self) -> "CycleConfig":
        for name in ("analysis_timeout_seconds", "order_timeout_seconds"):
            if getattr(self, name) > self.max_cycle_seconds:
                raise ValueError(
                    f"cycle.{name} ({getattr(self, name):g}) must not exceed cycle.max_cycle_seconds ({self.max_cycle_seconds:g})"
                )
        return self


class RiskConfig(_Section):
    max_position_size_percent: Percent = Decimal(10)
    max_total_exposure_percent: Percent = Decimal(50)
    max_positions_count: Annotated[int, Field(ge=1)] = 15
    daily_loss_limit_percent: Percent = Decimal(5)
    min_confidence: Annotated[float, Field(ge=0, le=1)] = 0.6
    min_order_percent: Percent = Decimal(1)  # of equity: a smaller buy is not sent (`below_minimum`)
    # Protective exits (see exits.py); 0 turns one off.
    stop_loss_percent: ExitPercent = Decimal(8)
    take_profit_percent: ExitPercent = Decimal(0)
    trailing_stop_percent: ExitPercent = Decimal(0)
    # No whipsaw (rules/protections.py); 0 turns one off.
    reentry_cooldown_minutes: Annotated[float, Field(ge=0, le=525600)] = 240
    stop_loss_guard_count: Annotated[int, Field(ge=0, le=1000)] = 3
    stop_loss_guard_minutes: Annotated[float, Field(ge=0, le=525600)] = 1440
    # Sizing (rules/risk.py): "fixed" takes the room the limits leave; "volatility" risks a share of equity per ATR.
    sizing: Literal["fixed", "volatility"] = "fixed"
    risk_per_trade_percent: Percent = Decimal("0.25")
    scale_by_confidence: StrictBool = False
    # A sell stop at the broker for each held position (cycle/stops.py); unset: on for
    # broker.provider = "alpaca", off for the simulator (see Config.broker_held_stops).
    broker_held_stops: StrictBool | None = None

    def exits(self) -> ExitRules:
        return ExitRules(
            stop_loss_percent=self.stop_loss_percent or None,
            take_profit_percent=self.take_profit_percent or None,
            trailing_stop_percent=self.trailing_stop_percent or None,
        )

    def limits(self) -> RiskLimits:
        """The limits and sizing of the risk step: the keys of the same names."""
        return RiskLimits(**self.model_dump(include=set(RiskLimits.__dataclass_fields__)))


class UniverseConfig(_Section):
    stocks: list[str] = ["AAPL", "MSFT", "NVDA"]
    crypto: list[str] = ["BTC/USD", "ETH/USD"]

    @field_validator("stocks")
    @classmethod
    def _stock_symbols(cls, value: list[str]) -> list[str]:
        value = [s.strip().upper() for s in value]
        for symbol in value:
            if not symbol or "/" in symbol or not symbol.replace(".", "").isalnum():
                raise ValueError(f"not a stock symbol: {symbol!r}")
        return _unique(value)

    @field_validator("crypto")
    @classmethod
    def _crypto_symbols(cls, value: list[str]) -> list[str]:
        value = [s.strip().upper() for s in value]
        for symbol in value:
            base, _, quote = symbol.partition("/")
            if not (base.isalnum() and quote.isalnum()):
                raise ValueError(f"crypto symbols are written like 'BTC/USD', not {symbol!r}")
            if quote != "USD":
                raise ValueError(f"{symbol!r} is not priced in USD: orders are sized in USD, so only */USD pairs are supported")
        return _unique(value)

    @property
    def symbols(self) -> list[str]:
        return self.stocks + self.crypto


def _unique(symbols: list[str]) -> list[str]:
    if len(set(symbols)) != len(symbols):
        raise ValueError("a symbol is listed twice")
    return symbols


class DatabaseConfig(_Section):
    path: str = "tradecycle.db"
    keep_days: Annotated[int, Field(ge=0, le=36500)] = 90

    @field_validator("path")
    @classmethod
    def _a_file(cls, value: str) -> str:
        if not value.strip() or value.endswith(("/", "\\")):
            raise ValueError("must be a file path, like 'tradecycle.db'")
        return value


class LogConfig(_Section):
    path: str = "tradecycle.jsonl"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


def _check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {value!r}")
    return value.rstrip("/")


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _alpaca_or_loopback(value: str, allowed: str, what: str) -> str:
    """``allowed`` itself, or an http(s) URL on a loopback host (a local gateway or test double)."""
    url = _check_http_url(value)
    if url == allowed or is_loopback(urlsplit(url).hostname):
        return url
    raise ValueError(f"{value!r} is not {what} (use {allowed}, or a loopback address for a local test double)")


class AlpacaConfig(_Section):
    base_url: str = PAPER_URL

    @field_validator("base_url")
    @classmethod
    def _paper_only(cls, value: str) -> str:
        return _alpaca_or_loopback(value, PAPER_URL, "the Alpaca paper API: tradecycle trades on paper only")


class SimBrokerConfig(_Section):
    starting_cash: Annotated[Decimal, Field(gt=0)] = Decimal(100000)


class BrokerConfig(_Section):
    provider: Literal["sim", "alpaca"] = "sim"
    alpaca: AlpacaConfig = AlpacaConfig()
    sim: SimBrokerConfig = SimBrokerConfig()


class ServiceUrl(_Section):
    base_url: str

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_http_url(value)


class FinnhubConfig(ServiceUrl):
    base_url: str = "https://finnhub.io/api/v1"


COINGECKO_PRO_HOST = "pro-api.coingecko.com"


class CoinGeckoConfig(ServiceUrl):
    base_url: str = "https://api.coingecko.com/api/v3"
    ids: dict[str, str] = {"BTC/USD": "bitcoin", "ETH/USD": "ethereum"}
    # A demo key allows 10,000 calls a month: one call every 360 s is 7,200 in 30 days.
    # Strict: `true` or "360" in the file is a mistake, not a number.
    refresh_seconds: Annotated[float, Field(gt=0, le=86400, strict=True)] = 360

    @property
    def is_pro(self) -> bool:
        """Pointed at CoinGecko's paid (Pro) API, which needs a key."""
        return urlsplit(self.base_url).hostname == COINGECKO_PRO_HOST


class AlpacaDataConfig(_Section):
    data_url: str = ALPACA_DATA_URL

    @field_validator("data_url")
    @classmethod
    def _alpaca_only(cls, value: str) -> str:
        # The broker's keys go with every stock request: only to Alpaca, or to a local double.
        return _alpaca_or_loopback(value, ALPACA_DATA_URL, "Alpaca's market data API")


class SimMarketConfig(_Section):
    seed: int = 42  # extension: the simulator's random walk is reproducible per seed
    # "exchange": stocks keep the NYSE's sessions; "always": they trade around the clock too.
    market_hours: Literal["exchange", "always"] = "exchange"


class CsvMarketConfig(_Section):
    path: str = "data"  # a folder of OHLCV files, one a symbol (AAPL.csv, BTC-USD.csv): history for backtests


class MarketDataConfig(_Section):
    provider: Literal["sim", "live", "alpaca", "csv"] = "sim"  # "csv": backtests only
    alpaca: AlpacaDataConfig = AlpacaDataConfig()
    finnhub: FinnhubConfig = FinnhubConfig()
    coingecko: CoinGeckoConfig = CoinGeckoConfig()
    sim: SimMarketConfig = SimMarketConfig()
    csv: CsvMarketConfig = CsvMarketConfig()


class NewsConfig(_Section):
    provider: Literal["sim", "finnhub", "none"] = "sim"
    refresh_minutes: Annotated[float, Field(gt=0)] = 15


_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
# A shadow's key is sent to its server: never one of the broker's or data services' secrets.
_NOT_FOR_SHADOWS = ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY", "FINNHUB_API_KEY", "COINGECKO_API_KEY")


class ShadowConfig(_Section):
    """One ``[[ai.shadow]]``: a challenger asked the same messages as the main analyst,
    recorded (``role = "shadow"``), never traded."""

    provider: Literal["openai", "rules"] = "openai"
    base_url: str | None = None  # None: ai.base_url
    model: str = ""
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    seed: int | None = None  # sent as ``seed`` when set (see AIConfig)
    # The environment variable that holds this server's key. Unset: OPENAI_API_KEY
    # when the shadow uses ai.base_url (the same server), otherwise no key.
    api_key_env: str | None = None
    training_cutoff: date | None = None  # as ai.training_cutoff, for this model
    # What this model's tokens cost (USD per million): the verdict's costs (score, report). 0: free (a local model).
    price_input_per_million_usd: UsdPerMillion = Decimal(0)
    price_output_per_million_usd: UsdPerMillion = Decimal(0)

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _check_http_url(value)

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _ENV_NAME.match(value):
            raise ValueError(f"{value!r} is not an environment variable name (e.g. OTHER_LLM_KEY)")
        if value in _NOT_FOR_SHADOWS:
            raise ValueError(f"{value} is another service's secret: it is never sent to a model server")
        return value

    @model_validator(mode="after")
    def _model_named(self) -> "ShadowConfig":
        if self.provider == "openai" and not self.model.strip():
            raise ValueError("model: required for an openai shadow (e.g. model = \"gpt-4o\")")
        return self


class AIConfig(_Section):
    provider: Literal["rules", "openai"] = "rules"
    base_url: str = "https://api.openai.com/v1"
    model: str = "gpt-4o-mini"
    # None (the key left out): not sent, the model's own default. Reasoning models (gpt-5, o3,
    # o4-mini) accept only their default, o1-mini/o3-mini no temperature at all; a refusal that
    # names it is repaired by leaving it out (see ai/openai_compat.py).
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    # Sent as ``seed`` when set: servers that honour it answer the same messages alike (a refusal drops it).
    seed: int | None = None
    reanalyze_move_percent: Percent = Decimal("0.5")
    max_decision_age_minutes: Annotated[float, Field(gt=0)] = 15
    # The last day the model may have learned from (YYYY-MM-DD): a backtest never asks it about a day on or before it.
    training_cutoff: date | None = None
    shadow: list[ShadowConfig] = []  # [[ai.shadow]] challengers (see ai/shadow.py)
    # What the main model's tokens cost (USD per million): the verdict's costs (score, report). 0: free (a local model).
    price_input_per_million_usd: UsdPerMillion = Decimal(0)
    price_output_per_million_usd: UsdPerMillion = Decimal(0)

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_http_url(value)

    def shadow_key(self, shadow: ShadowConfig) -> str | None:
        """The environment variable whose value is ``shadow``'s API key, or None (no key sent)."""
        if shadow.api_key_env:
            return shadow.api_key_env
        return "OPENAI_API_KEY" if (shadow.base_url or self.base_url) == self.base_url else None


class BacktestConfig(_Section):
    slippage_bps: Annotated[Decimal, Field(ge=0, le=1000)] = Decimal(5)  # against the order at every fill
    fee_bps: Annotated[Decimal, Field(ge=0, le=1000)] = Decimal(0)  # of each fill's value, taken from cash


class Config(_Section):
    cycle: CycleConfig = CycleConfig()
    risk: RiskConfig = RiskConfig()
    universe: UniverseConfig = UniverseConfig()
    database: DatabaseConfig = DatabaseConfig()
    log: LogConfig = LogConfig()
    broker: BrokerConfig = BrokerConfig()
    market_data: MarketDataConfig = MarketDataConfig()
    news: NewsConfig = NewsConfig()
    ai: AIConfig = AIConfig()
    backtest: BacktestConfig = BacktestConfig()

    # Set by load_config, not by the file: where relative paths resolve.
    _base_dir: Path = PrivateAttr(default=Path("."))

    @property
    def base_dir(self) -> Path:
        return self._base_dir

    @model_validator(mode="after")
    def _every_coin_has_an_id(self) -> "Config":
        if self.market_data.provider == "live":
            missing = [s for s in self.universe.crypto if s not in self.market_data.coingecko.ids]
            if missing:
                raise ValueError(
                    f"market_data.coingecko.ids: no CoinGecko id for {', '.join(missing)} "
                    f'(add e.g. "{missing[0]}" = "<coingecko id>")'
                )
        return self

    @property
    def broker_held_stops(self) -> bool:
        """``risk.broker_held_stops``, or its default: on at Alpaca, where a stop at the broker
        protects a position while no cycle runs; off for the simulator, whose prices move only
        when a cycle asks (a stop there protects nothing the cycle's own check does not)."""
        if self.risk.broker_held_stops is not None:
            return self.risk.broker_held_stops
        return self.broker.provider == "alpaca"

    @property
    def database_path(self) -> Path:
        return resolve_path(self.base_dir, self.database.path)

    @property
    def log_path(self) -> Path:
        return resolve_path(self.base_dir, self.log.path)

    @property
    def csv_path(self) -> Path:
        return resolve_path(self.base_dir, self.market_data.csv.path)


def shadow_key_names(config: "Config") -> tuple[str, ...]:
    """The extra environment variables the shadows read their keys from."""
    return tuple(sorted({s.api_key_env for s in config.ai.shadow if s.api_key_env}))


def load_config(path: Path) -> Config:
    """Read and validate the whole file. Raises ConfigError naming the first bad keys."""
    data = read_toml(path)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc)) from None
    config._base_dir = path.resolve().parent
    for key, file in (("database.path", config.database_path), ("log.path", config.log_path)):
        if not file.parent.is_dir():
            raise ConfigError(f"invalid configuration: {key}: folder does not exist: {file.parent}")
    return config


def required_environment(config: Config) -> dict[str, str]:
    """Environment variables the configured providers need -> the setting that needs them."""
    needed = {}
    if config.broker.provider == "alpaca":
        needed |= {n: 'broker.provider = "alpaca"' for n in ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY")}
    if config.market_data.provider == "live":
        needed["FINNHUB_API_KEY"] = 'market_data.provider = "live"'
    if config.market_data.provider == "alpaca" and config.universe.stocks:  # crypto data needs no key
        for name in ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY"):
            needed.setdefault(name, 'market_data.provider = "alpaca" with stocks')
    if config.news.provider == "finnhub":
        needed.setdefault("FINNHUB_API_KEY", 'news.provider = "finnhub"')
    if config.market_data.provider == "live" and config.market_data.coingecko.is_pro:
        needed["COINGECKO_API_KEY"] = f"market_data.coingecko.base_url = the Pro API ({COINGECKO_PRO_HOST})"
    return needed


def check_environment(config: Config, secrets: Secrets) -> None:
    """Raise ConfigError naming every required variable that is not set."""
    missing = {n: why for n, why in required_environment(config).items() if not secrets.is_set(n)}
    if missing:
        names = ", ".join(missing)
        reasons = "; ".join(sorted(set(missing.values())))
        raise ConfigError(f"environment variable{'s' if len(missing) > 1 else ''} {names} not set (needed by {reasons})")
