"""The one place that turns a config into real services.

Imports of the live connectors happen here, lazily, so commands that never
touch a service (``killswitch``, ``status``) never import ``requests``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from tradecycle.config import Config, Secrets
from tradecycle.infra.errors import ConfigError
from tradecycle.cycle.run import CycleSettings
from tradecycle.infra.lock import FileLock, lock_path_for
from tradecycle.models import Deadline
from tradecycle.ports import Clock, EventLog, Services
from tradecycle.rules.protections import Protections
from tradecycle.store import Database, SimLedger


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def cycle_settings(config: Config, dry_run: bool) -> CycleSettings:
    return CycleSettings(
        stocks=tuple(config.universe.stocks),
        crypto=tuple(config.universe.crypto),
        limits=config.risk.limits(),
        analysis_timeout_seconds=config.cycle.analysis_timeout_seconds,
        max_quote_age_seconds=config.cycle.max_quote_age_seconds,
        news_refresh_minutes=config.news.refresh_minutes,
        dry_run=dry_run,
        reuse_holds=config.ai.provider != "rules",
        reanalyze_move_percent=config.ai.reanalyze_move_percent,
        max_decision_age_minutes=config.ai.max_decision_age_minutes,
        keep_days=config.database.keep_days,
        exits=config.risk.exits(),
        protections=Protections(config.risk.reentry_cooldown_minutes, config.risk.stop_loss_guard_count,
                                config.risk.stop_loss_guard_minutes),
        broker_held_stops=config.broker_held_stops,
    )


def build_services(config: Config, db: Database, secrets: Secrets, log: EventLog, clock: Clock | None = None) -> Services:
    """Build every service the config names (check ``config.missing_environment``
    first: a live service without its keys is a configuration error)."""
    if config.market_data.provider == "csv":
        raise ConfigError('market_data.provider: "csv" serves `tradecycle backtest` only; a cycle needs live prices'
                          ' (use "sim", "live" or "alpaca")')
    clock = clock or SystemClock()
    deadline = Deadline(config.cycle.max_cycle_seconds)
    ledger = SimLedger(db)
    sim_market = None

    def market():
        nonlocal sim_market
        if sim_market is None:
            from tradecycle.connectors.sim import SimMarket

            sim_market = SimMarket(ledger, clock, seed=config.market_data.sim.seed,
                                   market_hours=config.market_data.sim.market_hours)
        return sim_market

    live = _LiveFactory(config, secrets, deadline, log)
    if config.broker.provider == "sim":
        from tradecycle.connectors.sim import SimBroker

        broker = SimBroker(ledger, market(), clock, config.broker.sim.starting_cash)
    else:
        broker = live.alpaca()
    bars = None
    if config.market_data.provider == "sim":
        stock_quotes = crypto_quotes = bars = market()
    elif config.market_data.provider == "alpaca":
        stock_quotes = crypto_quotes = bars = live.alpaca_data()
    else:  # Finnhub's candles are premium: no daily bars, so no indicators
        stock_quotes, crypto_quotes = live.finnhub_quotes(), _within_quota(live.coingecko(), config, db, clock, log)
    news = {"sim": market, "finnhub": live.finnhub_news, "none": lambda: None}[config.news.provider]()
    analyst = build_analyst(live)
    lock = FileLock(lock_path_for(db.path))
    return Services(broker, stock_quotes, crypto_quotes, news, analyst, clock, lock, deadline, bars, alert_sender(secrets),
                    heartbeat(secrets))


def build_analyst(live: "_LiveFactory"):
    """The analyst of ``[ai]``, with its ``[[ai.shadow]]`` challengers beside it."""
    config = live.config
    if config.ai.provider == "rules":
        from tradecycle.ai.rules import RulesAnalyst

        analyst = RulesAnalyst()
    else:
        analyst = live.openai()
    if config.ai.shadow:
        from tradecycle.ai.shadow import ShadowedAnalyst

        analyst = ShadowedAnalyst(analyst, [live.shadow(s) for s in config.ai.shadow])
    return analyst


def backtest_analyst(config: Config, secrets: Secrets, deadline: Deadline, log: EventLog, replies=None):
    """The configured analyst for ``tradecycle backtest``: every model server
    request goes through ``replies`` (the backtest's cache of exact requests)."""
    return build_analyst(_LiveFactory(config, secrets, deadline, log, replies))


def backtest_history_client(config: Config, secrets: Secrets):
    """Alpaca's historical bars and news for ``tradecycle backtest`` (fetched once per run, before
    the first cycle: each request has its own timeout and the cycle's retries, no cycle budget)."""
    from tradecycle.connectors.alpaca_history import AlpacaHistory
    from tradecycle.connectors.http import HttpSettings

    http = HttpSettings.from_cycle_config(config.cycle, timeout_seconds=30, deadline=None, secrets=secrets.values())
    return AlpacaHistory(config.market_data.alpaca.data_url, secrets.get("APCA_API_KEY_ID"),
                         secrets.get("APCA_API_SECRET_KEY"), http)


def heartbeat(secrets: Secrets):
    """The cron monitor's pinger for ``TRADECYCLE_HEARTBEAT_URL``, or None when it is not set."""
    url = secrets.heartbeat_url()
    if not url:
        return None
    from tradecycle.connectors.heartbeat import HttpHeartbeat

    return HttpHeartbeat(url)


def alert_sender(secrets: Secrets):
    """The apprise sender for ``TRADECYCLE_ALERT_URLS``, or None when it is not
    set (then apprise is never imported)."""
    urls = secrets.alert_urls()
    if not urls:
        return None
    from tradecycle.connectors.apprise_sender import AppriseSender

    return AppriseSender(urls, secrets.values())


def _within_quota(coingecko, config: Config, db: Database, clock: Clock, log: EventLog):
    """CoinGecko at most every ``market_data.coingecko.refresh_seconds``, stored prices in between."""
    from tradecycle.store import Store
    from tradecycle.connectors.throttle import ThrottledQuotes

    refresh = config.market_data.coingecko.refresh_seconds
    return ThrottledQuotes(coingecko, Store(db), clock, refresh, log, config_key="market_data.coingecko.refresh_seconds")


def replay_analyst(config: Config, secrets: Secrets, target):
    """The analyst ``replay`` asks: ``target`` (a ``ShadowConfig``: server, model, key
    variable) with the cycle's timeouts and retries. Its log goes nowhere: a replay
    is not a cycle, and what it answers is printed and recorded."""
    from tradecycle.infra.logs import MemoryLog

    return _LiveFactory(config, secrets, Deadline(config.cycle.analysis_timeout_seconds), MemoryLog()).shadow(target)


def probe_factory(config: Config, secrets: Secrets, budget_seconds: float) -> "_LiveFactory":
    """Builders of the live services for ``check --online``: each request is
    sent once (no retries: a check reports what it sees) and every request
    ends inside one shared budget of ``budget_seconds``."""
    from tradecycle.infra.logs import MemoryLog

    once = config.model_copy(update={"cycle": config.cycle.model_copy(update={"max_retries": 0})})
    return _LiveFactory(once, secrets, Deadline(budget_seconds), MemoryLog())


class _LiveFactory:
    """Builders for the real services (imported only when configured)."""

    def __init__(self, config: Config, secrets: Secrets, deadline: Deadline, log: EventLog, replies=None):
        self.config, self.secrets, self.deadline, self.log = config, secrets, deadline, log
        self.replies = replies  # a backtest's reply cache (None: every request goes to the server)

    def _http(self, timeout_seconds: float):
        from tradecycle.connectors.http import HttpSettings

        return HttpSettings.from_cycle_config(
            self.config.cycle, timeout_seconds=timeout_seconds, deadline=self.deadline, secrets=self.secrets.values()
        )

    def alpaca(self):
        from tradecycle.connectors.alpaca import AlpacaBroker

        return AlpacaBroker(
            self.config.broker.alpaca.base_url,
            self.secrets.get("APCA_API_KEY_ID"),
            self.secrets.get("APCA_API_SECRET_KEY"),
            self._http(self.config.cycle.order_timeout_seconds),
            order_timeout_seconds=self.config.cycle.order_timeout_seconds,
        )

    def alpaca_data(self):
        from tradecycle.connectors.alpaca_data import AlpacaMarketData

        return AlpacaMarketData(
            self.config.market_data.alpaca.data_url,
            self.secrets.get("APCA_API_KEY_ID"),
            self.secrets.get("APCA_API_SECRET_KEY"),
            self._http(10),
        )

    def finnhub_quotes(self):
        from tradecycle.connectors.finnhub import FinnhubQuotes

        return FinnhubQuotes(self.config.market_data.finnhub.base_url, self.secrets.get("FINNHUB_API_KEY"), self._http(10))

    def finnhub_news(self):
        from tradecycle.connectors.finnhub import FinnhubNews

        return FinnhubNews(self.config.market_data.finnhub.base_url, self.secrets.get("FINNHUB_API_KEY"), self._http(10))

    def coingecko(self):
        from tradecycle.connectors.coingecko import CoinGeckoQuotes

        cg = self.config.market_data.coingecko
        return CoinGeckoQuotes(cg.base_url, cg.ids, self.secrets.get("COINGECKO_API_KEY"), self._http(10))

    def openai(self, base_url: str | None = None, model: str | None = None, temperature: float | None = None,
               key_env: str | None = "OPENAI_API_KEY", seed: int | None = None, training_cutoff=None):
        """The OpenAI-compatible analyst of ``[ai]``, or of the given server and model
        (a shadow, a replay) with the key from ``key_env`` (None: no key), its seed
        and declared training cutoff (a date)."""
        from tradecycle.ai.openai_compat import OpenAICompatAnalyst

        ai = self.config.ai
        same = base_url is None
        return OpenAICompatAnalyst(
            ai.base_url if same else base_url, model or ai.model, ai.temperature if same else temperature,
            self.secrets.get(key_env) if key_env else "",
            self._http(self.config.cycle.analysis_timeout_seconds),
            logger=lambda event, fields: self.log(event, "warning", **fields),
            replies=self.replies,
            seed=ai.seed if same else seed,
            training_cutoff=_date_text(ai.training_cutoff if same else training_cutoff),
        )

    def shadow(self, shadow):
        """A ``[[ai.shadow]]`` analyst; its failures are its own (see ai/shadow.py)."""
        if shadow.provider == "rules":
            from tradecycle.ai.rules import RulesAnalyst

            return RulesAnalyst()
        return self.openai(shadow.base_url or self.config.ai.base_url, shadow.model, shadow.temperature,
                           self.config.ai.shadow_key(shadow), shadow.seed, shadow.training_cutoff)


def _date_text(day) -> str | None:
    """A config date as the ISO text the decisions record."""
    return None if day is None else day.isoformat()
